//! The delivery benches' common run: queue N user orders for one target (before any clock
//! starts), then let scimgate's engine deliver them and time it until none is open.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::server::{start, Server};
use scimgate::config::Config;
use scimgate::identity::Directory;
use scimgate::scim::projection::Projection;
use scimgate::storage::{orders, Db};
use scimgate::targets::TargetConfig;

/// A source server holding the users and their queued orders for `config`'s target.
pub struct Queued {
    pub source: Server,
    pub directory: Directory,
    pub config: Config,
}

/// Creates `users` in a fresh source (its own workers off) and plans one order each for
/// `target`, so a run measures delivery, not planning.
pub fn queue_users(target: &TargetConfig, users: impl Iterator<Item = Value>) -> Queued {
    let source = start(|c| c.worker.enabled = false);
    let directory = Directory::new(source.db.clone(), &source.base);
    for user in users {
        let Value::Object(body) = user else {
            panic!("a user is a JSON object")
        };
        directory
            .create_user(&body, &Projection::default(), "bench")
            .expect("create");
    }
    let mut config = Config {
        targets: vec![target.clone()],
        ..Config::default()
    };
    config.worker.poll_interval_ms = 10;
    let planned = Arc::new(scimgate::provisioning::Target::from_config(target).expect("target"));
    while scimgate::provisioning::planner::plan(&source.db, std::slice::from_ref(&planned), 5_000)
        .expect("plan")
        > 0
    {}
    Queued {
        source,
        directory,
        config,
    }
}

/// Whether any of the target's orders is still on its way (an index seek, so watching a
/// run does not take CPU from it while the backlog is large).
pub fn any_open(db: &Db, target: &str) -> bool {
    use scimgate::storage::orders::OrderState;
    let open = [
        OrderState::Pending,
        OrderState::Transmitted,
        OrderState::Errored,
    ];
    db.read(|c| orders::any_in(c, target, &open))
        .expect("open orders")
}

/// When the last of `target`'s outcomes was recorded (the store's clock).
fn last_recorded(db: &Db, target: &str) -> i64 {
    use diesel::prelude::*;
    use scimgate::storage::schema::orders;
    db.read(|c| {
        Ok::<_, scimgate::storage::StoreError>(
            orders::table
                .filter(orders::target.eq(target))
                .select(diesel::dsl::max(orders::updated_at))
                .first::<Option<i64>>(c)?,
        )
    })
    .expect("last outcome")
    .unwrap_or_default()
}

/// Runs the engine until no order of `target` is open; the time it took (from the start to
/// the last outcome recorded, so the watching interval does not count), and what `at_end`
/// measured the moment it was seen done (before the engine shuts down).
pub fn deliver_all<T>(queued: &Queued, target: &str, at_end: impl FnOnce() -> T) -> (Duration, T) {
    let context =
        scimgate::provisioning::Context::new(queued.directory.clone(), queued.source.db.clone());
    let engine = scimgate::app::engine(&queued.config, context)
        .expect("engine")
        .expect("targets");
    let db = queued.source.db.clone();
    let target = target.to_string();
    let started = db.clock().now_micros();
    actix_web::rt::System::new().block_on(async move {
        let handle = engine.spawn();
        loop {
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
            // Counted off the engine's thread, so watching does not slow it down.
            let (watching, name) = (db.clone(), target.clone());
            let done = actix_web::rt::task::spawn_blocking(move || !any_open(&watching, &name))
                .await
                .expect("count task");
            if done {
                break;
            }
        }
        let measured = at_end();
        let took = (last_recorded(&db, &target) - started).max(1);
        let elapsed = Duration::from_micros(took as u64);
        handle.shutdown(Duration::from_secs(5)).await;
        (elapsed, measured)
    })
}
