#![allow(clippy::cloned_ref_to_slice_refs)] // [x.clone()] reads better in assertions

//! The HTTP-level protocol suite. Every test runs against SQLite and against a real
//! PostgreSQL server started by the harness; modules follow the RFC sections they check.

#[path = "../support/browser.rs"]
mod browser;
#[path = "../support/interop.rs"]
mod interop_servers;
#[path = "../support/postgres.rs"]
mod postgres;
#[path = "../support/process.rs"]
mod process;
#[path = "../support/rabbitmq.rs"]
mod rabbitmq;
#[path = "../support/receiver.rs"]
mod receiver;
#[path = "../support/relay.rs"]
mod relay;
#[path = "../support/slapd.rs"]
mod slapd;

mod harness;

mod admin;
mod admin_targets;
mod amqp_target;
mod auth;
mod bad_input;
mod browser_console;
mod change_feed;
mod change_log;
mod chaos;
mod cli;
mod connections;
mod console;
mod database_outage;
mod discovery;
mod events_sets;
mod events_webhooks;
mod faulty_target;
mod fuzz_corpus;
mod grouped_writes;
mod hostile_input;
mod identity_links;
mod idp_dialects;
mod interop;
mod ldap_target;
mod logs;
mod member_edits;
mod metrics;
mod on_demand;
mod openapi;
mod order_lifecycle;
mod order_tallies;
mod passwords;
mod provisioning;
mod reconcile;
mod review;
mod rfc7643_groups;
mod rfc7643_users;
mod rfc7644_bulk;
mod rfc7644_crud;
mod rfc7644_errors;
mod rfc7644_etag;
mod rfc7644_patch;
mod rfc7644_query;
mod scale;
mod storage_pool;
mod user_changes;
mod user_creates;
mod user_reads;
mod work_items;
mod write_connection;
