//! Connectors: how provisioning reaches one kind of target. The engine speaks to them only
//! through [`Connector`], so LDAP (and others) slot in beside SCIM; a message broker is also a
//! [`publisher::Publisher`].

pub mod amqp;
pub mod batch;
pub mod ldap;
pub mod publisher;
pub mod scim;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde_json::Value;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What kind of object an order is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    User,
    Group,
}

/// A successful call: the remote object's id when there is one, and the status seen.
#[derive(Debug, Clone, Default)]
pub struct Delivered {
    pub remote_id: Option<String>,
    pub status: Option<u16>,
    /// The object as the target holds it right after the call, when the call itself returned
    /// it atomically (an LDAP post-read control); verification then needs no separate read.
    pub read_back: Option<Value>,
}

impl Delivered {
    /// A call on an existing remote object that answered `status`.
    pub fn at(remote_id: &str, status: reqwest::StatusCode) -> Delivered {
        Delivered {
            remote_id: Some(remote_id.to_string()),
            status: Some(status.as_u16()),
            read_back: None,
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ConnectorError {
    /// Worth trying again later: network trouble, timeouts, 5xx, 429.
    #[error("{message}")]
    Retryable {
        message: String,
        status: Option<u16>,
        retry_after: Option<Duration>,
    },
    /// Trying again will not help: the target rejected the request.
    #[error("{message}")]
    Permanent {
        message: String,
        status: Option<u16>,
    },
    /// The target does not offer what was asked (501, 405, 404 on an endpoint), for good. A
    /// connector falls back when it can; when this reaches an order, it is permanent.
    #[error("{message}")]
    Unsupported {
        message: String,
        status: Option<u16>,
    },
    /// Not the target's fault: the order waits for something else first (a group member that
    /// is not provisioned yet, named by `waiting_for`).
    #[error("{message}")]
    Deferred {
        message: String,
        waiting_for: Option<String>,
    },
}

impl ConnectorError {
    pub fn status(&self) -> Option<u16> {
        match self {
            ConnectorError::Retryable { status, .. }
            | ConnectorError::Permanent { status, .. }
            | ConnectorError::Unsupported { status, .. } => *status,
            ConnectorError::Deferred { .. } => None,
        }
    }

    /// Does this failure say the target is unwell (and count toward quarantining it)? A
    /// target that throttles (429) is well; refusals and missing features say nothing.
    pub fn counts_against_health(&self) -> bool {
        matches!(self, ConnectorError::Retryable { status, .. } if *status != Some(429))
    }
}

/// Does the target's value hold everything that was sent? Targets may add attributes and
/// sub-attributes of their own; `null` in what was sent means "no value".
pub fn covers(sent: &Value, remote: &Value) -> bool {
    match (sent, remote) {
        (Value::Null, r) => r.is_null(),
        (Value::Object(a), Value::Object(b)) => a
            .iter()
            .all(|(k, v)| covers(v, b.get(k).unwrap_or(&Value::Null))),
        // An object of nothing but nulls is what a missing object holds.
        (Value::Object(a), Value::Null) => a.values().all(|v| covers(v, &Value::Null)),
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| covers(x, y))
        }
        (a, b) => a == b,
    }
}

/// One attribute that differs between what scimgate manages and what a target holds.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AttributeDrift {
    pub name: String,
    pub expected: Value,
    pub actual: Value,
}

impl AttributeDrift {
    /// The drift in words, as verification reports it.
    pub fn describe(&self) -> String {
        format!(
            "drift: '{}' is {} on the target, {} was sent",
            self.name, self.actual, self.expected
        )
    }
}

/// One object as an aggregation read it from a target: its remote id and its attributes as
/// [`Connector::read`] returns them.
#[derive(Debug, Clone)]
pub struct RemoteObject {
    pub remote_id: String,
    pub attributes: Value,
}

/// Objects per page handed from a connector to an aggregation.
pub type PageSink = tokio::sync::mpsc::Sender<Vec<RemoteObject>>;

