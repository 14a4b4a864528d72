//! The change feed for pull consumers: change-log entries after a cursor, each with the
//! resource's state, read with the hole rule so a consumer moving its cursor to the last
//! entry it got never misses a change that commits later with a lower number.
//!
//! The state is the resource as it is when read: after this change, or after a later one
//! (its `meta.version` is then higher than the entry's `version`, and the later change has its
//! own entry further on). A deleted resource has none.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{json, Value};

use super::EventsError;
use crate::identity::{Directory, IdentityError, Kind};
use crate::scim::projection::Projection;
use crate::storage::change_log::{self, ChangeEntry};
use crate::storage::Db;

/// The most entries one answer carries.
pub const MOST: i64 = 1_000;
/// The longest a request waits for a change.
pub const LONGEST_WAIT: Duration = Duration::from_secs(60);

/// One page of the feed: its entries and the cursor to ask from next.
#[derive(Debug, Clone)]
pub struct FeedPage {
    pub entries: Vec<Value>,
    pub next: i64,
}

/// Entries after `after`; with none, waits up to `wait` for one.
pub async fn changes(
    db: &Db,
    directory: &Directory,
    after: i64,
    limit: i64,
    wait: Duration,
) -> Result<FeedPage, EventsError> {
    let limit = limit.clamp(1, MOST);
    let deadline = tokio::time::Instant::now() + wait.min(LONGEST_WAIT);
    loop {
        let committed = db.committed().notified();
        tokio::pin!(committed);
        committed.as_mut().enable();
        let (db2, dir) = (db.clone(), directory.clone());
        let page = tokio::task::spawn_blocking(move || -> Result<FeedPage, EventsError> {
            let entries = change_log::readable_since(&db2, after, limit)?;
            render(&dir, after, &entries)
        })
        .await
        .map_err(|e| EventsError::Invalid(format!("a database task failed: {e}")))??;
        if !page.entries.is_empty() || tokio::time::Instant::now() >= deadline {
            return Ok(page);
        }
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => {}
            _ = &mut committed => {}
            // Other instances' commits are not notified here.
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
    }
}

fn render(
    directory: &Directory,
    after: i64,
    entries: &[ChangeEntry],
) -> Result<FeedPage, EventsError> {
    let mut states: HashMap<(String, String), Option<Value>> = HashMap::new();
    let mut rendered = Vec::with_capacity(entries.len());
    for entry in entries {
        let key = (entry.resource_type.clone(), entry.resource_id.clone());
        let state = match states.get(&key) {
            Some(state) => state.clone(),
            None => {
                let state = current(directory, &entry.resource_type, &entry.resource_id)?;
                states.insert(key, state.clone());
                state
            }
        };
        rendered.push(json!({
            "seq": entry.seq,
            "resourceType": entry.resource_type,
            "id": entry.resource_id,
            "operation": entry.operation,
            "version": format!("W/\"{}\"", entry.version),
            "actor": entry.actor,
            "connection": entry.connection,
            "time": crate::scim::output::format_time(entry.occurred_at),
            "resource": state,
        }));
    }
    Ok(FeedPage {
        next: entries.last().map_or(after, |e| e.seq),
        entries: rendered,
    })
}

fn current(directory: &Directory, kind: &str, id: &str) -> Result<Option<Value>, EventsError> {
    let kind = match kind {
        "User" => Kind::User,
        "Group" => Kind::Group,
        _ => return Ok(None),
    };
    match directory.get(kind, id, &Projection::default()) {
        Ok(rendered) => Ok(Some(rendered.body)),
        Err(IdentityError::NotFound(_)) => Ok(None),
        Err(other) => Err(other.into()),
    }
}
