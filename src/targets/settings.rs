//! One target's settings (`[[targets]]` in the config file, or a target created through the
//! admin API), with the kinds, policies and methods as types.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::amqp::AmqpSettings;
use super::capabilities::CapabilityOverrides;
use super::ldap::LdapSettings;
use super::mapping::MappingRule;
use super::reconcile::ReconcileSettings;
use super::review::ReviewRules;
use crate::storage::secrets::SecretBox;

/// What kind of system a target is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum TargetKind {
    /// An application's SCIM endpoint.
    #[default]
    Scim,
    /// An LDAP directory.
    Ldap,
    /// Work items for a person to carry out.
    Manual,
    /// A message broker (RabbitMQ, AMQP 0-9-1): each order is published as one message.
    Amqp,
}

impl TargetKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            TargetKind::Scim => "scim",
            TargetKind::Ldap => "ldap",
            TargetKind::Manual => "manual",
            TargetKind::Amqp => "amqp",
        }
    }
}

/// What happens to a user's account when the user leaves the target's scope.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum Deprovision {
    /// The account is deleted.
    #[default]
    Delete,
    /// The account is kept, disabled (`active: false`).
    Deactivate,
}

impl UpdateMethod {
    pub const fn as_str(self) -> &'static str {
        match self {
            UpdateMethod::Patch => "patch",
            UpdateMethod::Put => "put",
        }
    }
}

impl Deprovision {
    pub const fn as_str(self) -> &'static str {
        match self {
            Deprovision::Delete => "delete",
            Deprovision::Deactivate => "deactivate",
        }
    }
}

/// How a SCIM target's users are updated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum UpdateMethod {
    /// PATCH with only the managed attributes that differ.
    #[default]
    Patch,
    /// PUT of the whole user.
    Put,
}

/// How scimgate authenticates to a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", try_from = "String")]
pub enum AuthKind {
    Bearer,
    Basic,
    /// An LDAP simple bind.
    Simple,
    OauthClientCredentials,
    None,
}

impl AuthKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            AuthKind::Bearer => "bearer",
            AuthKind::Basic => "basic",
            AuthKind::Simple => "simple",
            AuthKind::OauthClientCredentials => "oauth_client_credentials",
            AuthKind::None => "none",
        }
    }
}

/// Reads a setting's value from its text; the error names the setting and what it may be.
fn one_of<T: Copy>(
    text: &str,
    values: &[T],
    name: impl Fn(T) -> &'static str,
    what: &str,
) -> Result<T, SettingsError> {
    values
        .iter()
        .copied()
        .find(|v| name(*v) == text)
        .ok_or_else(|| {
            let known: Vec<&str> = values.iter().map(|v| name(*v)).collect();
            SettingsError(format!(
                "{what} {text:?} is not supported: {}",
                known.join(", ")
            ))
        })
}

impl TryFrom<String> for TargetKind {
    type Error = SettingsError;
    fn try_from(text: String) -> Result<Self, SettingsError> {
        use TargetKind::*;
        one_of(
            &text,
            &[Scim, Ldap, Manual, Amqp],
            TargetKind::as_str,
            "kind",
        )
    }
}

impl TryFrom<String> for Deprovision {
    type Error = SettingsError;
    fn try_from(text: String) -> Result<Self, SettingsError> {
        use Deprovision::*;
        one_of(
            &text,
            &[Delete, Deactivate],
            Deprovision::as_str,
            "deprovision",
        )
    }
}

impl TryFrom<String> for UpdateMethod {
    type Error = SettingsError;
    fn try_from(text: String) -> Result<Self, SettingsError> {
        use UpdateMethod::*;
        one_of(&text, &[Patch, Put], UpdateMethod::as_str, "update_method")
    }
}

impl TryFrom<String> for AuthKind {
    type Error = SettingsError;
    fn try_from(text: String) -> Result<Self, SettingsError> {
        use AuthKind::*;
        let all = [Bearer, Basic, Simple, OauthClientCredentials, None];
        one_of(&text, &all, AuthKind::as_str, "auth type")
    }
}

/// A target's settings cannot be used, and why.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SettingsError(pub String);

