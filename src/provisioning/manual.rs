//! Targets of kind `manual`: nothing is called; each order becomes a work item telling a person
//! what to do, in words and as data. The action is the one a connector's delivery would carry
//! out ([`super::decide`]).

use serde_json::{json, Value};

use super::Context;
use crate::connectors::{BoxFuture, Connector, ConnectorError, Delivered, ObjectKind, PageSink};
use crate::storage::orders::Order;
use crate::storage::work_items::{self, NewWorkItem};

use super::decide::Action;
use super::group_members::outbound_group;
use super::outcome::{Outcome, Parked};
use super::snapshot::{kind_of, Snapshot};
use super::Target;

/// Opens the order's work item (or finds the one it has); the order then waits for a person.
pub async fn hand_over(
    directory: &Context,
    target: &Target,
    order: &Order,
    snapshot: Snapshot,
    action: &Action,
) -> Result<Outcome, ConnectorError> {
    let Some(item) = work_for(directory, target, order, snapshot, action).await? else {
        // Never provisioned there: nothing to undo.
        return Ok(Outcome {
            parked: None,
            ..Outcome::parked(Parked::WithPerson)
        });
    };
    let (db, order) = (directory.db().clone(), order.clone());
    tokio::task::spawn_blocking(move || work_items::open_once(&db, &order, &item))
        .await
        .map_err(|e| retryable(e.to_string()))?
        .map_err(|e| retryable(e.to_string()))?;
    Ok(Outcome::parked(Parked::WithPerson))
}

fn retryable(message: String) -> ConnectorError {
    ConnectorError::Retryable {
        message,
        status: None,
        retry_after: None,
    }
}

/// The work item the order calls for; `None` when nothing is due.
async fn work_for(
    directory: &Context,
    target: &Target,
    order: &Order,
    snapshot: Snapshot,
    action: &Action,
) -> Result<Option<NewWorkItem>, ConnectorError> {
    let kind = kind_of(order);
    let name = target.config.name.as_str();
    let state = snapshot.state;
    let object = match (action, &state) {
        (Action::Nothing, _) => return Ok(None),
        (Action::Create | Action::Update { .. }, Some(resource)) => match kind {
            ObjectKind::User => target.mapping.user(resource, &order.resource_id),
            ObjectKind::Group => {
                outbound_group(directory.db(), name, resource, &order.resource_id)
                    .await?
                    .object
            }
        },
        _ => Value::Null,
    };
    let action_name = action.name();
    let remote = action.remote().map(str::to_string);
    let who = describe(kind, state.as_ref().unwrap_or(&object), remote.as_deref());
    let summary = summary(action_name, kind, &who, name, remote.as_deref(), &object);
    let data = json!({
        "action": action_name,
        "target": name,
        "resourceType": order.resource_type,
        "resourceId": order.resource_id,
        "remoteId": remote,
        "object": object,
    });
    Ok(Some(NewWorkItem {
        action: action_name.to_string(),
        summary,
        data: data.to_string(),
    }))
}

/// Who the item is about: `bjensen (Barbara Jensen)`, a group's name, or the remote id.
fn describe(kind: ObjectKind, resource: &Value, remote: Option<&str>) -> String {
    let text = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_string);
    if kind == ObjectKind::Group {
        return text(&resource["displayName"])
            .or_else(|| remote.map(str::to_string))
            .unwrap_or_else(|| "a group".into());
    }
    let full_name = text(&resource["displayName"])
        .or_else(|| text(&resource["name"]["formatted"]))
        .or_else(|| {
            let parts: Vec<String> = [
                &resource["name"]["givenName"],
                &resource["name"]["familyName"],
            ]
            .into_iter()
            .filter_map(text)
            .collect();
            (!parts.is_empty()).then(|| parts.join(" "))
        });
    match (text(&resource["userName"]), full_name) {
        (Some(user), Some(full)) => format!("{user} ({full})"),
        (Some(user), None) => user,
        (None, Some(full)) => full,
        (None, None) => remote.unwrap_or("a user").to_string(),
    }
}

fn summary(
    action: &str,
    kind: ObjectKind,
    who: &str,
    target: &str,
    remote: Option<&str>,
    object: &Value,
) -> String {
    let noun = if kind == ObjectKind::Group {
        "group"
    } else {
        "account"
    };
    let at = remote
        .map(|r| format!(" (remote id {r})"))
        .unwrap_or_default();
    let attributes = attributes_in_words(object);
    match action {
        "create" => format!("Create an {noun} for {who} in {target}: {attributes}")
            .replace("an group", "a group"),
        "update" => format!("Update the {noun} of {who} in {target}{at}: {attributes}"),
        "deactivate" => format!("Deactivate the {noun} of {who} in {target}{at}"),
        _ => format!("Delete the {noun} of {who} in {target}{at}"),
    }
}

