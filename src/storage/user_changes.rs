//! PUT and PATCH of a user: a change computed from the user's current state, then written.
//!
//! On SQLite the read and the write share one turn of the group-commit writer (see
//! `group_commit`). On PostgreSQL the change is computed from a plain read and written as one
//! statement (the user row, its change-log entry and its event, as data-modifying parts of
//! one statement that commits by itself, shared with the other changes waiting: see
//! `user_change_batches`) which applies only while the user is still at the version the
//! change was computed from. That is two round trips
//! where the locked transaction took seven (BEGIN, the locking read, the UPDATE, two
//! INSERTs, the groups, COMMIT); on a 2-core machine the round trips, not the statements'
//! work, were most of a PATCH's CPU (measured: 430 µs of PostgreSQL CPU per PATCH, 140 µs of
//! it executing statements).
//!
//! What the lock guaranteed still holds: a user changed by another writer after the read is
//! read again and the change computed anew from that version (where the lock would have made
//! it wait and then start from the new version), so no change is lost and `If-Match` is
//! checked against the version the change applies to. A change that also rewrites the
//! user's e-mail rows or password, or a user changed under it again and again, is written
//! in a transaction holding the row lock, as before.

use super::change_log::Operation;
use super::events;
use super::group_commit::GroupedError;
use super::user_change_batches::Change;
use super::users::{self, DirectGroups, StoredUser, UserDelta, UserRecord};
use super::{Backend, Db, DbConnection, StoreError, WriteTx};

/// How many times a change is computed anew because the user changed after it was read,
/// before it is written under the row lock instead (which waits its turn).
pub const UNLOCKED_TRIES: usize = 4;

/// Changes user `id`: `compute` gets the user as stored and returns its new record, with
/// anything else it read on the way (`T`); it may run more than once, and returns its own
/// error to refuse the change. `None` when there is no such user. On PostgreSQL `compute`
/// also gets the user's direct groups, read in the same statement as the user (a write's
/// answer carries its groups without another round trip); `None` where they were not read.
pub fn change<T, E, F>(
    db: &Db,
    id: String,
    operation: Operation,
    actor: String,
    mut compute: F,
) -> Result<Option<(StoredUser, T)>, E>
where
    F: FnMut(&mut DbConnection, &StoredUser, Option<DirectGroups>) -> Result<(UserRecord, T), E>
        + Send
        + 'static,
    T: Send + 'static,
    E: GroupedError + Send + 'static,
{
    if db.backend() == Backend::Postgres {
        for _ in 0..UNLOCKED_TRIES {
            let computed = db.read(|conn| match users::find_with_groups(conn, &id)? {
                Some((current, groups)) => {
                    compute(conn, &current, Some(groups)).map(|c| Some((current, c)))
                }
                None => Ok(None),
            })?;
            let Some((current, (record, extra))) = computed else {
                return Ok(None);
            };
            match write_if_unchanged(db, &current, record, operation, &actor)? {
                Unlocked::Written(stored) => return Ok(Some((stored, extra))),
                Unlocked::ChangedMeanwhile => continue,
                Unlocked::NeedsLock => break,
            }
        }
        return db.write(|tx| change_locked(tx, &id, operation, &actor, &mut compute));
    }
    db.write_grouped(move |tx| change_locked(tx, &id, operation, &actor, &mut compute))
}

/// The change in the caller's write transaction, the user's row locked from the read on.
fn change_locked<T, E, F>(
    tx: &mut WriteTx<'_>,
    id: &str,
    operation: Operation,
    actor: &str,
    compute: &mut F,
) -> Result<Option<(StoredUser, T)>, E>
where
    F: FnMut(&mut DbConnection, &StoredUser, Option<DirectGroups>) -> Result<(UserRecord, T), E>,
    E: From<StoreError>,
{
    let Some(current) = users::find_for_update(tx, id)? else {
        return Ok(None);
    };
    let (record, extra) = compute(tx.conn(), &current, None)?;
    let stored = users::update(tx, &current, &record, operation, actor)?;
    Ok(Some((stored, extra)))
}

/// What came of writing a change without the row lock.
enum Unlocked {
    Written(StoredUser),
    /// Another writer changed the user after `current` was read: nothing was written.
    ChangedMeanwhile,
    /// The change also rewrites other tables: nothing was written.
    NeedsLock,
}

/// Writes `record` over `current` on PostgreSQL, with the other changes waiting (see
/// `user_change_batches`), if the user is still at `current`'s version.
fn write_if_unchanged(
    db: &Db,
    current: &StoredUser,
    record: UserRecord,
    operation: Operation,
    actor: &str,
) -> Result<Unlocked, StoreError> {
    let delta = UserDelta::between(&current.data, &record.data);
    if delta.emails_changed || record.password.is_some() {
        return Ok(Unlocked::NeedsLock);
    }
    let version = current.version + 1;
    let event = events::identity_event(
        "User",
        &record.id,
        &current.connection,
        operation.as_str(),
        version,
        actor,
        &delta.detail,
    );
    let change = Change {
        record,
        was: current.version,
        operation: operation.as_str(),
        actor: actor.to_string(),
        event_id: events::new_id(),
        event_type: event.event_type.as_str(),
        event_data: event.data.to_string(),
    };
    Ok(match db.user_change_queue().write(db, change)? {
        (change, Some(at)) => {
            Unlocked::Written(StoredUser::updated(&change.record, current, version, at))
        }
        (_, None) => Unlocked::ChangedMeanwhile,
    })
}
