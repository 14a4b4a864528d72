//! Counts for the mass-delete guard: recent deletions planned for a target, and how many
//! accounts it has linked.

use diesel::prelude::*;

use super::orders::{HoldKind, Operation, OrderState};
use super::schema::{identity_links, orders};
use super::{DbConnection, Micros, StoreError};

/// User deletions planned for the target since `since` (not counting cancelled ones), and
/// how many of them are done (their accounts no longer linked).
pub fn planned_since(
    conn: &mut DbConnection,
    target: &str,
    since: Micros,
) -> Result<(u64, u64), StoreError> {
    let recent = orders::table
        .filter(orders::target.eq(target))
        .filter(orders::resource_type.eq("User"))
        .filter(orders::operation.eq(Operation::Delete.as_str()))
        .filter(orders::created_at.gt(since));
    let planned: i64 = recent
        .filter(orders::state.ne(OrderState::Inactive.as_str()))
        .count()
        .get_result(conn)?;
    let done: i64 = recent
        .filter(
            orders::state.eq_any([OrderState::Executed.as_str(), OrderState::Verified.as_str()]),
        )
        .count()
        .get_result(conn)?;
    Ok((planned as u64, done as u64))
}

/// Users linked to accounts on the target.
pub fn linked_users(conn: &mut DbConnection, target: &str) -> Result<u64, StoreError> {
    let n: i64 = identity_links::table
        .filter(identity_links::target.eq(target))
        .filter(identity_links::resource_type.eq("User"))
        .count()
        .get_result(conn)?;
    Ok(n as u64)
}

/// Orders of the target the mass-delete guard holds, and the latest reason.
pub fn held_by_guard(
    conn: &mut DbConnection,
    target: &str,
) -> Result<(i64, Option<String>), StoreError> {
    let held = orders::table
        .filter(orders::target.eq(target))
        .filter(orders::state.eq(OrderState::AwaitingApproval.as_str()))
        .filter(orders::held_by.eq(HoldKind::MassDelete.as_str()));
    let count: i64 = held.count().get_result(conn)?;
    let reason: Option<Option<String>> = held
        .order(orders::id.desc())
        .select(orders::held_reason)
        .first(conn)
        .optional()?;
    Ok((count, reason.flatten()))
}
