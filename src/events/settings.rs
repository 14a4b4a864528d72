//! The `[events]` section of the config file, and a subscription's settings as the config file
//! and the admin API give them.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventsConfig {
    /// Fan events out and send them from this instance.
    pub enabled: bool,
    /// Let subscriptions send to loopback and private-range addresses (tests, labs).
    pub allow_private_destinations: bool,
    /// How often an idle instance looks for new events (a commit of this instance wakes it).
    pub poll_interval_ms: u64,
    /// First retry delay of a failed delivery; it doubles (with jitter) up to `retry_max_ms`.
    pub retry_base_ms: u64,
    pub retry_max_ms: u64,
    /// A delivery still failing this long after its event is given up (`failed`), unless its
    /// subscription says otherwise.
    pub max_age_hours: u64,
    /// Time allowed for one delivery request.
    pub timeout_ms: u64,
    /// Deliveries of one subscription in flight at once (of different resources).
    pub concurrency: usize,
    /// Events are kept this long (and until no delivery needs them).
    pub retention_hours: u64,
    /// Longest an RFC 8936 poll request waits for events.
    pub long_poll_seconds: u64,
    /// When this many SCIM requests (or more) are served at once, fan-out and delivery wait
    /// until 50 ms after (up to five seconds per round): identity providers' requests go first, and deliveries
    /// catch up when the burst ends. 0: never wait.
    pub yield_at_requests_in_flight: usize,
    /// Signing of RFC 9967 Security Event Tokens; without it, SET subscriptions are refused.
    pub set: Option<SetConfig>,
    pub subscriptions: Vec<SubscriptionSettings>,
}

impl Default for EventsConfig {
    fn default() -> Self {
        EventsConfig {
            enabled: true,
            allow_private_destinations: false,
            poll_interval_ms: 200,
            retry_base_ms: 5_000,
            retry_max_ms: 3_600_000,
            max_age_hours: 72,
            timeout_ms: 10_000,
            concurrency: 32,
            retention_hours: 24 * 7,
            long_poll_seconds: 30,
            yield_at_requests_in_flight: 8,
            set: None,
            subscriptions: Vec::new(),
        }
    }
}

/// How SETs are signed: `RS256` or `ES256` with a PEM private key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetConfig {
    /// The `iss` claim, e.g. `https://scim.example.com`.
    pub issuer: String,
    pub algorithm: String,
    pub private_key_file: PathBuf,
    /// The `kid` header, so receivers can pick the key.
    pub key_id: Option<String>,
}

/// One subscription's settings.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SubscriptionSettings {
    pub name: String,
    /// `webhook` (Standard Webhooks), `set_push` (RFC 8935) or `set_poll` (RFC 8936).
    pub format: Option<String>,
    /// Where deliveries are POSTed (not for `set_poll`).
    pub url: Option<String>,
    /// Event types, with wildcards: `order.*`, `*`. Default: every type.
    pub event_types: Vec<String>,
    /// Only events of these targets (events with no target never pass).
    pub targets: Option<Vec<String>>,
    /// Only events about these resource types (`User`, `Group`, also through orders).
    pub resource_types: Option<Vec<String>>,
    /// `whsec_...`: signs webhooks; a `set_poll` receiver's bearer token. Generated when
    /// absent (through the admin API; the answer shows it once).
    pub secret: Option<String>,
    pub secret_file: Option<PathBuf>,
    /// The `aud` claim of SETs.
    pub audience: Option<String>,
    pub enabled: Option<bool>,
    pub max_age_hours: Option<u64>,
}
