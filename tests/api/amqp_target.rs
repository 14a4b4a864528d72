//! Publishing to a real RabbitMQ broker (Debian's `rabbitmq-server`): users and groups pushed
//! in over SCIM arrive as persistent messages, consumed here with an AMQP client, once each,
//! in order per resource, with the configured routing keys, bodies and headers; an unroutable
//! message ends its order in `error` with the broker's reason; a full sync republishes; a
//! broker stopped for 10 s and restarted loses nothing.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use lapin::options::{
    BasicAckOptions, BasicGetOptions, ExchangeDeclareOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};
use serde_json::{json, Value};

use scimgate::config::Config;
use scimgate::storage::orders::{self, Order, OrderFilter};
use scimgate::targets::amqp::AmqpSettings;
use scimgate::targets::{AuthKind, TargetAuth, TargetConfig, TargetKind};

use crate::admin_targets::Ops;
use crate::harness::{id_of, Backend, TestServer};
use crate::provisioning::wait_for;
use crate::rabbitmq::Broker;
use crate::rfc7644_patch::patch;

/// A fresh name, so tests sharing the broker never share an exchange or a queue.
fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// An `amqp` target declaring its exchange and (unless `queue` is `None`) a quorum queue
/// bound to it with `#`.
fn amqp_target(broker: &Broker, exchange: &str, queue: Option<&str>) -> TargetConfig {
    let mut target = TargetConfig::scim("bus", &broker.url_without_credentials());
    target.kind = TargetKind::Amqp;
    target.auth = TargetAuth {
        kind: Some(AuthKind::Basic),
        username: Some(broker.username().into()),
        password: Some(broker.password().into()),
        ..TargetAuth::default()
    };
    target.amqp = Some(AmqpSettings {
        exchange: exchange.into(),
        declare: true,
        queue: queue.map(str::to_string),
        ..AmqpSettings::default()
    });
    target.retry_base_ms = 50;
    target.retry_max_ms = 500;
    target.timeout_seconds = 5;
    target.concurrency = 8;
    target
}

fn serve(backend: Backend, target: TargetConfig) -> TestServer {
    TestServer::start_with(backend, |c: &mut Config| {
        c.targets = vec![target];
        c.worker.poll_interval_ms = 20;
    })
}

/// One message as a consumer received it.
#[derive(Debug, Clone)]
struct Received {
    routing_key: String,
    message_id: String,
    content_type: String,
    persistent: bool,
    headers: BTreeMap<String, String>,
    body: Value,
}