/// One outbound target (`[[targets]]` in the config file).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    pub name: String,
    /// `scim` (an application's SCIM endpoint), `ldap` (a directory), `manual` (work items
    /// for a person to carry out) or `amqp` (a message broker).
    #[serde(default)]
    pub kind: TargetKind,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The target's SCIM base URL, e.g. `https://app.example.com/scim/v2`, or for `ldap`
    /// targets the directory's `ldap://host:389` / `ldaps://host:636` URL, for `amqp` targets
    /// the broker's `amqp://host:5672/vhost` / `amqps://…`; `manual` targets have none.
    #[serde(default)]
    pub url: String,
    /// How an `ldap` target's directory is laid out (`[targets.ldap]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ldap: Option<LdapSettings>,
    /// Where an `amqp` target publishes (`[targets.amqp]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amqp: Option<AmqpSettings>,
    #[serde(default)]
    pub auth: TargetAuth,
    /// Provision Users to this target.
    #[serde(default = "yes")]
    pub users: bool,
    /// Only Users matching this SCIM filter are provisioned; those leaving it are deprovisioned.
    pub users_filter: Option<String>,
    /// Provision Groups to this target.
    #[serde(default = "yes")]
    pub groups: bool,
    /// `delete` removes deprovisioned users on the target; `deactivate` sets `active: false`.
    #[serde(default)]
    pub deprovision: Deprovision,
    /// Attempts before an order is given up (`Error`).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: i32,
    /// Orders delivered at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// First retry delay; doubles per attempt (with jitter) up to `retry_max_ms`.
    #[serde(default = "default_retry_base_ms")]
    pub retry_base_ms: u64,
    #[serde(default = "default_retry_max_ms")]
    pub retry_max_ms: u64,
    #[serde(default = "default_timeout_seconds")]
    pub timeout_seconds: u64,
    /// Most orders delivered per second (a token bucket allowing bursts of one second's worth);
    /// unset: no limit beyond `concurrency`.
    #[serde(default)]
    pub max_orders_per_second: Option<f64>,
    /// An order still failing this long after it was planned is given up (`Error`).
    #[serde(default = "default_max_age_seconds")]
    pub max_age_seconds: u64,
    /// How users are mapped to the target's attributes; empty: every User attribute as is.
    #[serde(default)]
    pub mapping: Vec<MappingRule>,
    /// `patch` sends only the managed attributes that differ from the target's copy; `put`
    /// replaces the whole user.
    #[serde(default)]
    pub update_method: UpdateMethod,
    /// The SCIM target answers `or` filters (`userName eq "a" or userName eq "b"`, and on
    /// `id`) completely: concurrent correlation lookups and read-backs then share one request.
    /// Off by default, since many applications support only `userName eq`; a target that
    /// rejects such a filter with 400 is asked one object at a time again.
    #[serde(default)]
    pub batch_lookups: bool,
    /// Aggregation, correlation, full sync and the mass-delete guard (`[targets.reconcile]`).
    #[serde(default, skip_serializing_if = "ReconcileSettings::is_default")]
    pub reconcile: ReconcileSettings,
    /// Which orders wait for an operator's approval (`[targets.review]`).
    #[serde(default, skip_serializing_if = "ReviewRules::is_default")]
    pub review: ReviewRules,
    /// Retryable failures in a row after which the target is quarantined (0: never).
    #[serde(default = "default_quarantine_after")]
    pub quarantine_after: u32,
    /// How long a quarantined target rests before a probe (doubling after failed probes).
    #[serde(default = "default_probe_interval_ms")]
    pub probe_interval_ms: u64,
    /// How long failures must go on, beside `quarantine_after` of them in a row, before the
    /// target is quarantined: a burst while it restarts is retried, not quarantined.
    #[serde(default = "default_quarantine_after_seconds")]
    pub quarantine_after_seconds: u64,
    /// What to take as given of a SCIM target whatever its ServiceProviderConfig announces
    /// (`[targets.capabilities]`).
    #[serde(default, skip_serializing_if = "CapabilityOverrides::is_default")]
    pub capabilities: CapabilityOverrides,
}

/// How scimgate authenticates to a target. Secrets can come from files (`*_file`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TargetAuth {
    /// `bearer`, `basic`, `oauth_client_credentials` or `none`.
    #[serde(rename = "type")]
    pub kind: Option<AuthKind>,
    pub token: Option<String>,
    pub token_file: Option<PathBuf>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub password_file: Option<PathBuf>,
    /// The name of an environment variable holding the password (an LDAP bind password
    /// handed to the process by its supervisor).
    pub password_env: Option<String>,
    /// OAuth 2.0 client credentials: the token endpoint, client and optional scope.
    pub token_url: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub client_secret_file: Option<PathBuf>,
    pub scope: Option<String>,
}

fn yes() -> bool {
    true
}
fn default_max_attempts() -> i32 {
    10
}
fn default_concurrency() -> usize {
    4
}
fn default_retry_base_ms() -> u64 {
    1_000
}
fn default_retry_max_ms() -> u64 {
    300_000
}
fn default_timeout_seconds() -> u64 {
    30
}
fn default_max_age_seconds() -> u64 {
    7 * 24 * 3600
}
fn default_quarantine_after() -> u32 {
    20
}
fn default_probe_interval_ms() -> u64 {
    60_000
}
fn default_quarantine_after_seconds() -> u64 {
    30
}

