//! Targets: what each one is and how it is reached, as settings, and where they are found.
//!
//! - `settings`: one target's settings, with its kind, deprovisioning policy, update method
//!   and auth type as types; the nested sections each have their file (`ldap`, `amqp`, `mapping`,
//!   `reconcile`, `review`, `capabilities`). The config file loads them; the admin API stores
//!   them; the provisioning engine, the connectors and reconciliation read them.
//! - `lookup`: the one lookup, the config file's target of a name, else the database's.

pub mod amqp;
pub mod capabilities;
pub mod ldap;
pub mod lookup;
pub mod mapping;
pub mod reconcile;
pub mod review;
pub mod settings;
pub mod store;

pub use settings::{
    AuthKind, Deprovision, SettingsError, TargetAuth, TargetConfig, TargetKind, UpdateMethod,
};