impl Received {
    fn resource(&self) -> String {
        self.body["resourceId"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
    fn change_seq(&self) -> i64 {
        self.body["changeSeq"].as_i64().unwrap_or(-1)
    }
}

/// An AMQP client of the tests' own, on a runtime of its own.
struct Consumer {
    runtime: tokio::runtime::Runtime,
    connection: Connection,
    channel: Channel,
}

impl Consumer {
    fn connect(broker: &Broker) -> Consumer {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let (connection, channel) = runtime.block_on(async {
            let connection = Connection::connect(&broker.url(), ConnectionProperties::default())
                .await
                .expect("consumer connects");
            let channel = connection.create_channel().await.expect("channel");
            (connection, channel)
        });
        Consumer {
            runtime,
            connection,
            channel,
        }
    }

    /// Every message waiting in `queue`, acknowledged.
    fn drain(&self, queue: &str) -> Vec<Received> {
        self.runtime.block_on(async {
            let mut out = Vec::new();
            while let Some(message) = self
                .channel
                .basic_get(queue.into(), BasicGetOptions::default())
                .await
                .expect("basic.get")
            {
                let properties = &message.delivery.properties;
                let headers = properties
                    .headers()
                    .as_ref()
                    .map(|table| {
                        table
                            .inner()
                            .iter()
                            .map(|(k, v)| {
                                let text = match v {
                                    AMQPValue::LongString(s) => s.to_string(),
                                    other => format!("{other:?}"),
                                };
                                (k.to_string(), text)
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                out.push(Received {
                    routing_key: message.delivery.routing_key.to_string(),
                    message_id: properties
                        .message_id()
                        .as_ref()
                        .map(|m| m.to_string())
                        .unwrap_or_default(),
                    content_type: properties
                        .content_type()
                        .as_ref()
                        .map(|m| m.to_string())
                        .unwrap_or_default(),
                    persistent: *properties.delivery_mode() == Some(2),
                    headers,
                    body: serde_json::from_slice(&message.delivery.data).expect("JSON body"),
                });
                message
                    .delivery
                    .ack(BasicAckOptions::default())
                    .await
                    .expect("ack");
            }
            out
        })
    }

    /// Messages from `queue` until `done` says they are all there.
    fn collect(&self, queue: &str, mut done: impl FnMut(&[Received]) -> bool) -> Vec<Received> {
        let mut all = Vec::new();
        wait_for(&format!("messages on {queue}"), || {
            all.extend(self.drain(queue));
            done(&all).then_some(())
        });
        all
    }

    /// Declares an exchange the way an operator would, outside scimgate.
    fn declare_exchange(&self, exchange: &str) {
        self.runtime.block_on(async {
            let durable = ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            };
            self.channel
                .exchange_declare(
                    exchange.into(),
                    ExchangeKind::Topic,
                    durable,
                    FieldTable::default(),
                )
                .await
                .expect("exchange declared");
        })
    }

    fn queue_exists(&self, queue: &str) -> bool {
        self.runtime.block_on(async {
            let passive = QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            };
            // A failed passive declare closes the channel: use one of its own.
            let channel = self.connection.create_channel().await.expect("channel");
            channel
                .queue_declare(queue.into(), passive, FieldTable::default())
                .await
                .is_ok()
        })
    }
}

fn target_orders(s: &TestServer) -> Vec<Order> {
    s.db.read(|c| {
        orders::list(
            c,
            &OrderFilter {
                target: Some("bus".into()),
                limit: 10_000,
                ..OrderFilter::default()
            },
        )
    })
    .expect("orders")
}

/// Every order of the target has ended, none in error; the orders.
fn all_executed(s: &TestServer) -> Vec<Order> {
    wait_for("every order published", || {
        let list = target_orders(s);
        let open = list
            .iter()
            .any(|o| !matches!(o.state.as_str(), "executed" | "inactive" | "error"));
        (!list.is_empty() && !open).then_some(list)
    })
}

/// The orders that ended in error, with their errors.
fn given_up(list: &[Order]) -> Vec<(i64, String)> {
    list.iter()
        .filter(|o| o.state.as_str() == "error")
        .map(|o| (o.id, o.last_error.clone().unwrap_or_default()))
        .collect()
}

/// Per resource, the change numbers of its messages in the order they arrived.
fn sequences(messages: &[Received]) -> HashMap<String, Vec<i64>> {
    let mut per: HashMap<String, Vec<i64>> = HashMap::new();
    for m in messages {
        per.entry(m.resource()).or_default().push(m.change_seq());
    }
    per
}

fn changes_arrive_once_in_order_with_routing_keys_and_bodies(backend: Backend) {
    let broker = Broker::shared();
    let (exchange, queue) = (unique("identity"), unique("provisioning"));
    let s = serve(backend, amqp_target(broker, &exchange, Some(&queue)));
    let consumer = Consumer::connect(broker);

    let alice = id_of(&s.create_user(&json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "alice", "title": "v0", "password": "Tr0ub4dor&3-secret",
        "emails": [{"value": "alice@example.com", "type": "work", "primary": true}]
    })));
    let bob = id_of(&s.create_user(&json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "bob"
    })));
    for n in 1..=5 {
        let r = patch(
            &s,
            &format!("/Users/{alice}"),
            json!([{"op": "replace", "path": "title", "value": format!("v{n}")}]),
        );
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let team = id_of(&s.create_group(&json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": "team", "members": [{"value": alice}, {"value": bob}]
    })));
    // The group goes out with both members before bob leaves.
    all_executed(&s);
    assert_eq!(s.delete(&format!("/Users/{bob}")).status, 204);
    wait_for("bob's deletion published", || {
        target_orders(&s)
            .iter()
            .any(|o| {
                o.resource_id == bob
                    && o.operation.as_str() == "delete"
                    && o.state.as_str() == "executed"
            })
            .then_some(())
    });

    let executed = all_executed(&s);
    assert_eq!(given_up(&executed), Vec::<(i64, String)>::new());
    let published: Vec<&Order> = executed
        .iter()
        .filter(|o| o.state.as_str() == "executed")
        .collect();
    let messages = consumer.collect(&queue, |got| got.len() >= published.len());
    // Nothing more trickles in.
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        consumer.drain(&queue).is_empty(),
        "no message beyond one per order"
    );

    // Once each: one message per executed order, with the order's id.
    let ids: Vec<&str> = messages.iter().map(|m| m.message_id.as_str()).collect();
    let distinct: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(distinct.len(), ids.len(), "no duplicates: {ids:?}");
    let expected: HashSet<String> = published.iter().map(|o| o.id.to_string()).collect();
    assert_eq!(distinct, expected.iter().map(String::as_str).collect());

    // In order per resource.
    for (resource, seqs) in sequences(&messages) {
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{resource}: {seqs:?}");
    }

    // Routing keys, envelope, properties.
    for m in &messages {
        let order = published
            .iter()
            .find(|o| o.id.to_string() == m.message_id)
            .expect("its order");
        assert_eq!(m.body["orderId"], json!(order.id));
        assert_eq!(m.body["changeSeq"], json!(order.change_seq));
        assert_eq!(m.body["resourceType"], json!(order.resource_type));
        assert_eq!(m.body["resourceId"], json!(order.resource_id));
        assert_eq!(m.body["origin"], "change");
        assert_eq!(m.body["target"], "bus");
        assert_eq!(m.body["actor"], "token:test");
        assert!(m.body["occurredAt"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')));
        let operation = m.body["operation"].as_str().expect("operation");
        assert_eq!(
            m.routing_key,
            format!("{}.{operation}", order.resource_type)
        );
        assert_eq!(
            m.headers.get("operation").map(String::as_str),
            Some(operation)
        );
        assert_eq!(m.headers.get("resource_id"), Some(&order.resource_id));
        assert_eq!(m.content_type, "application/json");
        assert!(m.persistent, "delivery mode 2");
        assert!(
            !m.body.to_string().contains("Tr0ub4dor"),
            "no password in a message"
        );
    }
    let last_of = |id: &str| {
        messages
            .iter()
            .rev()
            .find(|m| m.resource() == id)
            .cloned()
            .expect("a message")
    };
    let alice_last = last_of(&alice);
    assert_eq!(alice_last.routing_key, "User.upsert");
    assert_eq!(alice_last.body["object"]["userName"], "alice");
    assert_eq!(alice_last.body["object"]["title"], "v5", "the newest state");
    assert_eq!(
        alice_last.body["object"]["emails"][0]["value"],
        "alice@example.com"
    );
    let bob_last = last_of(&bob);
    assert_eq!(bob_last.routing_key, "User.delete");
    assert_eq!(bob_last.body["object"], Value::Null);
    let team_messages: Vec<&Received> = messages.iter().filter(|m| m.resource() == team).collect();
    let first = team_messages.first().expect("the group's message");
    assert_eq!(first.routing_key, "Group.upsert");
    let members: HashSet<String> = first.body["object"]["members"]
        .as_array()
        .expect("members")
        .iter()
        .filter_map(|m| m["value"].as_str().map(str::to_string))
        .collect();
    assert_eq!(
        members,
        HashSet::from([alice.clone(), bob.clone()]),
        "members by their resource ids"
    );

    // Executed is final, and the order says why.
    for order in &published {
        assert!(
            order
                .note
                .as_deref()
                .is_some_and(|n| n.contains("executed is final")),
            "{order:?}"
        );
    }
    assert!(executed.iter().all(|o| o.state.as_str() != "verified"));
}

fn an_unroutable_message_ends_in_error_with_the_brokers_reason(backend: Backend) {
    let broker = Broker::shared();
    // An exchange with no queue bound: every message is unroutable.
    let s = serve(backend, amqp_target(broker, &unique("nowhere"), None));
    let carol = id_of(&s.create_user(&json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "carol"
    })));
    let order = wait_for("carol's order given up", || {
        target_orders(&s)
            .into_iter()
            .find(|o| o.resource_id == carol && o.state.as_str() == "error")
    });
    let error = order.last_error.unwrap_or_default();
    assert!(
        error.contains("312") && error.contains("NO_ROUTE"),
        "{error}"
    );
    assert_eq!(order.attempts, 1, "a refusal is not retried");
}

