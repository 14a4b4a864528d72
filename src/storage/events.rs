//! The event outbox: one row per event, written in the transaction of the change that causes
//! it, so a crash never loses an event nor leaves one for a change that rolled back. Readers
//! (subscriptions' fan-out) go through it in number order, as the planner reads the change log.
//!
//! Events are thin: ids, target, states and attribute names; never values, secrets or
//! passwords.

use diesel::prelude::*;
use serde_json::{json, Map, Value};

use super::fixed_shape::insert_in_fixed_chunks;
use super::holes::Log;
use super::schema::events;
use super::{Db, DbConnection, Micros, StoreError, WriteTx};

/// Every event type, as subscriptions name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    UserCreated,
    UserUpdated,
    UserDeleted,
    UserActivated,
    UserDeactivated,
    GroupCreated,
    GroupUpdated,
    GroupDeleted,
    OrderStateChanged,
    OrderApprovalRequired,
    WorkItemOpened,
    WorkItemClosed,
    SyncFinished,
    TargetQuarantined,
    TargetRecovered,
    /// Sent to one subscription on request, never fanned out.
    Test,
}

impl EventType {
    pub const ALL: [EventType; 16] = [
        EventType::UserCreated,
        EventType::UserUpdated,
        EventType::UserDeleted,
        EventType::UserActivated,
        EventType::UserDeactivated,
        EventType::GroupCreated,
        EventType::GroupUpdated,
        EventType::GroupDeleted,
        EventType::OrderStateChanged,
        EventType::OrderApprovalRequired,
        EventType::WorkItemOpened,
        EventType::WorkItemClosed,
        EventType::SyncFinished,
        EventType::TargetQuarantined,
        EventType::TargetRecovered,
        EventType::Test,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::UserCreated => "user.created",
            EventType::UserUpdated => "user.updated",
            EventType::UserDeleted => "user.deleted",
            EventType::UserActivated => "user.activated",
            EventType::UserDeactivated => "user.deactivated",
            EventType::GroupCreated => "group.created",
            EventType::GroupUpdated => "group.updated",
            EventType::GroupDeleted => "group.deleted",
            EventType::OrderStateChanged => "order.state_changed",
            EventType::OrderApprovalRequired => "order.approval_required",
            EventType::WorkItemOpened => "work_item.opened",
            EventType::WorkItemClosed => "work_item.closed",
            EventType::SyncFinished => "sync.finished",
            EventType::TargetQuarantined => "target.quarantined",
            EventType::TargetRecovered => "target.recovered",
            EventType::Test => "test",
        }
    }

    pub fn parse(name: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

/// An event to record.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub event_type: EventType,
    pub resource_type: String,
    pub resource_id: String,
    /// Increases with every event of the same resource.
    pub resource_seq: i64,
    pub target: Option<String>,
    pub actor: String,
    pub data: Value,
}

/// A recorded event.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = events)]
pub struct StoredEvent {
    pub seq: i64,
    pub id: String,
    pub event_type: String,
    pub resource_type: String,
    pub resource_id: String,
    pub resource_seq: i64,
    pub target: Option<String>,
    pub actor: String,
    pub occurred_at: Micros,
    /// JSON.
    pub data: String,
}

impl StoredEvent {
    /// Deliveries of one subscription are ordered within this key.
    pub fn resource_key(&self) -> String {
        format!("{}/{}", self.resource_type, self.resource_id)
    }
}

/// The actor of an operator's act: operators act through admin-API tokens, which orders and
/// work items record by name (`ops`); events name them as every other actor (`token:ops`).
pub fn operator_actor(name: &str) -> String {
    if name.contains(':') {
        name.to_string()
    } else {
        format!("token:{name}")
    }
}

/// A fresh event id: stable for the event's life, the same in every delivery and retry.
pub fn new_id() -> String {
    format!("evt_{}", uuid::Uuid::new_v4().simple())
}

/// Records `new` in the caller's transaction.
pub(crate) fn append(tx: &mut WriteTx<'_>, new: &[NewEvent]) -> Result<(), StoreError> {
    let ids: Vec<String> = new.iter().map(|_| new_id()).collect();
    append_with_ids(tx, new, &ids)
}

