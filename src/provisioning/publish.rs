//! Targets that take messages (`amqp`): the order's action becomes one message, the object as
//! the target's mapping makes it inside an envelope that says which order, change, resource,
//! operation, origin and actor it carries. The message id is the order's, the same on every
//! attempt, so a consumer drops a copy that a retry after a lost confirm publishes again.
//!
//! A queue has no objects to look up or read back: the link kept for the target is the
//! resource's own id, set by the first `upsert` and removed by a `delete`, so scope changes and
//! deletions are decided as for any other target, and `executed` (the broker confirmed the
//! message) is final.

use serde_json::{json, Value};

use super::decide::Action;
use super::group_members::outbound_group;
use super::outcome::{Outcome, Verification};
use super::snapshot::{kind_of, Snapshot};
use super::{Context, Target};
use crate::connectors::publisher::{Message, Publisher};
use crate::connectors::{ConnectorError, ObjectKind};
use crate::storage::orders::{LinkChange, Order};
use crate::targets::amqp::routing_key;

/// What the order says once its message is confirmed.
const FINAL: &str =
    "published and confirmed by the broker; a queue is not read back, so executed is final";

/// Publishes the message the order's action calls for.
pub async fn publish(
    directory: &Context,
    target: &Target,
    publisher: &dyn Publisher,
    order: &Order,
    mut snapshot: Snapshot,
    action: &Action,
) -> Result<Outcome, ConnectorError> {
    let kind = kind_of(order);
    let mapped = match kind {
        ObjectKind::User => snapshot.take_user_object(target, &order.resource_id),
        ObjectKind::Group => None,
    };
    let mut note = None;
    let (operation, object, link) = match action {
        Action::Nothing => {
            return Ok(done(
                None,
                Some("nothing to publish: the resource was never published to this target".into()),
            ))
        }
        Action::Create | Action::Update { .. } => {
            let resource = snapshot
                .state
                .as_ref()
                .ok_or_else(|| ConnectorError::Retryable {
                    message: "the resource could not be read".into(),
                    status: None,
                    retry_after: None,
                })?;
            let object = match (kind, mapped) {
                (ObjectKind::User, Some(object)) => object,
                (ObjectKind::User, None) => target.mapping.user(resource, &order.resource_id),
                (ObjectKind::Group, _) => {
                    let group = outbound_group(
                        directory.db(),
                        &target.config.name,
                        resource,
                        &order.resource_id,
                    )
                    .await?;
                    note = group.note;
                    group.object
                }
            };
            let link = matches!(action, Action::Create)
                .then(|| LinkChange::Set(order.resource_id.clone()));
            ("upsert", without_secrets(target, object), link)
        }
        Action::Deactivate { .. } => {
            let mut object = match mapped {
                Some(object) => without_secrets(target, object),
                None => json!({}),
            };
            object["active"] = Value::Bool(false);
            ("deactivate", object, None)
        }
        Action::Delete { .. } => ("delete", Value::Null, Some(LinkChange::Remove)),
    };
    let message = message(target, order, &snapshot, operation, object);
    publisher.publish(&message).await?;
    let note = match note {
        Some(members) => format!("{FINAL}; {members}"),
        None => FINAL.to_string(),
    };
    Ok(done(link, Some(note)))
}

fn done(link: Option<LinkChange>, note: Option<String>) -> Outcome {
    Outcome {
        delivered: Default::default(),
        verification: Verification::NotApplicable,
        link,
        parked: None,
        note,
    }
}

/// Passwords never go into a message: a queue is no place to keep a secret.
fn without_secrets(target: &Target, mut object: Value) -> Value {
    if let Value::Object(fields) = &mut object {
        fields.remove("password");
        for name in target.mapping.secret_targets() {
            fields.remove(name);
        }
    }
    object
}

/// What a message says around the object (serialised as it stands, without building a JSON
/// tree first).
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<'a> {
    order_id: i64,
    change_seq: i64,
    target: &'a str,
    resource_type: &'a str,
    resource_id: &'a str,
    operation: &'a str,
    origin: &'a str,
    occurred_at: String,
    actor: &'a str,
    object: &'a Value,
}

/// The message for the order: envelope and object as JSON, and the headers consumers route
/// and deduplicate by.
fn message(
    target: &Target,
    order: &Order,
    snapshot: &Snapshot,
    operation: &str,
    object: Value,
) -> Message {
    let origin = order.origin.as_str();
    // Only accepted changes have an author; a full sync or an on-demand run is scimgate's.
    let (actor, occurred_at) = match &snapshot.author {
        Some((actor, at)) if order.change_seq > 0 => (actor.as_str(), *at),
        _ => ("scimgate", order.created_at),
    };
    let envelope = Envelope {
        order_id: order.id,
        change_seq: order.change_seq,
        target: &target.config.name,
        resource_type: &order.resource_type,
        resource_id: &order.resource_id,
        operation,
        origin,
        occurred_at: crate::scim::output::format_time(occurred_at),
        actor,
        object: &object,
    };
    let template = target
        .config
        .amqp
        .as_ref()
        .map(|a| a.routing_key.as_str())
        .unwrap_or(crate::targets::amqp::DEFAULT_ROUTING_KEY);
    let routing_key = routing_key(template, |name| match name {
        "resourceType" => order.resource_type.clone(),
        "operation" => operation.to_string(),
        "origin" => origin.to_string(),
        "target" => target.config.name.clone(),
        _ => String::new(),
    });
    Message {
        routing_key,
        body: serde_json::to_vec(&envelope).unwrap_or_default(),
        message_id: order.id.to_string(),
        kind: format!("{}.{operation}", order.resource_type),
        timestamp: (occurred_at.max(0) / 1_000_000) as u64,
        headers: vec![
            ("resource_type", order.resource_type.clone()),
            ("resource_id", order.resource_id.clone()),
            ("operation", operation.to_string()),
            ("origin", origin.to_string()),
            ("change_seq", order.change_seq.to_string()),
        ],
    }
}
