//! Provision on demand: one user's plan on one target, run now outside the worker loop, with a
//! step-by-step trace. The run is recorded as an order (origin `on_demand`) and goes through
//! the same delivery as the workers' (review rules, manual targets, correlation, read-back);
//! the trace comes from a connector wrapped around the target's own, recording every call and
//! its result.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::{json, Value};

use super::Context;
use crate::connectors::publisher::{Message, Publisher};
use crate::connectors::{
    AttributeDrift, BoxFuture, Connector, ConnectorError, Delivered, ObjectKind, PageSink,
};
use crate::storage::orders::{self, Order, OrderState};

use super::deliver;
use super::finish::conclude;
use super::Target;

/// The steps of a run, in order.
#[derive(Default)]
struct Trace(Mutex<Vec<Value>>);

impl Trace {
    fn push(&self, step: Value) {
        if let Ok(mut steps) = self.0.lock() {
            steps.push(step);
        }
    }

    fn take(&self) -> Vec<Value> {
        self.0
            .lock()
            .map(|mut steps| std::mem::take(&mut *steps))
            .unwrap_or_default()
    }
}

/// The target's connector, recording each call and its result.
struct Traced {
    inner: Arc<dyn Connector>,
    trace: Arc<Trace>,
    /// Attributes never shown (computed from the password).
    secrets: Vec<String>,
}

fn kind_name(kind: ObjectKind) -> &'static str {
    match kind {
        ObjectKind::User => "User",
        ObjectKind::Group => "Group",
    }
}

impl Traced {
    fn shown(&self, object: &Value) -> Value {
        let mut object = object.clone();
        if let Value::Object(fields) = &mut object {
            fields.remove("password");
            for name in &self.secrets {
                fields.remove(name);
            }
        }
        object
    }

    fn request(
        &self,
        call: &str,
        kind: ObjectKind,
        remote_id: Option<&str>,
        object: Option<&Value>,
    ) {
        self.trace.push(json!({
            "step": "request",
            "call": call,
            "resourceType": kind_name(kind),
            "remoteId": remote_id,
            "object": object.map(|o| self.shown(o)),
        }));
    }

    fn response(&self, call: &str, result: &Result<Delivered, ConnectorError>) {
        self.trace.push(match result {
            Ok(done) => json!({
                "step": "response",
                "call": call,
                "ok": true,
                "status": done.status,
                "remoteId": done.remote_id,
            }),
            Err(error) => failure("response", call, error),
        });
    }
}

/// A message broker's publishing, recorded step by step: the message as sent (it holds no
/// secrets) and the broker's confirm or refusal.
struct TracedPublisher {
    inner: Arc<dyn Publisher>,
    trace: Arc<Trace>,
}

impl Publisher for TracedPublisher {
    fn publish<'a>(
        &'a self,
        message: &'a Message,
    ) -> BoxFuture<'a, Result<Delivered, ConnectorError>> {
        Box::pin(async move {
            let body: Value = serde_json::from_slice(&message.body).unwrap_or(Value::Null);
            self.trace.push(json!({
                "step": "request",
                "call": "publish",
                "routingKey": message.routing_key,
                "messageId": message.message_id,
                "message": body,
            }));
            let result = self.inner.publish(message).await;
            self.trace.push(match &result {
                Ok(_) => {
                    json!({"step": "response", "call": "publish", "ok": true, "confirmed": true})
                }
                Err(error) => failure("response", "publish", error),
            });
            result
        })
    }
}

fn failure(step: &str, call: &str, error: &ConnectorError) -> Value {
    json!({
        "step": step,
        "call": call,
        "ok": false,
        "status": error.status(),
        "error": error.to_string(),
    })
}

