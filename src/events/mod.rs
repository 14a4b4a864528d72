//! Events out: the outbox (written by storage with every change) fanned out to subscriptions
//! and delivered as Standard Webhooks, RFC 9967 SETs pushed (RFC 8935) or polled (RFC 8936);
//! and the change feed for pull consumers.

pub mod destination;
pub mod dispatch;
mod error;
pub mod feed;
pub mod interest;
pub mod poll;
pub mod runner;
pub mod sender;
pub mod service;
pub mod set;
pub mod settings;
pub mod subscription;
pub mod webhook;

pub use error::EventsError;
pub use runner::{EventsHandle, EventsRunner};
pub use settings::{EventsConfig, SetConfig, SubscriptionSettings};
pub use subscription::{Format, Subscription};
