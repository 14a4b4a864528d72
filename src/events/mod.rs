//! Events out: the outbox (written by storage with every change) fanned out to subscriptions
//! and delivered as Standard Webhooks, RFC 9967 SETs pushed (RFC 8935) or polled (RFC 8936);
//! and the change feed for pull consumers.

pub mod destination;
pub mod interest;
pub mod set;
pub mod settings;
pub mod webhook;

pub use settings::{EventsConfig, SetConfig, SubscriptionSettings};