fn theconnection_test_checks_the_broker_and_the_exchange(backend: Backend) {
    let broker = Broker::shared();
    let s = TestServer::start_with(backend, |c| c.worker.poll_interval_ms = 20);
    let ops = Ops::on(&s);
    let exchange = unique("later");
    let settings = |name: &str, password: &str| {
        json!({
            "name": name, "kind": "amqp", "url": broker.url_without_credentials(),
            "auth": {"type": "basic", "username": broker.username(), "password": password},
            "amqp": {"exchange": exchange}
        })
    };
    let created = ops.post("/targets", Some(&settings("bus", broker.password())));
    assert_eq!(created.status, 201, "{}", created.text);
    let missing = ops.post("/targets/bus/test", None);
    assert_eq!(missing.body["ok"], false, "{}", missing.text);
    let error = missing.body["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(&exchange) && error.contains("404"),
        "{error}"
    );

    Consumer::connect(broker).declare_exchange(&exchange);
    let found = ops.post("/targets/bus/test", None);
    assert_eq!(found.body["ok"], true, "{}", found.text);

    assert_eq!(
        ops.post("/targets", Some(&settings("wrong", "not-the-password")))
            .status,
        201
    );
    let refused = ops.post("/targets/wrong/test", None);
    assert_eq!(refused.body["ok"], false, "{}", refused.text);

    // Credentials belong in auth, where they are sealed; never in the URL.
    let mut in_url = settings("in-url", broker.password());
    in_url["url"] = json!(broker.url());
    let r = ops.post("/targets", Some(&in_url));
    assert_eq!(r.status, 400, "{}", r.text);
    let mut no_exchange = settings("no-exchange", broker.password());
    no_exchange["amqp"] = json!({});
    assert_eq!(ops.post("/targets", Some(&no_exchange)).status, 400);

    ops.get("/targets/bus");
    ops.never_showed(broker.password());
}

