//! A subscription as the rest of the server sees it: parsed, checked, its secrets opened.

use super::destination;
use super::interest::Interest;
use super::settings::{EventsConfig, SubscriptionSettings};
use super::webhook::{self, SigningSecret};
use super::EventsError;
use crate::storage::event_subscriptions::{StoredSubscription, SubscriptionFields};
use crate::storage::events::StoredEvent;
use crate::storage::secrets::SecretError;
use crate::storage::{Db, Micros};

/// How a subscription receives events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Standard Webhooks: a signed JSON POST per event.
    Webhook,
    /// RFC 8935: a signed SET POSTed per event.
    SetPush,
    /// RFC 8936: the receiver polls for SETs and acknowledges them.
    SetPoll,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Webhook => "webhook",
            Format::SetPush => "set_push",
            Format::SetPoll => "set_poll",
        }
    }

    pub fn parse(text: &str) -> Result<Format, EventsError> {
        match text {
            "webhook" => Ok(Format::Webhook),
            "set_push" => Ok(Format::SetPush),
            "set_poll" => Ok(Format::SetPoll),
            other => Err(EventsError::Invalid(format!(
                "format {other:?}: use webhook, set_push or set_poll"
            ))),
        }
    }

    pub fn is_set(self) -> bool {
        self != Format::Webhook
    }

    /// Whether scimgate sends (else the receiver polls).
    pub fn is_pushed(self) -> bool {
        self != Format::SetPoll
    }
}

#[derive(Debug, Clone)]
pub struct Subscription {
    pub id: String,
    pub name: String,
    pub format: Format,
    pub url: Option<String>,
    pub interest: Interest,
    pub secrets: Vec<SigningSecret>,
    pub audience: Option<String>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub max_age_seconds: i64,
    pub position: i64,
    pub from_config: bool,
    pub created_at: Micros,
    pub updated_at: Micros,
}

impl Subscription {
    /// Opens a stored subscription (its secrets unsealed).
    pub fn open(db: &Db, stored: StoredSubscription) -> Result<Subscription, EventsError> {
        let interest = Routing::of(&stored)?.interest;
        let opened = db
            .secrets()
            .open(&stored.secrets, &seal_context(&stored.name))
            .map_err(|e| corrupt(&stored, "secrets", &e))?;
        let secrets: Vec<SigningSecret> =
            serde_json::from_str(&opened).map_err(|e| corrupt(&stored, "secrets", &e))?;
        Ok(Subscription {
            format: Format::parse(&stored.format)?,
            id: stored.id,
            name: stored.name,
            url: stored.url,
            interest,
            secrets,
            audience: stored.audience,
            enabled: stored.enabled,
            disabled_reason: stored.disabled_reason,
            max_age_seconds: stored.max_age_seconds,
            position: stored.position,
            from_config: stored.from_config,
            created_at: stored.created_at,
            updated_at: stored.updated_at,
        })
    }

    /// Whether an event goes to this subscription.
    pub fn takes(&self, event: &StoredEvent) -> bool {
        takes(self.format, &self.interest, event)
    }

    /// Whether `presented` is one of the live secrets (a poll's bearer token).
    pub fn accepts_bearer(&self, presented: &str, now: Micros) -> bool {
        self.secrets
            .iter()
            .filter(|s| s.expires_at.is_none_or(|at| at > now))
            .any(|s| constant_time_eq(s.secret.as_bytes(), presented.as_bytes()))
    }
}

/// Which events a stored subscription takes, read without opening its secrets (fan-out).
#[derive(Debug, Clone)]
pub struct Routing {
    pub format: Format,
    pub interest: Interest,
}