/// `userName=bjensen, name.givenName=Barbara, emails=bjensen@example.com`: every attribute with
/// a value, multi-valued ones by their values.
fn attributes_in_words(object: &Value) -> String {
    let mut out = Vec::new();
    flatten("", object, &mut out);
    out.join(", ")
}

fn flatten(prefix: &str, value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Null => {}
        Value::Object(fields) => {
            for (key, v) in fields {
                if prefix.is_empty() && matches!(key.as_str(), "schemas" | "password") {
                    continue;
                }
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(&path, v, out);
            }
        }
        Value::Array(items) => {
            let values: Vec<String> = items
                .iter()
                .filter_map(|i| match i {
                    Value::Object(_) => i.get("value").map(scalar),
                    Value::Null => None,
                    other => Some(scalar(other)),
                })
                .collect();
            if !values.is_empty() {
                out.push(format!("{prefix}={}", values.join(" ")));
            }
        }
        other => out.push(format!("{prefix}={}", scalar(other))),
    }
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A manual target's connector: the engine never calls it (its orders become work items), and
/// aggregation reads nothing, since no system can be asked.
pub struct NoConnector;

impl NoConnector {
    fn refused<T>() -> Result<T, ConnectorError> {
        Err(ConnectorError::Permanent {
            message: "a manual target is not called: its orders are work items".into(),
            status: None,
        })
    }
}

impl Connector for NoConnector {
    fn find<'a>(
        &'a self,
        _: ObjectKind,
        _: &'a Value,
    ) -> BoxFuture<'a, Result<Option<String>, ConnectorError>> {
        Box::pin(async { Ok(None) })
    }
    fn create<'a>(
        &'a self,
        _: ObjectKind,
        _: &'a Value,
    ) -> BoxFuture<'a, Result<Delivered, ConnectorError>> {
        Box::pin(async { Self::refused() })
    }
    fn update<'a>(
        &'a self,
        _: ObjectKind,
        _: &'a str,
        _: &'a Value,
    ) -> BoxFuture<'a, Result<Delivered, ConnectorError>> {
        Box::pin(async { Self::refused() })
    }
    fn aggregate<'a>(
        &'a self,
        _: ObjectKind,
        _: &'a [String],
        _: &'a PageSink,
    ) -> BoxFuture<'a, Result<u64, ConnectorError>> {
        Box::pin(async { Ok(0) })
    }
    fn read<'a>(
        &'a self,
        _: ObjectKind,
        _: &'a str,
    ) -> BoxFuture<'a, Result<Option<Value>, ConnectorError>> {
        Box::pin(async { Ok(None) })
    }
    fn deactivate<'a>(
        &'a self,
        _: ObjectKind,
        _: &'a str,
    ) -> BoxFuture<'a, Result<Delivered, ConnectorError>> {
        Box::pin(async { Self::refused() })
    }
    fn delete<'a>(
        &'a self,
        _: ObjectKind,
        _: &'a str,
    ) -> BoxFuture<'a, Result<Delivered, ConnectorError>> {
        Box::pin(async { Self::refused() })
    }
    fn check(&self) -> BoxFuture<'_, Result<Value, ConnectorError>> {
        Box::pin(async { Ok(Value::Null) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_create_reads_as_a_sentence() {
        let user = json!({"schemas": ["x"], "userName": "bjensen", "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "emails": [{"value": "bjensen@example.com", "primary": true}], "title": null});
        let who = describe(ObjectKind::User, &user, None);
        assert_eq!(who, "bjensen (Barbara Jensen)");
        let text = summary("create", ObjectKind::User, &who, "Payroll", None, &user);
        assert_eq!(
            text,
            "Create an account for bjensen (Barbara Jensen) in Payroll: userName=bjensen, name.givenName=Barbara, name.familyName=Jensen, emails=bjensen@example.com"
        );
        let gone = summary(
            "delete",
            ObjectKind::User,
            "bjensen",
            "Payroll",
            Some("r1"),
            &Value::Null,
        );
        assert_eq!(
            gone,
            "Delete the account of bjensen in Payroll (remote id r1)"
        );
    }
}