fn full_sync_republishes_what_is_in_scope(backend: Backend) {
    let broker = Broker::shared();
    let (exchange, queue) = (unique("identity"), unique("sync"));
    let mut target = amqp_target(broker, &exchange, Some(&queue));
    target.users_filter = Some("title eq \"staff\"".into());
    let s = serve(backend, target);
    let consumer = Consumer::connect(broker);
    let mut staff = Vec::new();
    for n in 0..3 {
        staff.push(id_of(&s.create_user(&json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": format!("staff{n}"), "title": "staff"
        }))));
    }
    let guest = id_of(&s.create_user(&json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "guest", "title": "guest"
    })));
    let group = id_of(&s.create_group(&json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": "staff", "members": [{"value": staff[0]}]
    })));
    all_executed(&s);
    let before = consumer.collect(&queue, |got| got.len() >= 4);
    assert!(before.iter().all(|m| m.resource() != guest), "out of scope");

    let ops = Ops::on(&s);
    let started = ops.post("/targets/bus/sync", None);
    assert_eq!(started.status, 202, "{}", started.text);
    let id = started.body["id"].as_i64().expect("run id");
    let run = wait_for("the sync to end", || {
        let r = ops.get(&format!("/targets/bus/syncs/{id}"));
        (r.body["state"] != "running").then_some(r.body)
    });
    assert_eq!(run["state"], "completed", "{run}");
    let text = run.to_string();
    assert!(
        text.contains("cannot be read back"),
        "the report says why: {text}"
    );
    let republished: Vec<&Value> = run["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["finding"] == "republished")
        .collect();
    assert_eq!(republished.len(), 4, "three staff and the group: {text}");

    let synced = consumer.collect(&queue, |got| got.len() >= 4);
    let mut resources: Vec<String> = synced.iter().map(Received::resource).collect();
    resources.sort();
    let mut expected = staff.clone();
    expected.push(group.clone());
    expected.sort();
    assert_eq!(resources, expected);
    for m in &synced {
        assert_eq!(m.body["origin"], "sync");
        assert_eq!(m.body["operation"], "upsert");
        assert_eq!(m.headers.get("origin").map(String::as_str), Some("sync"));
        assert_eq!(m.body["actor"], "scimgate");
    }
    assert!(consumer.queue_exists(&queue));
}

