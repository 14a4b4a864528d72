//! A group as it goes to a target: its members named by their ids there, the group deferred
//! while a member is on its way, and members that will not arrive left out with a note.

use std::collections::HashMap;

use serde_json::{json, Value};

use super::blocking::blocking;
use crate::connectors::ConnectorError;
use crate::storage::orders::{self, OrderState};
use crate::storage::{identity_links, Db};

/// A group's members: (local id, "User" or "Group").
fn members_of(resource: &Value) -> Vec<(String, String)> {
    resource["members"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter_map(|x| {
                    Some((
                        x["value"].as_str()?.to_string(),
                        x["type"].as_str().unwrap_or("User").to_string(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The group as sent to a target, members named by their remote ids (`remote_of(kind, id)`),
/// and the members (kind, id) that have none there.
pub fn group_object(
    resource: &Value,
    source_id: &str,
    remote_of: impl Fn(&str, &str) -> Option<String>,
) -> (Value, Vec<(String, String)>) {
    let members = members_of(resource);
    let mut translated = Vec::with_capacity(members.len());
    let mut missing = Vec::new();
    for kind in ["User", "Group"] {
        for (id, member_kind) in &members {
            if (member_kind == "Group") != (kind == "Group") {
                continue;
            }
            match remote_of(kind, id) {
                Some(remote) => translated.push(json!({"value": remote, "type": kind})),
                None => missing.push((kind.to_string(), id.clone())),
            }
        }
    }
    let object = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": resource["displayName"],
        "externalId": source_id,
        "members": translated,
    });
    (object, missing)
}

/// A group as it goes to a target, and what was left out of it and why.
pub(super) struct OutboundGroup {
    pub object: Value,
    pub note: Option<String>,
}

/// Group members are sent as the target's ids. A member not provisioned there yet whose order
/// is still open makes the group wait (`Deferred`, naming the member whose order is newest, so
/// the group is retried once when that one has landed). A member that will not be provisioned
/// there (out of the target's scope, or its order ended in error or was cancelled) is left out,
/// and the note says so, instead of holding the group back.
pub(super) async fn outbound_group(
    db: &Db,
    target: &str,
    resource: &Value,
    source_id: &str,
) -> Result<OutboundGroup, ConnectorError> {
    let members = members_of(resource);
    let mut links = member_links(db, target, members).await?;
    let (mut object, mut missing) = group_object(resource, source_id, |kind, id| {
        links.get(&(kind.to_string(), id.to_string())).cloned()
    });
    if missing.is_empty() {
        return Ok(OutboundGroup { object, note: None });
    }
    // The missing members' orders first, then their links again: a member that landed after
    // the first read has its link now, whatever its order's state said.
    let (db2, target2) = (db.clone(), target.to_string());
    let asked = missing.clone();
    let standing = blocking(move || {
        db2.read(|c| orders::latest_orders(c, &target2, &asked))
            .map_err(|e| e.to_string())
    })
    .await?;
    let unlinked = missing
        .iter()
        .map(|(kind, id)| (id.clone(), kind.clone()))
        .collect();
    let late = member_links(db, target, unlinked).await?;
    if !late.is_empty() {
        links.extend(late);
        (object, missing) = group_object(resource, source_id, |kind, id| {
            links.get(&(kind.to_string(), id.to_string())).cloned()
        });
    }
    let mut waiting_on: Option<(i64, &str, &str)> = None;
    let mut left_out = Vec::new();
    for (kind, id) in &missing {
        match standing.get(&(kind.clone(), id.clone())) {
            Some((order_id, state)) if state.is_open() => {
                if waiting_on.is_none_or(|(newest, _, _)| *order_id > newest) {
                    waiting_on = Some((*order_id, kind, id));
                }
            }
            Some((order_id, OrderState::Error)) => {
                left_out.push(format!("{kind} {id} (its order {order_id} ended in error)"))
            }
            Some((order_id, OrderState::Inactive)) => {
                left_out.push(format!("{kind} {id} (its order {order_id} was cancelled)"))
            }
            _ => left_out.push(format!("{kind} {id} (not in the target's scope)")),
        }
    }
    if let Some((_, kind, id)) = waiting_on {
        return Err(ConnectorError::Deferred {
            message: format!("member {kind} {id} is not provisioned on {target} yet"),
            waiting_for: Some(id.to_string()),
        });
    }
    let note = (!left_out.is_empty())
        .then(|| format!("left out of the group on {target}: {}", left_out.join(", ")));
    Ok(OutboundGroup { object, note })
}

/// The remote ids on `target` of these members ((id, kind) pairs, as [`members_of`] gives them),
/// keyed by (kind, id).
async fn member_links(
    db: &Db,
    target: &str,
    members: Vec<(String, String)>,
) -> Result<HashMap<(String, String), String>, ConnectorError> {
    let mut links = HashMap::new();
    for kind in ["User", "Group"] {
        let ids: Vec<String> = members
            .iter()
            .filter(|(_, t)| (t == "Group") == (kind == "Group"))
            .map(|(id, _)| id.clone())
            .collect();
        if ids.is_empty() {
            continue;
        }
        let (db2, target2) = (db.clone(), target.to_string());
        let found = blocking(move || {
            db2.read(|c| identity_links::links(c, &target2, kind, &ids))
                .map_err(|e| e.to_string())
        })
        .await?;
        links.extend(
            found
                .into_iter()
                .map(|(id, remote)| ((kind.to_string(), id), remote)),
        );
    }
    Ok(links)
}
