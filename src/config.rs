//! Configuration: defaults, then a TOML file, then environment variables (env wins).
//!
//! Environment variables are `SCIMGATE_` + the key, nested keys joined by `__`
//! (`SCIMGATE_AUTH__JWT__ISSUER`); `DATABASE_URL` is honoured as well as
//! `SCIMGATE_DATABASE_URL`. Secrets may also come from files (`secret_file`).

use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP server binds, e.g. `127.0.0.1:8080`.
    pub listen: String,
    /// `sqlite://PATH` (the embedded default) or `postgres://...`.
    pub database_url: String,
    pub pool_size: u32,
    /// How long a request waits for a database connection before it is answered `503` with
    /// `Retry-After` (the database is down or every connection is busy).
    pub db_wait_ms: u64,
    /// The key that seals secrets stored in the database (targets created through the admin
    /// API): a file holding 32 random bytes in base64. On SQLite it defaults to `DATABASE.key`
    /// beside the database, created on first start; on PostgreSQL secrets cannot be stored
    /// without one.
    pub secret_key_file: Option<PathBuf>,
    /// The externally visible SCIM base URL used in `meta.location` and `$ref`, e.g.
    /// `https://idm.example.com/scim/v2`. Defaults to `http://LISTEN/scim/v2`.
    pub base_url: Option<String>,
    /// Largest request body accepted, in bytes (larger ones get 413).
    pub max_payload_bytes: usize,
    /// Page size when a list request names no `count`.
    pub default_page_size: i64,
    /// Largest page served; larger `count` values are lowered to it.
    pub max_page_size: i64,
    /// Answer a successful PATCH with `204 No Content` (RFC 7644 §3.5.2 allows either) instead
    /// of `200` with the resource.
    pub patch_returns_no_content: bool,
    /// Most operations one `/Bulk` request may carry (announced as `bulk.maxOperations`).
    pub bulk_max_operations: i64,
    /// Largest `/Bulk` body in bytes (announced as `bulk.maxPayloadSize`).
    pub bulk_max_payload_bytes: i64,
    pub auth: AuthConfig,
    /// Outbound targets that accepted changes are provisioned to.
    pub targets: Vec<TargetConfig>,
    pub worker: WorkerConfig,
}

/// One outbound target (`[[targets]]` in the config file).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    pub name: String,
    /// `scim` (an application's SCIM endpoint), `ldap` (a directory) or `manual` (work items
    /// for a person to carry out).
    #[serde(default = "default_kind")]
    pub kind: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The target's SCIM base URL, e.g. `https://app.example.com/scim/v2`, or for `ldap`
    /// targets the directory's `ldap://host:389` / `ldaps://host:636` URL; `manual` targets
    /// have none.
    #[serde(default)]
    pub url: String,
    /// How an `ldap` target's directory is laid out (`[targets.ldap]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ldap: Option<crate::connectors::ldap::settings::LdapSettings>,
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
    #[serde(default = "default_deprovision")]
    pub deprovision: String,
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
    pub mapping: Vec<crate::provisioning::mapping::MappingRule>,
    /// `patch` sends only the managed attributes that differ from the target's copy; `put`
    /// replaces the whole user.
    #[serde(default = "default_update_method")]
    pub update_method: String,
    /// The SCIM target answers `or` filters (`userName eq "a" or userName eq "b"`, and on
    /// `id`) completely: concurrent correlation lookups and read-backs then share one request.
    /// Off by default, since many applications support only `userName eq`; a target that
    /// rejects such a filter with 400 is asked one object at a time again.
    #[serde(default)]
    pub batch_lookups: bool,
    /// Aggregation, correlation, full sync and the mass-delete guard (`[targets.reconcile]`).
    #[serde(
        default,
        skip_serializing_if = "crate::reconcile::ReconcileSettings::is_default"
    )]
    pub reconcile: crate::reconcile::ReconcileSettings,
    /// Which orders wait for an operator's approval (`[targets.review]`).
    #[serde(
        default,
        skip_serializing_if = "crate::provisioning::review::ReviewRules::is_default"
    )]
    pub review: crate::provisioning::review::ReviewRules,
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
    #[serde(
        default,
        skip_serializing_if = "crate::connectors::scim::capabilities::CapabilityOverrides::is_default"
    )]
    pub capabilities: crate::connectors::scim::capabilities::CapabilityOverrides,
}

