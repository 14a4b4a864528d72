//! `cargo bench --bench amqp`: publishing orders to a real RabbitMQ broker (Debian's
//! `rabbitmq-server`, started here on loopback in a temp dir).
//!
//! A plain publish loop first sends N persistent messages of the engine's size to a durable
//! quorum queue, `mandatory`, each awaited for its publisher confirm, with the engine's number
//! in flight: the broker's own rate. scimgate's engine then publishes N queued user orders to
//! the same kind of queue (read, map, publish, confirm, record): orders/s. Runs alternate and
//! the medians are compared (goal: the engine at 80 % of the plain loop or better). The
//! figures are also written to `target/bench/amqp.json`.
//!
//! The broker runs on the machine's last core and the publishing side (the plain loop, or
//! scimgate) on the others, standing in for a broker on its own machine: otherwise the heavier
//! client is measured against the broker's share of the same cores, which production never
//! sees. Both sides of the comparison run the same way; `SCIMGATE_BENCH_PIN=0` turns it off.
//!
//! `SCIMGATE_BENCH_ORDERS` (default 10,000), `SCIMGATE_BENCH_CONCURRENCY` (default 8),
//! `SCIMGATE_BENCH_REPEATS` (default 3).

#[path = "support/engine.rs"]
mod engine;
#[path = "support/pinning.rs"]
mod pinning;
#[path = "support/server.rs"]
#[allow(dead_code)] // its API token is for benches that call the SCIM API
mod server;

#[path = "../tests/support/rabbitmq.rs"]
mod rabbitmq;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Confirmation, Connection, ConnectionProperties, ExchangeKind};
use serde_json::json;

use rabbitmq::Broker;
use scimgate::storage::orders;
use scimgate::targets::amqp::AmqpSettings;
use scimgate::targets::{AuthKind, TargetAuth, TargetConfig, TargetKind};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn user(i: usize) -> serde_json::Value {
    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": format!("d{i:06}"),
        "name": {"givenName": "D", "familyName": format!("F{i}")}, "emails": [{"value": format!("d{i}@x.example"), "primary": true}]})
}