impl Connector for Traced {
    fn find<'a>(
        &'a self,
        kind: ObjectKind,
        object: &'a Value,
    ) -> BoxFuture<'a, Result<Option<String>, ConnectorError>> {
        Box::pin(async move {
            let found = self.inner.find(kind, object).await;
            self.trace.push(match &found {
                Ok(remote) => json!({
                    "step": "lookup",
                    "call": "find",
                    "resourceType": kind_name(kind),
                    "ok": true,
                    "found": remote,
                }),
                Err(error) => failure("lookup", "find", error),
            });
            found
        })
    }

    fn create<'a>(
        &'a self,
        kind: ObjectKind,
        object: &'a Value,
    ) -> BoxFuture<'a, Result<Delivered, ConnectorError>> {
        Box::pin(async move {
            self.request("create", kind, None, Some(object));
            let result = self.inner.create(kind, object).await;
            self.response("create", &result);
            result
        })
    }

    fn update<'a>(
        &'a self,
        kind: ObjectKind,
        remote_id: &'a str,
        object: &'a Value,
    ) -> BoxFuture<'a, Result<Delivered, ConnectorError>> {
        Box::pin(async move {
            self.request("update", kind, Some(remote_id), Some(object));
            let result = self.inner.update(kind, remote_id, object).await;
            self.response("update", &result);
            result
        })
    }

    fn difference(&self, kind: ObjectKind, sent: &Value, remote: &Value) -> Option<String> {
        self.inner.difference(kind, sent, remote)
    }

    fn differences(&self, kind: ObjectKind, sent: &Value, remote: &Value) -> Vec<AttributeDrift> {
        self.inner.differences(kind, sent, remote)
    }

    fn is_disabled(&self, remote: &Value) -> bool {
        self.inner.is_disabled(remote)
    }

    fn aggregate<'a>(
        &'a self,
        kind: ObjectKind,
        attributes: &'a [String],
        sink: &'a PageSink,
    ) -> BoxFuture<'a, Result<u64, ConnectorError>> {
        self.inner.aggregate(kind, attributes, sink)
    }

    fn read<'a>(
        &'a self,
        kind: ObjectKind,
        remote_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<Value>, ConnectorError>> {
        Box::pin(async move {
            let read = self.inner.read(kind, remote_id).await;
            self.trace.push(match &read {
                Ok(object) => json!({
                    "step": "read-back",
                    "call": "read",
                    "remoteId": remote_id,
                    "ok": true,
                    "object": object.as_ref().map(|o| self.shown(o)),
                }),
                Err(error) => failure("read-back", "read", error),
            });
            read
        })
    }

    fn deactivate<'a>(
        &'a self,
        kind: ObjectKind,
        remote_id: &'a str,
    ) -> BoxFuture<'a, Result<Delivered, ConnectorError>> {
        Box::pin(async move {
            self.request("deactivate", kind, Some(remote_id), None);
            let result = self.inner.deactivate(kind, remote_id).await;
            self.response("deactivate", &result);
            result
        })
    }

    fn delete<'a>(
        &'a self,
        kind: ObjectKind,
        remote_id: &'a str,
    ) -> BoxFuture<'a, Result<Delivered, ConnectorError>> {
        Box::pin(async move {
            self.request("delete", kind, Some(remote_id), None);
            let result = self.inner.delete(kind, remote_id).await;
            self.response("delete", &result);
            result
        })
    }

    fn check(&self) -> BoxFuture<'_, Result<Value, ConnectorError>> {
        self.inner.check()
    }
}

/// Runs `order` (started by [`crate::storage::on_demand::start`] under `owner`'s lease) on
/// `target` now, records its outcome like a worker would, and returns the trace.
pub async fn run(directory: &Context, mut target: Target, order: Order, owner: &str) -> Vec<Value> {
    let trace = Arc::new(Trace::default());
    let secrets = target.mapping.secret_targets().to_vec();
    let started_at = directory.db().clock().now_micros();
    let clock = Instant::now();
    let result = async {
        let mut found =
            super::snapshot::snapshots(directory, &target, std::slice::from_ref(&order)).await?;
        let snapshot = found.remove(&order.id).unwrap_or_default();
        let in_scope = deliver::in_scope(directory, &target, &order, &snapshot).await?;
        trace.push(json!({
            "step": "scope",
            "inScope": in_scope,
            "usersFilter": target.config.users_filter,
            "linked": snapshot.link,
        }));
        if let Some(state) = snapshot.state.as_ref().filter(|_| in_scope) {
            let mapped = target.mapping.user(state, &order.resource_id);
            let shown = Traced {
                inner: target.connector.clone(),
                trace: trace.clone(),
                secrets: secrets.clone(),
            }
            .shown(&mapped);
            trace.push(json!({"step": "mapping", "object": shown}));
        }
        target.connector = Arc::new(Traced {
            inner: target.connector.clone(),
            trace: trace.clone(),
            secrets,
        });
        if let Some(publisher) = target.publisher.take() {
            target.publisher = Some(Arc::new(TracedPublisher {
                inner: publisher,
                trace: trace.clone(),
            }));
        }
        deliver::deliver(directory, &target, &order, snapshot).await
    }
    .await;
    let (finish, attempt) = conclude(
        result,
        &order,
        &target.config,
        (started_at, clock),
        directory.db().clock().now_micros(),
    );
    let state = if finish.verified {
        OrderState::Verified
    } else {
        finish.state
    };
    let (db, owner, error) = (
        directory.db().clone(),
        owner.to_string(),
        attempt.error.clone(),
    );
    let recorded = tokio::task::spawn_blocking(move || {
        orders::finish_all(&db, &owner, &[(&order, &finish, &attempt)])
    })
    .await;
    let mut steps = trace.take();
    let recorded = match recorded {
        Ok(Ok(_)) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(e) => Some(e.to_string()),
    };
    steps.push(json!({
        "step": "result",
        "state": state.as_str(),
        "error": error,
        "recordingError": recorded,
    }));
    steps
}