fn a_broker_stopped_for_ten_seconds_loses_nothing(backend: Backend) {
    let broker = Broker::start();
    let (exchange, queue) = (unique("identity"), unique("outage"));
    let mut target = amqp_target(&broker, &exchange, Some(&queue));
    // Retried until the broker is back, however long that takes here.
    target.max_attempts = 10_000;
    target.retry_max_ms = 1_000;
    target.probe_interval_ms = 1_000;
    let s = serve(backend, target);
    let mut users = Vec::new();
    for n in 0..10 {
        users.push(id_of(&s.create_user(&json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": format!("before{n}"), "title": "t0"
        }))));
    }
    all_executed(&s);

    broker.stop_node();
    let stopped = std::time::Instant::now();
    for id in &users {
        let r = patch(
            &s,
            &format!("/Users/{id}"),
            json!([{"op": "replace", "path": "title", "value": "t1"}]),
        );
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let mut during = Vec::new();
    for n in 0..10 {
        during.push(id_of(&s.create_user(&json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": format!("during{n}"), "title": "t1"
        }))));
    }
    wait_for("deliveries failing while the broker is down", || {
        target_orders(&s)
            .iter()
            .any(|o| o.state.as_str() == "errored")
            .then_some(())
    });
    std::thread::sleep(Duration::from_secs(10).saturating_sub(stopped.elapsed()));
    broker.start_node();

    let executed = all_executed(&s);
    assert_eq!(given_up(&executed), Vec::<(i64, String)>::new());
    let published: HashSet<String> = executed
        .iter()
        .filter(|o| o.state.as_str() == "executed")
        .map(|o| o.id.to_string())
        .collect();
    let consumer = Consumer::connect(&broker);
    let messages = consumer.collect(&queue, |got| {
        got.iter()
            .map(|m| m.message_id.clone())
            .collect::<HashSet<_>>()
            == published
    });
    // A copy is only ever a retry of an order whose confirm was lost: the same message id.
    let mut seen = HashSet::new();
    let firsts: Vec<Received> = messages
        .into_iter()
        .filter(|m| seen.insert(m.message_id.clone()))
        .collect();
    for (resource, seqs) in sequences(&firsts) {
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{resource}: {seqs:?}");
    }
    for id in users.iter().chain(&during) {
        let last = firsts
            .iter()
            .rev()
            .find(|m| &m.resource() == id)
            .expect("every user arrived");
        assert_eq!(last.body["object"]["title"], "t1", "{id}: the newest state");
    }

    // A memory alarm: the broker blocks publishers (connection.blocked). The order waits and
    // retries; it goes out once the alarm clears.
    broker.ctl(&["set_vm_memory_high_watermark", "0"]);
    let held = id_of(&s.create_user(&json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "held-back"
    })));
    let waiting = wait_for("the order retrying while publishing is blocked", || {
        target_orders(&s)
            .into_iter()
            .find(|o| o.resource_id == held && o.state.as_str() == "errored")
    });
    let error = waiting.last_error.unwrap_or_default();
    assert!(
        error.contains("blocked") || error.contains("did not confirm"),
        "{error}"
    );
    broker.ctl(&["set_vm_memory_high_watermark", "0.4"]);
    wait_for("the held-back user published", || {
        consumer
            .drain(&queue)
            .iter()
            .any(|m| m.resource() == held)
            .then_some(())
    });
}