/// How scimgate authenticates to a target. Secrets can come from files (`*_file`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TargetAuth {
    /// `bearer`, `basic`, `oauth_client_credentials` or `none`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
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

/// The delivery workers inside `scimgate serve` (and `scimgate worker`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkerConfig {
    pub enabled: bool,
    /// How often idle workers look for new work.
    pub poll_interval_ms: u64,
    /// How long a claimed order stays with its worker without word from it: a running worker
    /// renews its leases every third of this, so only a worker that died loses them.
    pub lease_seconds: u64,
    /// This instance's name, stable across its restarts and unique among the instances
    /// sharing one PostgreSQL database: a restart then gives back at once the orders its
    /// previous run held. Needless on SQLite (one instance: a restart gives back everything).
    pub instance: Option<String>,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            enabled: true,
            poll_interval_ms: 200,
            lease_seconds: 15,
            instance: None,
        }
    }
}

fn yes() -> bool {
    true
}
fn default_kind() -> String {
    "scim".into()
}
fn default_deprovision() -> String {
    "delete".into()
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
fn default_update_method() -> String {
    "patch".into()
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
            kind: default_kind(),
            enabled: true,
            url: url.into(),
            ldap: None,
            auth: TargetAuth::default(),
            users: true,
            users_filter: None,
            groups: true,
            deprovision: default_deprovision(),
            max_attempts: default_max_attempts(),
            concurrency: default_concurrency(),
            retry_base_ms: default_retry_base_ms(),
            retry_max_ms: default_retry_max_ms(),
            timeout_seconds: default_timeout_seconds(),
            max_age_seconds: default_max_age_seconds(),
            max_orders_per_second: None,
            mapping: Vec::new(),
            update_method: default_update_method(),
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

impl Config {
    /// Opens the configured database with `pool_size` connections, its connection wait and
    /// the key stored secrets are sealed with.
    pub fn open_database(
        &self,
        pool_size: u32,
    ) -> Result<crate::storage::Db, crate::storage::StoreError> {
        crate::storage::Db::open_configured(
            &self.database_url,
            pool_size,
            std::time::Duration::from_millis(self.db_wait_ms),
            self.secret_key_file.as_deref(),
        )
    }
}

impl TargetConfig {
    /// A target stored through the admin API (`targets.config`), its secrets opened with
    /// `secrets`; the error says why it cannot be read.
    pub fn from_stored(
        name: &str,
        json: &str,
        secrets: &crate::storage::secrets::SecretBox,
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
    pub fn password(&self) -> Result<Option<String>, ConfigError> {
        if let Some(name) = &self.password_env {
            return std::env::var(name)
                .map(Some)
                .map_err(|_| ConfigError(format!("environment variable {name} is not set")));
        }
        TargetAuth::secret(&self.password, &self.password_file)
    }

    /// Reads a secret given inline or in a file.
    pub fn secret(
        inline: &Option<String>,
        file: &Option<PathBuf>,
    ) -> Result<Option<String>, ConfigError> {
        match (inline, file) {
            (_, Some(path)) => std::fs::read_to_string(path)
                .map(|s| Some(s.trim_end().to_string()))
                .map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display()))),
            (Some(value), None) => Ok(Some(value.clone())),
            (None, None) => Ok(None),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Accept JWT bearer tokens from this issuer, besides API tokens.
    pub jwt: Option<JwtConfig>,
    /// How long a verified API token is remembered; a revoked token keeps working this long.
    /// 0 checks the database on every request.
    pub token_cache_seconds: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            jwt: None,
            token_cache_seconds: 5,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// `HS256`, `RS256` or `ES256`.
    pub algorithm: String,
    /// HS256 shared secret, or `secret_file` holding it.
    pub secret: Option<String>,
    pub secret_file: Option<PathBuf>,
    /// RS256/ES256 public key (PEM), inline or in `public_key_file`.
    pub public_key_pem: Option<String>,
    pub public_key_file: Option<PathBuf>,
    /// Required `iss` claim.
    pub issuer: String,
    /// Required `aud` claim.
    pub audience: String,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds.
    #[serde(default = "default_leeway")]
    pub leeway_seconds: u64,
}

fn default_leeway() -> u64 {
    30
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8080".into(),
            database_url: "sqlite://scimgate.db".into(),
            pool_size: 8,
            db_wait_ms: 2_000,
            secret_key_file: None,
            base_url: None,
            max_payload_bytes: 1024 * 1024,
            default_page_size: 100,
            max_page_size: 1000,
            patch_returns_no_content: false,
            bulk_max_operations: 1000,
            bulk_max_payload_bytes: 4 * 1024 * 1024,
            targets: Vec::new(),
            worker: WorkerConfig::default(),
            auth: AuthConfig::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(String);

impl ConfigError {
    pub fn from_message(message: impl Into<String>) -> Self {
        ConfigError(message.into())
    }
}

impl Config {
    /// Loads configuration. `file` is read when given (and must exist); otherwise
    /// `scimgate.toml` in the working directory is read if present.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(path) if !path.exists() => {
                return Err(ConfigError(format!(
                    "config file {} does not exist",
                    path.display()
                )))
            }
            Some(path) => figment = figment.merge(Toml::file(path)),
            None => figment = figment.merge(Toml::file("scimgate.toml")),
        }
        figment = figment
            .merge(Env::raw().only(&["DATABASE_URL"]))
            .merge(Env::prefixed("SCIMGATE_").split("__").ignore(&["CONFIG"]));
        let config: Config = figment.extract().map_err(|e| ConfigError(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks settings that deserialising cannot (the admin API checks a new target with it).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.default_page_size < 0 || self.max_page_size < 1 {
            return Err(ConfigError("page sizes must be positive".into()));
        }
        if let Some(jwt) = &self.auth.jwt {
            jwt.validate()?;
        }
        let mut names = std::collections::HashSet::new();
        for t in &self.targets {
            if !names.insert(t.name.as_str()) {
                return Err(ConfigError(format!(
                    "target name {:?} is used twice",
                    t.name
                )));
            }
            if !matches!(t.kind.as_str(), "scim" | "ldap" | "manual") {
                return Err(ConfigError(format!(
                    "target {:?}: kind {:?} is not supported (scim, ldap, manual)",
                    t.name, t.kind
                )));
            }
            if t.url.is_empty() && t.kind != "manual" {
                return Err(ConfigError(format!(
                    "target {:?}: url is required (only manual targets have none)",
                    t.name
                )));
            }
            if !t.url.is_empty() {
                let schemes: &[&str] = match t.kind.as_str() {
                    "ldap" => &["ldap", "ldaps"],
                    _ => &["http", "https"],
                };
                let parsed = reqwest::Url::parse(&t.url).ok();
                let usable = parsed
                    .as_ref()
                    .is_some_and(|u| schemes.contains(&u.scheme()) && u.host_str().is_some());
                if !usable {
                    return Err(ConfigError(format!(
                        "target {:?}: url {:?} is not a {} URL",
                        t.name,
                        t.url,
                        schemes.join(" or ")
                    )));
                }
            }
            if !matches!(t.update_method.as_str(), "patch" | "put") {
                return Err(ConfigError(format!(
                    "target {:?}: update_method must be patch or put",
                    t.name
                )));
            }
            if !matches!(t.deprovision.as_str(), "delete" | "deactivate") {
                return Err(ConfigError(format!(
                    "target {:?}: deprovision must be delete or deactivate",
                    t.name
                )));
            }
            if !matches!(
                t.auth.kind.as_deref(),
                None | Some("bearer" | "basic" | "simple" | "none" | "oauth_client_credentials")
            ) {
                return Err(ConfigError(format!(
                    "target {:?}: auth type must be bearer, basic, simple (LDAP bind), oauth_client_credentials or none",
                    t.name
                )));
            }
        }
        Ok(())
    }

    /// The base URL for `meta.location`, given the address actually bound.
    pub fn base_url_for(&self, bound: std::net::SocketAddr) -> String {
        match &self.base_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => format!("http://{bound}/scim/v2"),
        }
    }
}

impl JwtConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        match self.algorithm.as_str() {
            "HS256" if self.secret.is_none() && self.secret_file.is_none() => Err(ConfigError(
                "auth.jwt: HS256 needs secret or secret_file".into(),
            )),
            "RS256" | "ES256"
                if self.public_key_pem.is_none() && self.public_key_file.is_none() =>
            {
                Err(ConfigError(
                    "auth.jwt: RS256/ES256 need public_key_pem or public_key_file".into(),
                ))
            }
            "HS256" | "RS256" | "ES256" => Ok(()),
            other => Err(ConfigError(format!(
                "auth.jwt.algorithm {other:?} is not one of HS256, RS256, ES256"
            ))),
        }
    }

    /// The key material, read from the file when one is named.
    pub fn key_material(&self) -> Result<Vec<u8>, ConfigError> {
        let (inline, file) = match self.algorithm.as_str() {
            "HS256" => (&self.secret, &self.secret_file),
            _ => (&self.public_key_pem, &self.public_key_file),
        };
        if let Some(path) = file {
            let bytes = std::fs::read(path)
                .map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?;
            // Secret files usually end in a newline that is not part of the secret.
            return Ok(String::from_utf8_lossy(&bytes)
                .trim_end()
                .as_bytes()
                .to_vec());
        }
        Ok(inline.clone().unwrap_or_default().into_bytes())
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment's Jail API returns its own large error type
mod tests {
    use super::*;
    use figment::Jail;

    #[test]
    fn file_then_environment_with_env_winning() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "scimgate.toml",
                r#"
                    listen = "0.0.0.0:9000"
                    database_url = "sqlite://from-file.db"
                    pool_size = 3
                    [auth.jwt]
                    algorithm = "HS256"
                    secret = "from-file"
                    issuer = "https://issuer"
                    audience = "scimgate"
                "#,
            )?;
            let config = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(config.listen, "0.0.0.0:9000");
            assert_eq!(config.pool_size, 3);
            assert_eq!(config.max_page_size, 1000, "defaults fill the rest");

            jail.set_env("SCIMGATE_LISTEN", "127.0.0.1:7000");
            jail.set_env("DATABASE_URL", "postgres://db/scim");
            jail.set_env("SCIMGATE_AUTH__JWT__AUDIENCE", "from-env");
            let config = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(config.listen, "127.0.0.1:7000");
            assert_eq!(config.database_url, "postgres://db/scim");
            let jwt = config.auth.jwt.ok_or("jwt settings")?;
            assert_eq!(jwt.audience, "from-env");
            assert_eq!(jwt.secret.as_deref(), Some("from-file"));

            jail.set_env("SCIMGATE_DATABASE_URL", "sqlite://explicit.db");
            let config = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(
                config.database_url, "sqlite://explicit.db",
                "the prefixed variable wins"
            );
            Ok(())
        });
    }

    #[test]
    fn invalid_settings_are_reported() {
        Jail::expect_with(|jail| {
            jail.create_file("scimgate.toml", "lisen = \"typo\"")?;
            assert!(Config::load(None).is_err(), "unknown keys are errors");
            jail.create_file(
                "scimgate.toml",
                "[auth.jwt]\nalgorithm = \"HS512\"\nissuer = \"i\"\naudience = \"a\"",
            )?;
            let err = Config::load(None).expect_err("unsupported algorithm");
            assert!(err.to_string().contains("HS512"));
            Ok(())
        });
    }
}
