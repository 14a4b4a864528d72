#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

//! scimgate: a SCIM 2.0 provisioning server.
//!
//! The data path, top to bottom; every module depends only on those below it:
//!
//! ```text
//! IdP ──SCIM──▶ http ──▶ identity ──▶ storage (resource tables + change log, one transaction)
//!                                        │
//!     provisioning::planner ◀────────────┘  change log → one order per target
//!             │
//!     storage::orders (insert, transition) ◀── provisioning::worker: claim, decide, deliver,
//!             │                                 finish ──▶ connectors (SCIM, LDAP) ──▶ targets
//!             ▼
//!     reconcile: aggregate accounts back, correlate, full sync corrections (orders again)
//! admin, console (operators) ──▶ provisioning::operator, catalog, reconcile::runs
//! ```
//!
//! - `app`: wiring: database, clock, HTTP server, engine, scheduled syncs.
//! - `http`: the SCIM edge (routes, auth, media types, errors); `admin`: the operators' API;
//!   `console`: the operators' pages in the browser.
//! - `identity`: the Users and Groups service (`Directory`), one interface for both types.
//! - `provisioning`: the outbound engine: planner, workers, the pure `decide` and `finish`,
//!   delivery, manual targets, quarantine, on-demand runs, the operator service.
//! - `reconcile`: aggregation, correlation, full sync, schedules, runs.
//! - `connectors`: the `Connector` trait and its SCIM and LDAP implementations.
//! - `catalog`: adding, changing and testing targets, with the same checks for every caller.
//! - `extensions`: custom extension schemas declared by operators, served by every instance.
//! - `targets`: a target's settings as types, the stored targets, the one lookup.
//! - `storage`: diesel on SQLite and PostgreSQL; `storage::orders` is the orders' only writer.
//! - `scim`: the protocol vocabulary (schemas, filters, PATCH, JSON shapes, errors).
//! - `metrics`: Prometheus metrics (what the server counts, and what it reads from the store
//!   when scraped); `logging`: text or JSON log output.
//! - `auth`, `config`, `clock`: tokens and JWTs, configuration loading, time; `priority`:
//!   background threads yield to request handling.

// glibc's malloc spent a tenth of an aggregation in consolidation and free-list walks;
// mimalloc's thread-local pages suit the many short-lived JSON values every request makes.
// Declared here so the server, the tests and the benchmarks all run on the same allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod admin;
pub mod app;
pub mod auth;
pub mod backoff;
pub mod catalog;
pub mod clock;
pub mod config;
pub mod connections;
pub mod connectors;
pub mod console;
pub mod events;
pub mod extensions;
pub mod http;
pub mod identity;
pub mod load;
pub mod logging;
pub mod metrics;
pub mod priority;
pub mod provisioning;
pub mod rate;
pub mod reconcile;
pub mod scim;
pub mod storage;
pub mod targets;
