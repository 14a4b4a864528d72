//! Reconciliation: knowing what each target really holds and enforcing the desired state.
//!
//! [`aggregate`] reads every account and group of a target into the accounts table and
//! [`correlation`] links each to an identity (or flags it as orphan or ambiguous).
//! [`full_sync`] takes the target's lock (incremental delivery waits), aggregates, compares
//! every in-scope identity mapped through the target's mapping ([`diff`]) with what was read,
//! and emits corrective orders, recording the drift it found. [`schedule`] runs full syncs on
//! each target's schedule.

pub mod aggregate;
pub mod command;
pub mod correlation;
pub mod diff;
mod error;
pub mod full_sync;
pub mod schedule;
mod settings;

pub use error::ReconcileError;
pub use settings::{OrphanPolicy, ReconcileSettings};
