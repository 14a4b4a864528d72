//! The `Connector` operations of an LDAP target, as the engine calls them.

use super::*;

impl Connector for LdapConnector {
    /// A fresh bound connection and a read of the base DN.
    fn check(&self) -> BoxFuture<'_, Result<Value, ConnectorError>> {
        Box::pin(async move {
            self.pool.reset().await;
            match self.entry(&self.base_dn, vec!["1.1".into()]).await? {
                Some(_) => Ok(serde_json::json!({"baseDn": self.base_dn})),
                None => Err(permanent(format!(
                    "base_dn {} is not in the directory",
                    self.base_dn
                ))),
            }
        })
    }

    fn find<'a>(
        &'a self,
        kind: ObjectKind,
        object: &'a Value,
    ) -> BoxFuture<'a, Result<Option<String>, ConnectorError>> {
        Box::pin(self.find_entry(kind, object))
    }

    fn create<'a>(
        &'a self,
        kind: ObjectKind,
        object: &'a Value,
    ) -> BoxFuture<'a, Result<Delivered, ConnectorError>> {
        Box::pin(self.create_entry(kind, object))
    }

    fn update<'a>(
        &'a self,
        kind: ObjectKind,
        remote_id: &'a str,
        object: &'a Value,
    ) -> BoxFuture<'a, Result<Delivered, ConnectorError>> {
        Box::pin(self.update_entry(kind, remote_id, object))
    }

    fn difference(&self, kind: ObjectKind, sent: &Value, remote: &Value) -> Option<String> {
        let (held, desired) = self.comparable(kind, sent, remote);
        entry::difference(&held, &desired, self.members(kind))
    }

    fn differences(&self, kind: ObjectKind, sent: &Value, remote: &Value) -> Vec<AttributeDrift> {
        let (held, desired) = self.comparable(kind, sent, remote);
        let list =
            |values: Vec<String>| Value::Array(values.into_iter().map(Value::from).collect());
        entry::differences(&held, &desired, self.members(kind))
            .into_iter()
            .map(|(name, wanted, have)| AttributeDrift {
                name,
                expected: list(wanted),
                actual: list(have),
            })
            .collect()
    }

    fn is_disabled(&self, remote: &Value) -> bool {
        let dn = remote["dn"].as_str().unwrap_or_default();
        let moved = self
            .disabled_container
            .as_ref()
            .is_some_and(|container| entry::same_dn(entry::split_dn(dn).1, container));
        let marked = self
            .disable_mark
            .as_ref()
            .is_some_and(|(attribute, value)| {
                let held = entry::attributes_of(remote);
                entry::get(&held, attribute).is_some_and(|v| v.contains(value))
            });
        moved || marked
    }

    fn aggregate<'a>(
        &'a self,
        kind: ObjectKind,
        attributes: &'a [String],
        sink: &'a PageSink,
    ) -> BoxFuture<'a, Result<u64, ConnectorError>> {
        Box::pin(self.aggregate_entries(kind, attributes, sink))
    }

    fn read<'a>(
        &'a self,
        _kind: ObjectKind,
        remote_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<Value>, ConnectorError>> {
        Box::pin(async move {
            Ok(self
                .entry(remote_id, Vec::new())
                .await?
                .map(|attributes| entry_json(remote_id, attributes)))
        })
    }

    fn deactivate<'a>(
        &'a self,
        _kind: ObjectKind,
        remote_id: &'a str,
    ) -> BoxFuture<'a, Result<Delivered, ConnectorError>> {
        Box::pin(self.deactivate_entry(remote_id))
    }

    fn delete<'a>(
        &'a self,
        kind: ObjectKind,
        remote_id: &'a str,
    ) -> BoxFuture<'a, Result<Delivered, ConnectorError>> {
        Box::pin(self.delete_entry(kind, remote_id))
    }
}