fn append_with_ids(
    tx: &mut WriteTx<'_>,
    new: &[NewEvent],
    ids: &[String],
) -> Result<(), StoreError> {
    let now = tx.now();
    // Rows are made a few thousand at a time: a bulk's events are not all copied at once.
    for (chunk, chunk_ids) in new.chunks(4096).zip(ids.chunks(4096)) {
        let rows: Vec<_> = chunk
            .iter()
            .zip(chunk_ids)
            .map(|(event, id)| {
                (
                    events::id.eq(id.clone()),
                    events::event_type.eq(event.event_type.as_str()),
                    events::resource_type.eq(event.resource_type.clone()),
                    events::resource_id.eq(event.resource_id.clone()),
                    events::resource_seq.eq(event.resource_seq),
                    events::target.eq(event.target.clone()),
                    events::actor.eq(event.actor.clone()),
                    events::occurred_at.eq(now),
                    events::data.eq(event.data.to_string()),
                )
            })
            .collect();
        insert_in_fixed_chunks!(tx, events::table, rows);
    }
    Ok(())
}

/// Records one event of its own in a transaction, returning it (a test event).
pub fn record(db: &Db, new: &NewEvent) -> Result<StoredEvent, StoreError> {
    let id = new_id();
    db.write(|tx| {
        append_with_ids(tx, std::slice::from_ref(new), std::slice::from_ref(&id))?;
        Ok(events::table
            .filter(events::id.eq(&id))
            .select(StoredEvent::as_select())
            .first(tx.conn())?)
    })
}

/// Up to `limit` events after `after`, stopping before a number that may still be written.
pub fn readable_after(db: &Db, after: i64, limit: i64) -> Result<Vec<StoredEvent>, StoreError> {
    db.read(|conn| {
        let mut rows = after_seq(conn, after, limit)?;
        let seqs: Vec<i64> = rows.iter().map(|e| e.seq).collect();
        let now = db.clock().now_micros();
        let usable = db.holes().readable(conn, Log::Events, after, &seqs, now)?;
        rows.truncate(usable);
        Ok(rows)
    })
}

fn after_seq(
    conn: &mut DbConnection,
    after: i64,
    limit: i64,
) -> Result<Vec<StoredEvent>, StoreError> {
    Ok(events::table
        .filter(events::seq.gt(after))
        .order(events::seq.asc())
        .limit(limit)
        .select(StoredEvent::as_select())
        .load(conn)?)
}

/// Up to `limit` events after `after` up to `through`, in number order.
pub fn by_range(
    conn: &mut DbConnection,
    after: i64,
    through: i64,
    limit: i64,
) -> Result<Vec<StoredEvent>, StoreError> {
    Ok(events::table
        .filter(events::seq.gt(after))
        .filter(events::seq.le(through))
        .order(events::seq.asc())
        .limit(limit)
        .select(StoredEvent::as_select())
        .load(conn)?)
}

/// The events with these numbers.
pub fn by_seq(conn: &mut DbConnection, seqs: &[i64]) -> Result<Vec<StoredEvent>, StoreError> {
    Ok(events::table
        .filter(events::seq.eq_any(seqs))
        .select(StoredEvent::as_select())
        .load(conn)?)
}

/// The highest event number so far (0: none).
pub fn last_seq(conn: &mut DbConnection) -> Result<i64, StoreError> {
    let last: Option<i64> = events::table
        .select(diesel::dsl::max(events::seq))
        .first(conn)?;
    Ok(last.unwrap_or(0))
}

/// The number before the first event at or after `at` (where a replay since `at` starts).
pub fn position_before(conn: &mut DbConnection, at: Micros) -> Result<i64, StoreError> {
    let first: Option<i64> = events::table
        .filter(events::occurred_at.ge(at))
        .select(diesel::dsl::min(events::seq))
        .first(conn)?;
    match first {
        Some(seq) => Ok(seq - 1),
        None => last_seq(conn),
    }
}

/// Deletes events older than `before` that no delivery still needs (below `keep_from`).
pub fn prune(db: &Db, before: Micros, keep_from: i64) -> Result<usize, StoreError> {
    db.write(|tx| {
        Ok(diesel::delete(
            events::table
                .filter(events::occurred_at.lt(before))
                .filter(events::seq.lt(keep_from)),
        )
        .execute(tx.conn())?)
    })
}

/// What an identity change says besides its numbers.
#[derive(Debug, Clone, Default)]
pub struct IdentityDetail {
    pub external_id: Option<String>,
    /// Top-level attributes added, changed or removed.
    pub attributes: Vec<String>,
    /// `active` before and after, when it changed.
    pub active: Option<(Option<bool>, Option<bool>)>,
}

