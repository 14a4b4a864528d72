#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

//! scimgate: a SCIM 2.0 provisioning server.
//!
//! Layers, each depending only on those below it:
//! `http` (actix-web handlers, auth, SCIM error mapping) → `identity` (the Users and Groups
//! service: validation, mutability, uniqueness, preconditions) → `storage` (diesel on SQLite or
//! PostgreSQL). `scim` is the protocol vocabulary (schemas, JSON shapes, error types) all of
//! them speak; `config` and `auth` sit beside.

// glibc's malloc spent a tenth of an aggregation in consolidation and free-list walks;
// mimalloc's thread-local pages suit the many short-lived JSON values every request makes.
// Declared here so the server, the tests and the benchmarks all run on the same allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod admin;
pub mod app;
pub mod auth;
pub mod clock;
pub mod config;
pub mod connectors;
pub mod http;
pub mod identity;
pub mod provisioning;
pub mod reconcile;
pub mod scim;
pub mod storage;
pub mod targets;
