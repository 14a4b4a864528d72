//! The outbound provisioning engine.
//!
//! Every accepted change is in the change log (written in the change's own transaction). The
//! [`planner`] turns each entry into one order per target, transactionally with advancing its
//! position, so no change is lost or planned twice. [`worker`]s claim orders under a lease,
//! oldest first per resource, and [`deliver`] them through a target's connector; the outcome
//! moves the order through its states with every attempt recorded.

mod blocking;
mod context;
pub mod decide;
pub mod deliver;
pub mod finish;
pub mod group_members;
pub mod guard;
pub mod manual;
pub mod mapping;
pub mod on_demand;
pub mod on_demand_run;
pub mod operator;
pub mod outcome;
pub mod planner;
pub mod publish;
pub mod quarantine;
pub mod registry;
pub mod review;
pub mod snapshot;
pub mod target;
pub mod worker;

pub use context::Context;
pub use target::Target;
pub use worker::{Engine, EngineHandle};