/// A message body the size of the engine's: the envelope around a mapped user.
fn body(i: usize) -> Vec<u8> {
    json!({"orderId": i, "changeSeq": i, "target": "bench", "resourceType": "User",
        "resourceId": uuid::Uuid::new_v4().to_string(), "operation": "upsert", "origin": "change",
        "occurredAt": "2026-12-03T12:00:00.000Z", "actor": "token:bench", "object": user(i)})
    .to_string()
    .into_bytes()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Declares what the engine's target declares: a durable topic exchange and a durable quorum
/// queue bound to it with `#`.
fn declare_queue(broker: &Broker, exchange: &str, queue: &str) {
    runtime().block_on(async {
        let connection = Connection::connect(&broker.url(), ConnectionProperties::default())
            .await
            .expect("connect");
        let channel = connection.create_channel().await.expect("channel");
        let mut arguments = FieldTable::default();
        arguments.insert(
            "x-queue-type".into(),
            AMQPValue::LongString("quorum".into()),
        );
        channel
            .queue_declare(queue.into(), QueueDeclareOptions::durable(), arguments)
            .await
            .expect("queue");
        let durable = ExchangeDeclareOptions {
            durable: true,
            ..ExchangeDeclareOptions::default()
        };
        channel
            .exchange_declare(
                exchange.into(),
                ExchangeKind::Topic,
                durable,
                FieldTable::default(),
            )
            .await
            .expect("exchange");
        channel
            .queue_bind(
                queue.into(),
                exchange.into(),
                "#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("binding");
        let _ = connection.close(200, "declared".into()).await;
    });
}

/// The properties the engine's messages carry.
fn properties(i: usize) -> BasicProperties {
    let mut headers = FieldTable::default();
    for (name, value) in [
        ("resource_type", "User".to_string()),
        ("resource_id", uuid::Uuid::new_v4().to_string()),
        ("operation", "upsert".into()),
        ("origin", "change".into()),
        ("change_seq", i.to_string()),
    ] {
        headers.insert(name.into(), AMQPValue::LongString(value.into()));
    }
    BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type("application/json".into())
        .with_message_id(i.to_string().into())
        .with_type("User.upsert".into())
        .with_timestamp(1_796_300_000)
        .with_app_id("scimgate".into())
        .with_headers(headers)
}

/// The plain loop: `total` persistent, mandatory messages like the engine's, to the same kind
/// of exchange and queue, on one confirm-mode channel, with `in_flight` publishes awaiting
/// their confirms at a time. Messages/s.
fn plain_publish(broker: &Broker, exchange: &str, total: usize, in_flight: usize) -> f64 {
    let bodies: Vec<Vec<u8>> = (0..total).map(body).collect();
    let bodies = Arc::new(bodies);
    runtime().block_on(async {
        let connection = Connection::connect(&broker.url(), ConnectionProperties::default())
            .await
            .expect("connect");
        let channel = connection.create_channel().await.expect("channel");
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .expect("confirms");
        let next = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let tasks: Vec<_> = (0..in_flight)
            .map(|_| {
                let (channel, next, bodies, exchange) = (
                    channel.clone(),
                    next.clone(),
                    bodies.clone(),
                    exchange.to_string(),
                );
                tokio::spawn(async move {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= bodies.len() {
                            break;
                        }
                        let properties = properties(i);
                        let mandatory = BasicPublishOptions {
                            mandatory: true,
                            ..BasicPublishOptions::default()
                        };
                        let confirm = channel
                            .basic_publish(
                                exchange.clone().into(),
                                "User.upsert".into(),
                                mandatory,
                                &bodies[i],
                                properties,
                            )
                            .await
                            .expect("publish")
                            .await
                            .expect("confirm");
                        assert_eq!(confirm, Confirmation::Ack(None), "confirmed and routed");
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("publisher");
        }
        let rate = total as f64 / started.elapsed().as_secs_f64();
        let _ = connection.close(200, "done".into()).await;
        rate
    })
}

/// scimgate's engine publishing `total` queued user orders to a fresh queue: orders/s.
fn engine_run(broker: &Broker, total: usize, in_flight: usize) -> (f64, (f64, f64)) {
    let queue = format!("bench-{}", uuid::Uuid::new_v4().simple());
    let mut target = TargetConfig::scim("bench", &broker.url_without_credentials());
    target.kind = TargetKind::Amqp;
    target.auth = TargetAuth {
        kind: Some(AuthKind::Basic),
        username: Some(broker.username().into()),
        password: Some(broker.password().into()),
        ..TargetAuth::default()
    };
    target.amqp = Some(AmqpSettings {
        exchange: format!("x-{queue}"),
        declare: true,
        queue: Some(queue.clone()),
        ..AmqpSettings::default()
    });
    target.concurrency = in_flight;
    let queued = engine::queue_users(&target, (0..total).map(user));
    let before = cpu_seconds(broker);
    let (elapsed, after) = engine::deliver_all(&queued, "bench", || cpu_seconds(broker));
    let counts = queued
        .source
        .db
        .read(|c| orders::counts(c, "bench"))
        .expect("counts");
    let executed = counts.get("executed").copied().unwrap_or(0) as usize;
    assert_eq!(executed, total, "every order executed: {counts:?}");
    broker.ctl(&["-q", "delete_queue", &queue]);
    (
        total as f64 / elapsed.as_secs_f64(),
        per_message(before, after, total),
    )
}

/// CPU seconds used so far by this process and by the broker's Erlang VM (`/proc`), so each
/// phase can say what it cost on either side of the connection.
fn cpu_seconds(broker: &Broker) -> (f64, f64) {
    // utime + stime, fields 14 and 15 of /proc/PID/stat, counted after the command name.
    let read = |path: String| -> f64 {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let fields: Vec<&str> = text
            .rsplit(')')
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        let ticks: u64 = [11, 12]
            .iter()
            .filter_map(|i| fields.get(*i).and_then(|v| v.parse::<u64>().ok()))
            .sum();
        ticks as f64 / 100.0
    };
    let own = read("/proc/self/stat".into());
    let vm = broker
        .vm_pid()
        .map(|pid| read(format!("/proc/{pid}/stat")))
        .unwrap_or(0.0);
    (own, vm)
}

/// What one phase cost per message, in µs of CPU: (this process, the broker).
fn per_message(before: (f64, f64), after: (f64, f64), total: usize) -> (f64, f64) {
    let us = |a: f64, b: f64| (b - a) * 1e6 / total as f64;
    (us(before.0, after.0), us(before.1, after.1))
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn main() {
    let total = env_usize("SCIMGATE_BENCH_ORDERS", 10_000);
    let in_flight = env_usize("SCIMGATE_BENCH_CONCURRENCY", 8);
    let repeats = env_usize("SCIMGATE_BENCH_REPEATS", 3).max(1);
    let cores = pinning::cores();
    println!("amqp benchmark: {total} orders, {in_flight} in flight, {cores} cores");
    let pinned = pinning::wanted();
    // The broker's VM inherits the last core; everything started after it, the others.
    let broker = if pinned {
        let broker = pinning::on_last_core(cores, Broker::shared);
        pinning::announce(cores, "broker", "publishers");
        broker
    } else {
        Broker::shared()
    };
    let mut plains = Vec::new();
    let mut engines = Vec::new();
    let mut cpu = Vec::new();
    for round in 1..=repeats {
        let queue = format!("plain-{}", uuid::Uuid::new_v4().simple());
        let exchange = format!("x-{queue}");
        declare_queue(broker, &exchange, &queue);
        let before = cpu_seconds(broker);
        let plain = plain_publish(broker, &exchange, total, in_flight);
        let plain_cpu = per_message(before, cpu_seconds(broker), total);
        broker.ctl(&["-q", "delete_queue", &queue]);
        let (engine, engine_cpu) = engine_run(broker, total, in_flight);
        println!(
            "run {round}: plain publish loop with confirms {plain:>7.0} messages/s (CPU per message: client {:.0} µs, broker {:.0} µs); engine {engine:>7.0} orders/s (CPU per order: scimgate {:.0} µs, broker {:.0} µs) = {:.0} %",
            plain_cpu.0, plain_cpu.1, engine_cpu.0, engine_cpu.1,
            100.0 * engine / plain
        );
        cpu.push(json!({"plainClientUs": plain_cpu.0, "plainBrokerUs": plain_cpu.1, "engineUs": engine_cpu.0, "engineBrokerUs": engine_cpu.1}));
        plains.push(plain);
        engines.push(engine);
    }
    let (plain, engine) = (median(plains.clone()), median(engines.clone()));
    let share = 100.0 * engine / plain;
    println!("plain publish loop with confirms, median: {plain:>8.0} messages/s");
    println!("engine publishing {total} queued orders, median: {engine:>8.0} orders/s ({share:.0} % of the plain loop; goal 80 %)");
    let report = json!({
        "bench": "amqp",
        "orders": total,
        "inFlight": in_flight,
        "cores": cores,
        "brokerOnItsOwnCore": pinned,
        "plainMessagesPerSecond": plains,
        "engineOrdersPerSecond": engines,
        "medianPlain": plain,
        "medianEngine": engine,
        "percentOfPlain": share,
        "cpuPerMessage": cpu,
    });
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    let written = std::fs::create_dir_all(&dir)
        .and_then(|_| std::fs::write(dir.join("amqp.json"), report.to_string()));
    if let Err(error) = written {
        eprintln!("could not write target/bench/amqp.json: {error}");
    }
}