impl Routing {
    pub fn of(stored: &StoredSubscription) -> Result<Routing, EventsError> {
        let list = |text: &Option<String>| -> Result<Option<Vec<String>>, EventsError> {
            text.as_deref()
                .map(serde_json::from_str)
                .transpose()
                .map_err(|e| corrupt(stored, "filter", &e))
        };
        let types: Vec<String> = serde_json::from_str(&stored.event_types)
            .map_err(|e| corrupt(stored, "event types", &e))?;
        let interest = Interest::new(
            &types,
            list(&stored.targets)?,
            list(&stored.resource_types)?,
        )
        .map_err(|e| corrupt(stored, "event types", &e))?;
        Ok(Routing {
            format: Format::parse(&stored.format)?,
            interest,
        })
    }

    pub fn takes(&self, event: &StoredEvent) -> bool {
        takes(self.format, &self.interest, event)
    }
}

/// An event goes to a subscription when its interest takes it, and for SETs only when it is
/// an identity event (the others have no SET form).
fn takes(format: Format, interest: &Interest, event: &StoredEvent) -> bool {
    interest.takes(event) && (!format.is_set() || super::set::is_identity_event(&event.event_type))
}

fn corrupt(stored: &StoredSubscription, what: &str, e: &dyn std::fmt::Display) -> EventsError {
    EventsError::Invalid(format!(
        "subscription {:?}: stored {what}: {e}",
        stored.name
    ))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn seal_context(name: &str) -> String {
    format!("event-subscription/{name}")
}

/// Checks settings and turns them into the stored fields, with `secrets` sealed.
pub fn fields(
    db: &Db,
    config: &EventsConfig,
    settings: &SubscriptionSettings,
    secrets: &[SigningSecret],
    from_config: bool,
) -> Result<SubscriptionFields, EventsError> {
    let name = settings.name.trim();
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(EventsError::Invalid(format!(
            "name {name:?}: 1 to 64 letters, digits, '-', '_' or '.'"
        )));
    }
    let format = Format::parse(settings.format.as_deref().unwrap_or("webhook"))?;
    let url = match (&settings.url, format.is_pushed()) {
        (Some(url), true) => Some(
            destination::check_url(url, config.allow_private_destinations)
                .map_err(|e| EventsError::Invalid(e.to_string()))?
                .to_string(),
        ),
        (None, true) => {
            return Err(EventsError::Invalid(format!(
                "a {} subscription needs a url",
                format.as_str()
            )))
        }
        (Some(_), false) => {
            return Err(EventsError::Invalid(
                "a set_poll subscription has no url: its receiver polls /events/NAME".into(),
            ))
        }
        (None, false) => None,
    };
    if format.is_set() && config.set.is_none() {
        return Err(EventsError::Invalid(format!(
            "a {} subscription needs [events.set] (the SET signing key) in the config file",
            format.as_str()
        )));
    }
    let interest = Interest::new(
        &settings.event_types,
        settings.targets.clone(),
        settings.resource_types.clone(),
    )
    .map_err(|e| EventsError::Invalid(e.to_string()))?;
    for secret in secrets {
        webhook::key_of(&secret.secret).map_err(|e| EventsError::Invalid(e.to_string()))?;
    }
    let json = |v: &[String]| serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
    let plain = serde_json::to_string(secrets).map_err(|e| EventsError::Invalid(e.to_string()))?;
    let sealed = db
        .secrets()
        .seal(&plain, &seal_context(name))
        .map_err(|e| match e {
            SecretError::NoKey => EventsError::NoKey(e.to_string()),
            other => EventsError::Invalid(other.to_string()),
        })?;
    let max_age_hours = settings.max_age_hours.unwrap_or(config.max_age_hours);
    Ok(SubscriptionFields {
        name: name.to_string(),
        format: format.as_str().to_string(),
        url,
        event_types: json(interest.types()),
        targets: interest.targets().map(json),
        resource_types: interest.resource_types().map(json),
        secrets: sealed,
        audience: settings.audience.clone(),
        enabled: settings.enabled.unwrap_or(true),
        max_age_seconds: (max_age_hours.saturating_mul(3600)).min(i64::MAX as u64) as i64,
        from_config,
    })
}
