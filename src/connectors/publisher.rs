//! Targets that take messages instead of calls (a message broker): the engine hands them one
//! message per order through [`Publisher`], beside the [`super::Connector`] they also are (for
//! the connection test).

use super::{BoxFuture, ConnectorError, Delivered};

/// One message: the order as the target's consumers will read it.
#[derive(Debug, Clone)]
pub struct Message {
    pub routing_key: String,
    /// JSON.
    pub body: Vec<u8>,
    /// The same for every attempt of one order, so consumers can drop a redelivered copy.
    pub message_id: String,
    /// What the message is about, e.g. `User.upsert` (AMQP's `type` property).
    pub kind: String,
    /// When the change it carries was accepted, in seconds since the epoch.
    pub timestamp: u64,
    /// Further headers (resource type and id, operation, origin, change sequence).
    pub headers: Vec<(&'static str, String)>,
}

/// A target that publishes messages.
pub trait Publisher: Send + Sync {
    /// Publishes `message` and returns once the broker has taken responsibility for it (a
    /// publisher confirm). An unroutable message is refused, never dropped silently.
    fn publish<'a>(
        &'a self,
        message: &'a Message,
    ) -> BoxFuture<'a, Result<Delivered, ConnectorError>>;
}
