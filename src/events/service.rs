//! What the admin API (and start-up) does with subscriptions: create, change, delete, rotate
//! secrets, read the delivery log, replay, send a test event.

use serde_json::json;

use super::settings::{EventsConfig, SubscriptionSettings};
use super::subscription::{self, Subscription};
use super::webhook::{self, SigningSecret};
use super::EventsError;
use crate::storage::event_deliveries::{
    self, DeliveryFilter, Planned, StoredAttempt, StoredDelivery,
};
use crate::storage::event_subscriptions;
use crate::storage::events::{self, EventType, NewEvent, StoredEvent};
use crate::storage::{Db, Micros};

/// How long an old secret keeps signing after a rotation, unless told otherwise.
pub const ROTATION_OVERLAP_HOURS: u64 = 24;

pub fn list(db: &Db) -> Result<Vec<Subscription>, EventsError> {
    let stored = db.read(event_subscriptions::all)?;
    stored
        .into_iter()
        .map(|s| Subscription::open(db, s))
        .collect()
}

/// The subscription with this id or name.
pub fn get(db: &Db, key: &str) -> Result<Subscription, EventsError> {
    let stored = db
        .read(|c| event_subscriptions::find(c, key))?
        .ok_or_else(|| EventsError::NotFound(format!("no subscription {key:?}")))?;
    Subscription::open(db, stored)
}

fn changeable(db: &Db, key: &str) -> Result<Subscription, EventsError> {
    let found = get(db, key)?;
    if found.from_config {
        return Err(EventsError::Conflict(format!(
            "subscription {:?} is defined in the config file; change it there",
            found.name
        )));
    }
    Ok(found)
}

/// Creates a subscription through the admin API; the answer carries the secret, shown once
/// (generated when none was given).
pub fn create(
    db: &Db,
    config: &EventsConfig,
    settings: &SubscriptionSettings,
) -> Result<(Subscription, String), EventsError> {
    if settings.secret_file.is_some() {
        return Err(EventsError::Invalid(
            "secret_file is for the config file; send the secret itself, or none to have one made"
                .into(),
        ));
    }
    let secret = settings.secret.clone().unwrap_or_else(webhook::generate);
    let secrets = [SigningSecret {
        secret: secret.clone(),
        expires_at: None,
    }];
    let fields = subscription::fields(db, config, settings, &secrets, false)?;
    let stored = event_subscriptions::insert(db, &fields)?.ok_or_else(|| {
        EventsError::Conflict(format!("a subscription named {:?} exists", fields.name))
    })?;
    Ok((Subscription::open(db, stored)?, secret))
}

/// Replaces a subscription's settings; its secrets stay unless a new one is given (which then
/// replaces them at once: use a rotation to overlap).
pub fn replace(
    db: &Db,
    config: &EventsConfig,
    key: &str,
    settings: &SubscriptionSettings,
) -> Result<Subscription, EventsError> {
    let current = changeable(db, key)?;
    let secrets = match &settings.secret {
        Some(secret) => vec![SigningSecret {
            secret: secret.clone(),
            expires_at: None,
        }],
        None => current.secrets.clone(),
    };
    let fields = subscription::fields(db, config, settings, &secrets, false)?;
    if fields.name != current.name
        && db
            .read(|c| event_subscriptions::find(c, &fields.name))?
            .is_some()
    {
        return Err(EventsError::Conflict(format!(
            "a subscription named {:?} exists",
            fields.name
        )));
    }
    let stored = event_subscriptions::update(db, &current.id, &fields)?
        .ok_or_else(|| EventsError::NotFound(format!("no subscription {key:?}")))?;
    Subscription::open(db, stored)
}

/// Turns a subscription on or off (keeping its other settings).
pub fn set_enabled(
    db: &Db,
    config: &EventsConfig,
    key: &str,
    enabled: bool,
) -> Result<Subscription, EventsError> {
    let current = changeable(db, key)?;
    let mut settings = settings_of(&current);
    settings.enabled = Some(enabled);
    let fields = subscription::fields(db, config, &settings, &current.secrets, false)?;
    let stored = event_subscriptions::update(db, &current.id, &fields)?
        .ok_or_else(|| EventsError::NotFound(format!("no subscription {key:?}")))?;
    Subscription::open(db, stored)
}

fn settings_of(current: &Subscription) -> SubscriptionSettings {
    SubscriptionSettings {
        name: current.name.clone(),
        format: Some(current.format.as_str().to_string()),
        url: current.url.clone(),
        event_types: current.interest.types().to_vec(),
        targets: current.interest.targets().map(<[String]>::to_vec),
        resource_types: current.interest.resource_types().map(<[String]>::to_vec),
        secret: None,
        secret_file: None,
        audience: current.audience.clone(),
        enabled: Some(current.enabled),
        max_age_hours: Some((current.max_age_seconds / 3600).max(0) as u64),
    }
}

pub fn delete(db: &Db, key: &str) -> Result<(), EventsError> {
    let current = changeable(db, key)?;
    event_subscriptions::delete(db, &current.id)?;
    Ok(())
}