impl TargetConfig {
    /// A SCIM target with default settings.
    pub fn scim(name: &str, url: &str) -> TargetConfig {
        TargetConfig {
            name: name.into(),
            kind: TargetKind::Scim,
            enabled: true,
            url: url.into(),
            ldap: None,
            amqp: None,
            auth: TargetAuth::default(),
            users: true,
            users_filter: None,
            groups: true,
            deprovision: Deprovision::Delete,
            max_attempts: default_max_attempts(),
            concurrency: default_concurrency(),
            retry_base_ms: default_retry_base_ms(),
            retry_max_ms: default_retry_max_ms(),
            timeout_seconds: default_timeout_seconds(),
            max_age_seconds: default_max_age_seconds(),
            max_orders_per_second: None,
            mapping: Vec::new(),
            update_method: UpdateMethod::Patch,
            batch_lookups: false,
            reconcile: Default::default(),
            review: Default::default(),
            quarantine_after: default_quarantine_after(),
            probe_interval_ms: default_probe_interval_ms(),
            quarantine_after_seconds: default_quarantine_after_seconds(),
            capabilities: Default::default(),
        }
    }
}

impl TargetConfig {
    /// Checks what deserialising cannot: a URL of the kind's scheme (manual targets have
    /// none).
    pub fn validate(&self) -> Result<(), SettingsError> {
        let name = &self.name;
        if self.url.is_empty() {
            return match self.kind {
                TargetKind::Manual => Ok(()),
                _ => Err(SettingsError(format!(
                    "target {name:?}: url is required (only manual targets have none)"
                ))),
            };
        }
        let schemes: &[&str] = match self.kind {
            TargetKind::Ldap => &["ldap", "ldaps"],
            TargetKind::Amqp => &["amqp", "amqps"],
            TargetKind::Scim | TargetKind::Manual => &["http", "https"],
        };
        let parsed = reqwest::Url::parse(&self.url).ok();
        let usable = parsed
            .as_ref()
            .is_some_and(|u| schemes.contains(&u.scheme()) && u.host_str().is_some());
        if !usable {
            return Err(SettingsError(format!(
                "target {name:?}: url {:?} is not a {} URL",
                self.url,
                schemes.join(" or ")
            )));
        }
        if self.kind == TargetKind::Amqp {
            // Credentials in the URL would be stored and listed as they are.
            if parsed.is_some_and(|u| !u.username().is_empty() || u.password().is_some()) {
                return Err(SettingsError(format!(
                    "target {name:?}: put the broker's credentials in auth (type = \"basic\"), not in the url, so they are sealed and never shown"
                )));
            }
            let settings = self.amqp.as_ref().ok_or_else(|| {
                SettingsError(format!(
                    "target {name:?}: an amqp target needs [targets.amqp] with at least exchange"
                ))
            })?;
            settings
                .validate()
                .map_err(|e| SettingsError(format!("target {name:?}: {e}")))?;
        }
        Ok(())
    }
}

impl TargetConfig {
    /// A target stored through the admin API (`targets.config`), its secrets opened with
    /// `secrets`; the error says why it cannot be read.
    pub fn from_stored(
        name: &str,
        json: &str,
        secrets: &SecretBox,
    ) -> Result<TargetConfig, String> {
        let mut config: TargetConfig = serde_json::from_str(json)
            .map_err(|e| format!("stored target {name:?} is unreadable: {e}"))?;
        config
            .auth
            .map_secrets(|field, value| secrets.open(value, &format!("{name}/{field}")))
            .map_err(|e| format!("stored target {name:?}: {e}"))?;
        Ok(config)
    }
}

impl TargetAuth {
    /// The secrets a target may carry inline, by field name.
    pub const SECRET_FIELDS: [&'static str; 3] = ["token", "password", "client_secret"];

    /// Replaces each secret given inline with `f(field, value)` (sealing them for storage, or
    /// opening them when read back).
    pub fn map_secrets<E>(
        &mut self,
        mut f: impl FnMut(&str, &str) -> Result<String, E>,
    ) -> Result<(), E> {
        for (field, slot) in [
            ("token", &mut self.token),
            ("password", &mut self.password),
            ("client_secret", &mut self.client_secret),
        ] {
            if let Some(value) = slot.as_deref() {
                *slot = Some(f(field, value)?);
            }
        }
        Ok(())
    }

    /// The password, given inline, in a file or in an environment variable.
    pub fn password(&self) -> Result<Option<String>, SettingsError> {
        if let Some(name) = &self.password_env {
            return std::env::var(name)
                .map(Some)
                .map_err(|_| SettingsError(format!("environment variable {name} is not set")));
        }
        TargetAuth::secret(&self.password, &self.password_file)
    }

    /// Reads a secret given inline or in a file.
    pub fn secret(
        inline: &Option<String>,
        file: &Option<PathBuf>,
    ) -> Result<Option<String>, SettingsError> {
        match (inline, file) {
            (_, Some(path)) => std::fs::read_to_string(path)
                .map(|s| Some(s.trim_end().to_string()))
                .map_err(|e| SettingsError(format!("cannot read {}: {e}", path.display()))),
            (Some(value), None) => Ok(Some(value.clone())),
            (None, None) => Ok(None),
        }
    }
}
