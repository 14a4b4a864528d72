//! Provisioning orders: one per (change, target). This module is their only writer.
//!
//! - `insert`: the one way orders come to be (a change planned, a full sync's correction,
//!   an on-demand run), each with its first transition recorded.
//! - `transition`: the one way an order changes state. It checks the move against the
//!   lifecycle ([`OrderState::may_become`]), records the transition and the attempt, applies the
//!   identity-link change that came with it, and wakes the group orders waiting for the
//!   resource when its order ends.
//! - `delivery`: what workers do through those two: claim under a lease, finish, renew,
//!   release and reclaim leases.
//! - `operator`: what operators do through them: retry, cancel, approve or decline.
//! - `schedule`: when waiting orders become due, without changing their state.
//! - `read`: queries.

mod delivery;
mod insert;
mod kinds;
mod operator;
mod read;
mod schedule;
mod transition;

pub use delivery::{
    claim, finish, finish_all, finish_by_person, reclaim_expired, release_leases, release_previous,
    renew_leases, Coalesce, Finish,
};
pub use insert::{commit_plan, insert, planner_lag, unplanned, Committed, NewOrder, Start};
pub use kinds::{Hold, HoldKind, Operation, OrderState, Origin, UnknownText};
pub use operator::{
    cancel, decide, decide_matching, inactivate_open, retry, Action, Decision, HeldQuery,
};
pub use read::{
    any_in, attempts_of, counts, find, latest_orders, list, of_resource, open_of,
    outcomes_per_minute, status, transitions_of, LatestOrders, OrderFilter, TargetStatus,
};
pub use schedule::{has_due_orders, hasten_retries, ready_for_probe};
pub use transition::{AttemptRecord, LinkChange};

use diesel::prelude::*;

use super::schema::{order_attempts, order_transitions, orders};
use super::Micros;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = orders)]
pub struct Order {
    pub id: i64,
    pub target: String,
    pub resource_type: String,
    pub resource_id: String,
    pub change_seq: i64,
    #[diesel(deserialize_as = String)]
    pub operation: Operation,
    #[diesel(deserialize_as = String)]
    pub state: OrderState,
    pub attempts: i32,
    pub next_attempt_at: Micros,
    pub lease_owner: Option<String>,
    pub lease_until: Option<Micros>,
    pub last_error: Option<String>,
    pub remote_id: Option<String>,
    pub created_at: Micros,
    pub updated_at: Micros,
    #[diesel(deserialize_as = String)]
    pub origin: Origin,
    pub sync_id: Option<i64>,
    /// Why the order awaits approval, in words.
    pub held_reason: Option<String>,
    /// What holds it (`review`, `mass_delete`); see [`Order::hold_kind`].
    pub held_by: Option<String>,
    /// Approved by an operator: not held for review again.
    pub approved: bool,
    pub decided_by: Option<String>,
    pub decided_at: Option<Micros>,
    pub decision_comment: Option<String>,
    /// A deferred group order: the member whose order it waits for.
    pub waiting_for: Option<String>,
    /// What the order says beside its state (members left out of a group, and why).
    pub note: Option<String>,
    /// The connection (upstream identity provider) of the resource it provisions.
    pub connection: Option<String>,
}

impl Order {
    pub fn hold_kind(&self) -> Option<HoldKind> {
        self.held_by.as_deref().and_then(HoldKind::parse)
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = order_attempts)]
pub struct Attempt {
    pub id: i64,
    pub order_id: i64,
    pub started_at: Micros,
    pub duration_ms: i64,
    pub http_status: Option<i32>,
    pub error: Option<String>,
    pub response_id: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = order_transitions)]
pub struct Transition {
    pub id: i64,
    pub order_id: i64,
    pub state: String,
    pub at: Micros,
}

/// Longest error or note text kept per order or attempt.
const MAX_TEXT_LEN: usize = 2_000;

fn bounded(text: &str) -> String {
    if text.len() <= MAX_TEXT_LEN {
        return text.to_string();
    }
    let mut end = MAX_TEXT_LEN;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}
