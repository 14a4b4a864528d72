//! How an `amqp` target publishes (`[targets.amqp]`): the exchange, the routing key template,
//! and what is declared on first use. The broker's URL is the target's `url`
//! (`amqp://host:5672/vhost` or `amqps://…`); credentials are its `auth` (`type = "basic"`),
//! never the URL, so they are sealed at rest and never echoed.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::SettingsError;

/// The routing key when none is configured: `User.upsert`, `Group.delete`.
pub const DEFAULT_ROUTING_KEY: &str = "{resourceType}.{operation}";

/// The placeholders a routing key template may use.
pub const PLACEHOLDERS: [&str; 4] = ["resourceType", "operation", "origin", "target"];

/// The exchange types scimgate declares.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExchangeType {
    #[default]
    Topic,
    Direct,
    Fanout,
    Headers,
}

/// The type of the queue declared beside the exchange.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QueueType {
    /// Replicated, durable, and what RabbitMQ recommends for data that must not be lost.
    #[default]
    Quorum,
    Classic,
}

impl QueueType {
    pub const fn as_str(self) -> &'static str {
        match self {
            QueueType::Quorum => "quorum",
            QueueType::Classic => "classic",
        }
    }
}

/// `[targets.amqp]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AmqpSettings {
    /// The exchange every message is published to.
    pub exchange: String,
    pub exchange_type: ExchangeType,
    /// Declare the exchange (durable) when the first message goes out. Off: it must exist.
    pub declare: bool,
    /// Also declare this durable queue and bind it to the exchange (needs `declare`).
    pub queue: Option<String>,
    pub queue_type: QueueType,
    /// The binding key of `queue`; `#` takes every message of a topic exchange.
    pub binding_key: String,
    /// The routing key of each message: `{resourceType}`, `{operation}`, `{origin}` and
    /// `{target}` are replaced by the order's.
    pub routing_key: String,
    /// PEM file with the CA certificate(s) that sign the broker's certificate (`amqps://`);
    /// unset: the system's trust store.
    pub ca_cert_file: Option<PathBuf>,
}

impl Default for AmqpSettings {
    fn default() -> AmqpSettings {
        AmqpSettings {
            exchange: String::new(),
            exchange_type: ExchangeType::Topic,
            declare: false,
            queue: None,
            queue_type: QueueType::Quorum,
            binding_key: "#".into(),
            routing_key: DEFAULT_ROUTING_KEY.into(),
            ca_cert_file: None,
        }
    }
}

impl AmqpSettings {
    /// Checks what deserialising cannot.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.exchange.is_empty() {
            return Err(SettingsError(
                "amqp.exchange is required: the exchange every message is published to".into(),
            ));
        }
        if self.exchange.starts_with("amq.") && self.declare {
            return Err(SettingsError(
                "amqp.exchange: names starting with \"amq.\" are reserved by the broker and cannot be declared".into(),
            ));
        }
        if self.queue.is_some() && !self.declare {
            return Err(SettingsError(
                "amqp.queue is declared only with amqp.declare = true".into(),
            ));
        }
        for name in [Some(&self.exchange), self.queue.as_ref()]
            .into_iter()
            .flatten()
        {
            if name.len() > 255 {
                return Err(SettingsError(format!(
                    "amqp: {name:?} is longer than AMQP's 255 bytes"
                )));
            }
        }
        check_template(&self.routing_key)
    }
}

/// A routing key template may name only the known placeholders, and braces must pair.
fn check_template(template: &str) -> Result<(), SettingsError> {
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            return Err(SettingsError(format!(
                "amqp.routing_key {template:?}: a '{{' is not closed"
            )));
        };
        let name = &after[..close];
        if !PLACEHOLDERS.contains(&name) {
            return Err(SettingsError(format!(
                "amqp.routing_key {template:?}: unknown placeholder {{{name}}}; known: {}",
                PLACEHOLDERS.map(|p| format!("{{{p}}}")).join(", ")
            )));
        }
        rest = &after[close + 1..];
    }
    if rest.contains('}') {
        return Err(SettingsError(format!(
            "amqp.routing_key {template:?}: a '}}' has no '{{'"
        )));
    }
    Ok(())
}

/// The routing key for one message: each placeholder replaced by `value(name)`.
pub fn routing_key(template: &str, value: impl Fn(&str) -> String) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                out.push_str(&value(&after[..close]));
                rest = &after[close + 1..];
            }
            None => {
                rest = &rest[open..];
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(exchange: &str) -> AmqpSettings {
        AmqpSettings {
            exchange: exchange.into(),
            ..AmqpSettings::default()
        }
    }

    #[test]
    fn the_routing_key_fills_its_placeholders() {
        let key = routing_key(DEFAULT_ROUTING_KEY, |name| match name {
            "resourceType" => "User".into(),
            "operation" => "upsert".into(),
            _ => String::new(),
        });
        assert_eq!(key, "User.upsert");
        let key = routing_key("scim.{target}.{origin}", |name| name.to_uppercase());
        assert_eq!(key, "scim.TARGET.ORIGIN");
    }

    #[test]
    fn settings_are_checked() {
        assert!(settings("identity").validate().is_ok());
        assert!(settings("").validate().is_err(), "an exchange is required");
        let mut unknown = settings("identity");
        unknown.routing_key = "{resourceType}.{userName}".into();
        let refused = unknown.validate().err().map(|e| e.0).unwrap_or_default();
        assert!(refused.contains("{userName}"), "{refused}");
        let mut open = settings("identity");
        open.routing_key = "{resourceType".into();
        assert!(open.validate().is_err());
        let mut stray = settings("identity");
        stray.routing_key = "a}".into();
        assert!(stray.validate().is_err());
        let mut queue_alone = settings("identity");
        queue_alone.queue = Some("q".into());
        assert!(queue_alone.validate().is_err(), "a queue needs declare");
        let mut reserved = settings("amq.topic");
        assert!(reserved.validate().is_ok(), "amq.topic exists already");
        reserved.declare = true;
        assert!(reserved.validate().is_err());
    }
}