fn provisioning_on_demand_traces_the_publish(backend: Backend) {
    let broker = Broker::shared();
    let (exchange, queue) = (unique("identity"), unique("on-demand"));
    let target = amqp_target(broker, &exchange, Some(&queue));
    let s = TestServer::start_with(backend, |c: &mut Config| {
        c.targets = vec![target];
        c.worker.enabled = false;
    });
    let frank = id_of(&s.create_user(&json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "frank",
        "password": "never-in-a-trace-9"
    })));
    let ops = Ops::on(&s);
    let run = ops.post(
        "/provision-on-demand",
        Some(&json!({"userId": frank, "target": "bus"})),
    );
    assert_eq!(run.status, 200, "{}", run.text);
    assert!(!run.text.contains("never-in-a-trace-9"));
    let steps = run.body["trace"].as_array().cloned().unwrap_or_default();
    let step = |name: &str| {
        steps
            .iter()
            .find(|s| s["step"] == name && s["call"] == "publish")
            .cloned()
            .unwrap_or(Value::Null)
    };
    let request = step("request");
    assert_eq!(request["routingKey"], "User.upsert", "{steps:?}");
    assert_eq!(request["message"]["object"]["userName"], "frank");
    assert_eq!(request["message"]["origin"], "on_demand");
    assert_eq!(step("response")["confirmed"], true, "{steps:?}");
    let got = Consumer::connect(broker).collect(&queue, |got| !got.is_empty());
    assert_eq!(
        got[0].message_id,
        request["messageId"].as_str().unwrap_or_default()
    );
}

fn amqps_with_a_private_ca(backend: Backend) {
    let broker = Broker::shared();
    let (exchange, queue) = (unique("identity"), unique("tls"));
    let mut target = amqp_target(broker, &exchange, Some(&queue));
    target.url = broker.tls_url_without_credentials();
    if let Some(settings) = target.amqp.as_mut() {
        settings.ca_cert_file = Some(Broker::ca_file());
    }
    let s = serve(backend, target);
    let dana = id_of(&s.create_user(&json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "dana"
    })));
    let executed = all_executed(&s);
    assert_eq!(given_up(&executed), Vec::<(i64, String)>::new());
    let got = Consumer::connect(broker).collect(&queue, |got| !got.is_empty());
    assert_eq!(got[0].resource(), dana);
    assert_eq!(got[0].body["object"]["userName"], "dana");

    // Without the CA, the broker's certificate is not trusted: nothing is sent.
    let mut untrusted = amqp_target(broker, &unique("identity"), Some(&unique("tls")));
    untrusted.url = broker.tls_url_without_credentials();
    let s = serve(backend, untrusted);
    let eve = id_of(&s.create_user(&json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "eve"
    })));
    let refused = wait_for("the untrusted broker refused", || {
        target_orders(&s)
            .into_iter()
            .find(|o| o.resource_id == eve && o.last_error.is_some())
    });
    let error = refused.last_error.unwrap_or_default().to_lowercase();
    assert!(
        error.contains("certificate") || error.contains("tls"),
        "{error}"
    );
    assert_ne!(refused.state.as_str(), "executed");
}

crate::for_each_backend!(
    provisioning_on_demand_traces_the_publish,
    amqps_with_a_private_ca,
    changes_arrive_once_in_order_with_routing_keys_and_bodies,
    an_unroutable_message_ends_in_error_with_the_brokers_reason,
    theconnection_test_checks_the_broker_and_the_exchange,
    full_sync_republishes_what_is_in_scope,
    a_broker_stopped_for_ten_seconds_loses_nothing,
);