impl IdentityDetail {
    /// The difference between two stored documents (JSON objects).
    pub fn between(old: &str, new: &str) -> IdentityDetail {
        let parse =
            |text: &str| serde_json::from_str::<Map<String, Value>>(text).unwrap_or_default();
        IdentityDetail::between_documents(&parse(old), &parse(new))
    }

    /// The difference between two documents already parsed.
    pub fn between_documents(old: &Map<String, Value>, new: &Map<String, Value>) -> IdentityDetail {
        let mut attributes: Vec<String> = new
            .iter()
            .filter(|(name, value)| old.get(*name) != Some(*value))
            .map(|(name, _)| name.clone())
            .chain(old.keys().filter(|name| !new.contains_key(*name)).cloned())
            .filter(|name| name != "meta" && name != "schemas")
            .collect();
        attributes.sort();
        let active = |doc: &Map<String, Value>| doc.get("active").and_then(Value::as_bool);
        let activity = (active(old) != active(new)).then(|| (active(old), active(new)));
        IdentityDetail {
            external_id: new
                .get("externalId")
                .and_then(Value::as_str)
                .map(str::to_string),
            attributes,
            active: activity,
        }
    }

    /// The attributes a new document has.
    pub fn created(doc: &str) -> IdentityDetail {
        IdentityDetail::between("{}", doc)
    }
}

/// The event of an identity change: `kind` is `User` or `Group`, `operation` the change log's.
pub fn identity_event(
    kind: &str,
    id: &str,
    connection: &str,
    operation: &str,
    version: i64,
    actor: &str,
    detail: &IdentityDetail,
) -> NewEvent {
    let user = kind == "User";
    // A user without `active` counts as active, as identity providers treat it.
    let activity = detail
        .active
        .map(|(was, is)| (was.unwrap_or(true), is.unwrap_or(true)));
    let event_type = match (operation, activity) {
        ("create", _) if user => EventType::UserCreated,
        ("create", _) => EventType::GroupCreated,
        ("delete", _) if user => EventType::UserDeleted,
        ("delete", _) => EventType::GroupDeleted,
        (_, Some((false, true))) if user => EventType::UserActivated,
        (_, Some((true, false))) if user => EventType::UserDeactivated,
        _ if user => EventType::UserUpdated,
        _ => EventType::GroupUpdated,
    };
    let mut data = json!({
        "resourceType": kind,
        "id": id,
        "operation": operation,
        "version": format!("W/\"{version}\""),
        "connection": connection,
    });
    if let Some(external_id) = &detail.external_id {
        data["externalId"] = json!(external_id);
    }
    if operation != "delete" {
        data["attributes"] = json!(detail.attributes);
    }
    NewEvent {
        event_type,
        resource_type: kind.to_string(),
        resource_id: id.to_string(),
        resource_seq: version,
        target: None,
        actor: actor.to_string(),
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_identity_change_names_what_changed_and_its_activity() {
        let detail = IdentityDetail::between(
            r#"{"userName":"a","active":true,"title":"x"}"#,
            r#"{"userName":"a","active":false,"nickName":"b","externalId":"e1"}"#,
        );
        assert_eq!(
            detail.attributes,
            ["active", "externalId", "nickName", "title"]
        );
        assert_eq!(detail.active, Some((Some(true), Some(false))));
        let event = identity_event("User", "u1", "default", "modify", 3, "token:t", &detail);
        assert_eq!(event.event_type, EventType::UserDeactivated);
        assert_eq!(event.resource_seq, 3);
        assert_eq!(event.data["version"], "W/\"3\"");
        assert_eq!(event.data["externalId"], "e1");
        let unchanged = IdentityDetail::between(r#"{"active":true}"#, r#"{"active":true}"#);
        assert_eq!(unchanged.active, None);
        assert_eq!(
            identity_event("User", "u1", "default", "replace", 4, "t", &unchanged).event_type,
            EventType::UserUpdated
        );
        let unset_to_false = IdentityDetail::between("{}", r#"{"active":false}"#);
        assert_eq!(
            identity_event("User", "u1", "default", "modify", 2, "t", &unset_to_false).event_type,
            EventType::UserDeactivated
        );
        let unset_to_true = IdentityDetail::between("{}", r#"{"active":true}"#);
        assert_eq!(
            identity_event("User", "u1", "default", "modify", 2, "t", &unset_to_true).event_type,
            EventType::UserUpdated
        );
    }

    #[test]
    fn every_type_parses_back() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
        }
    }
}