/// Starts signing with a new secret (given, or made); the previous ones keep signing for
/// `overlap_hours`, so receivers can switch without a failed delivery. Returns the new one.
pub fn rotate_secret(
    db: &Db,
    config: &EventsConfig,
    key: &str,
    new_secret: Option<String>,
    overlap_hours: Option<u64>,
) -> Result<String, EventsError> {
    let current = changeable(db, key)?;
    let secret = new_secret.unwrap_or_else(webhook::generate);
    let now = db.clock().now_micros();
    let overlap = overlap_hours.unwrap_or(ROTATION_OVERLAP_HOURS) as i64 * 3_600_000_000;
    let mut secrets = vec![SigningSecret {
        secret: secret.clone(),
        expires_at: None,
    }];
    secrets.extend(
        current
            .secrets
            .iter()
            .filter(|s| s.expires_at.is_none_or(|at| at > now))
            .map(|s| SigningSecret {
                secret: s.secret.clone(),
                expires_at: Some(s.expires_at.unwrap_or(i64::MAX).min(now + overlap)),
            }),
    );
    let fields = subscription::fields(db, config, &settings_of(&current), &secrets, false)?;
    event_subscriptions::update(db, &current.id, &fields)?;
    Ok(secret)
}

/// Brings the config file's subscriptions into the database (created, or updated in place
/// keeping their position), and removes those the file no longer has.
pub fn sync_config(db: &Db, config: &EventsConfig) -> Result<(), EventsError> {
    let existing = db.read(event_subscriptions::all)?;
    for settings in &config.subscriptions {
        let secret = match (&settings.secret, &settings.secret_file) {
            (Some(secret), _) => secret.clone(),
            (None, Some(file)) => std::fs::read_to_string(file)
                .map_err(|e| {
                    EventsError::Invalid(format!(
                        "subscription {:?}: secret_file {}: {e}",
                        settings.name,
                        file.display()
                    ))
                })?
                .trim()
                .to_string(),
            (None, None) => {
                return Err(EventsError::Invalid(format!(
                    "subscription {:?} in the config file needs a secret or secret_file",
                    settings.name
                )))
            }
        };
        let secrets = [SigningSecret {
            secret,
            expires_at: None,
        }];
        let fields = subscription::fields(db, config, settings, &secrets, true)?;
        match existing.iter().find(|s| s.name == fields.name) {
            Some(found) if !found.from_config => {
                return Err(EventsError::Conflict(format!(
                "subscription {:?} in the config file exists already, made through the admin API",
                fields.name
            )))
            }
            Some(found) => {
                event_subscriptions::update(db, &found.id, &fields)?;
            }
            None => {
                event_subscriptions::insert(db, &fields)?;
            }
        }
    }
    for gone in existing
        .iter()
        .filter(|s| s.from_config && !config.subscriptions.iter().any(|c| c.name.trim() == s.name))
    {
        event_subscriptions::delete(db, &gone.id)?;
    }
    Ok(())
}

/// A subscription's deliveries, newest first.
pub fn deliveries(
    db: &Db,
    key: &str,
    filter: &DeliveryFilter,
) -> Result<Vec<(StoredDelivery, StoredEvent)>, EventsError> {
    let found = get(db, key)?;
    Ok(db.read(|c| event_deliveries::list(c, &found.id, filter))?)
}

pub fn delivery(
    db: &Db,
    key: &str,
    id: i64,
) -> Result<(StoredDelivery, StoredEvent, Vec<StoredAttempt>), EventsError> {
    let found = get(db, key)?;
    db.read(|c| event_deliveries::find(c, &found.id, id))?
        .ok_or_else(|| EventsError::NotFound(format!("no delivery {id} of {key:?}")))
}

/// Sends one delivery's event again, as a new delivery after the subscription's others.
pub fn replay_one(db: &Db, key: &str, id: i64) -> Result<(), EventsError> {
    let found = get(db, key)?;
    let (delivery, _, _) = db
        .read(|c| event_deliveries::find(c, &found.id, id))?
        .ok_or_else(|| EventsError::NotFound(format!("no delivery {id} of {key:?}")))?;
    event_deliveries::add(
        db,
        &found.id,
        &[Planned {
            event_seq: delivery.event_seq,
            resource_key: delivery.resource_key,
        }],
    )?;
    Ok(())
}

/// Sends again every event since `since` the subscription takes (up to what it has been
/// given so far; later events come anyway). Returns how many.
pub fn replay_since(db: &Db, key: &str, since: Micros) -> Result<usize, EventsError> {
    let found = get(db, key)?;
    let mut after = db.read(|c| events::position_before(c, since))?;
    let mut count = 0;
    while after < found.position {
        let page = db.read(|c| events::by_range(c, after, found.position, 1_000))?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        let planned: Vec<Planned> = page
            .iter()
            .filter(|e| found.takes(e))
            .map(|e| Planned {
                event_seq: e.seq,
                resource_key: e.resource_key(),
            })
            .collect();
        count += planned.len();
        event_deliveries::add(db, &found.id, &planned)?;
    }
    Ok(count)
}

/// Records a `test` event and queues it for this subscription alone.
pub fn send_test(db: &Db, key: &str, actor: &str) -> Result<StoredEvent, EventsError> {
    let found = get(db, key)?;
    if found.format.is_set() {
        return Err(EventsError::Invalid(
            "test events are sent to webhooks; a SET receiver gets identity events only".into(),
        ));
    }
    let event = events::record(
        db,
        &NewEvent {
            event_type: EventType::Test,
            resource_type: "Subscription".into(),
            resource_id: found.id.clone(),
            resource_seq: db.clock().now_micros(),
            target: None,
            actor: actor.to_string(),
            data: json!({ "subscription": found.name, "message": "a test event from scimgate" }),
        },
    )?;
    event_deliveries::add(
        db,
        &found.id,
        &[Planned {
            event_seq: event.seq,
            resource_key: event.resource_key(),
        }],
    )?;
    Ok(event)
}