/// Compares what was sent with what a SCIM-shaped target holds, attribute by attribute; the
/// target may add attributes of its own. Every attribute that differs.
pub fn scim_differences(kind: ObjectKind, sent: &Value, remote: &Value) -> Vec<AttributeDrift> {
    let Value::Object(fields) = sent else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (name, value) in fields {
        if matches!(name.as_str(), "schemas" | "password") {
            continue;
        }
        let remote_value = remote.get(name).unwrap_or(&Value::Null);
        let same = if kind == ObjectKind::Group && name == "members" {
            let ids = |v: &Value| -> std::collections::BTreeSet<String> {
                v.as_array()
                    .map(|m| {
                        m.iter()
                            .filter_map(|x| x["value"].as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            ids(value) == ids(remote_value)
        } else {
            covers(value, remote_value)
        };
        if !same {
            out.push(AttributeDrift {
                name: name.clone(),
                expected: value.clone(),
                actual: remote_value.clone(),
            });
        }
    }
    out
}

/// The first difference [`scim_differences`] finds, in words.
pub fn first_difference(kind: ObjectKind, sent: &Value, remote: &Value) -> Option<String> {
    scim_differences(kind, sent, remote)
        .first()
        .map(AttributeDrift::describe)
}

/// The operations the engine needs from any target.
pub trait Connector: Send + Sync {
    /// Told the objects a batch of orders is about to create, a connector may look them all
    /// up at once, so the [`Connector::find`] before each create needs no request of its own.
    fn look_ahead<'a>(&'a self, _kind: ObjectKind, _objects: &'a [&'a Value]) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }
    /// Finds an existing remote object that stands for `object` (correlation before create):
    /// by the attribute the target correlates on (`userName`, `uid`, a group's name).
    fn find<'a>(
        &'a self,
        kind: ObjectKind,
        object: &'a Value,
    ) -> BoxFuture<'a, Result<Option<String>, ConnectorError>>;
    /// Creates the object; returns its remote id.
    fn create<'a>(
        &'a self,
        kind: ObjectKind,
        object: &'a Value,
    ) -> BoxFuture<'a, Result<Delivered, ConnectorError>>;
    /// Makes the remote object equal to `object` in every attribute scimgate manages.
    fn update<'a>(
        &'a self,
        kind: ObjectKind,
        remote_id: &'a str,
        object: &'a Value,
    ) -> BoxFuture<'a, Result<Delivered, ConnectorError>>;
    /// How `remote` (as [`Connector::read`] returned it) differs from the `sent` object, in
    /// words; `None` when it holds everything that was sent.
    fn difference(&self, kind: ObjectKind, sent: &Value, remote: &Value) -> Option<String> {
        self.differences(kind, sent, remote)
            .first()
            .map(AttributeDrift::describe)
    }
    /// Every managed attribute in which `remote` differs from `sent` (a full sync's drift).
    fn differences(&self, kind: ObjectKind, sent: &Value, remote: &Value) -> Vec<AttributeDrift> {
        scim_differences(kind, sent, remote)
    }
    /// Whether an object as read from the target is deactivated (so a full sync does not
    /// deactivate it again).
    fn is_disabled(&self, remote: &Value) -> bool {
        remote.get("active") == Some(&Value::Bool(false))
    }
    /// Reads every object of `kind` on the target, page by page into `sink` (an aggregation);
    /// returns how many were read. Pages are bounded, so a large target streams. `attributes`
    /// names what the caller compares and correlates on (empty: everything); a connector may
    /// read more.
    fn aggregate<'a>(
        &'a self,
        kind: ObjectKind,
        attributes: &'a [String],
        sink: &'a PageSink,
    ) -> BoxFuture<'a, Result<u64, ConnectorError>>;
    /// Reads the remote object back (for verification); `None` when it does not exist.
    fn read<'a>(
        &'a self,
        kind: ObjectKind,
        remote_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<Value>, ConnectorError>>;
    /// Disables the remote object without deleting it (`active: false`).
    fn deactivate<'a>(
        &'a self,
        kind: ObjectKind,
        remote_id: &'a str,
    ) -> BoxFuture<'a, Result<Delivered, ConnectorError>>;
    /// Deletes the remote object; an object already gone counts as done.
    fn delete<'a>(
        &'a self,
        kind: ObjectKind,
        remote_id: &'a str,
    ) -> BoxFuture<'a, Result<Delivered, ConnectorError>>;
    /// Tests the connection (the admin API's `POST /admin/targets/{name}/test`): one cheap,
    /// authenticated call that changes nothing on the target. Answers what was learnt of the
    /// target on the way (a SCIM target's announced capabilities).
    fn check(&self) -> BoxFuture<'_, Result<Value, ConnectorError>>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn verification_finds_drift_but_tolerates_target_additions() {
        let sent = json!({"schemas": ["x"], "userName": "a", "name": {"givenName": "A"}, "emails": [{"value": "a@x"}], "password": "p"});
        let same = json!({"id": "r1", "userName": "a", "name": {"givenName": "A", "familyName": "Added"}, "emails": [{"value": "a@x", "primary": false}], "meta": {}});
        assert_eq!(first_difference(ObjectKind::User, &sent, &same), None);
        let drifted =
            json!({"userName": "a", "name": {"givenName": "B"}, "emails": [{"value": "a@x"}]});
        let found = first_difference(ObjectKind::User, &sent, &drifted).expect("drift");
        assert!(found.contains("'name'"), "{found}");
        let group = json!({"displayName": "G", "members": [{"value": "1"}, {"value": "2"}]});
        let reordered = json!({"displayName": "G", "members": [{"value": "2", "display": "x"}, {"value": "1"}]});
        assert_eq!(
            first_difference(ObjectKind::Group, &group, &reordered),
            None
        );
        let missing = json!({"displayName": "G", "members": [{"value": "1"}]});
        assert!(first_difference(ObjectKind::Group, &group, &missing).is_some());
    }
}
