//! Reading every entry of a target back (aggregation), and what of an entry can be compared
//! with what was sent.

use super::*;

impl LdapConnector {
    /// The entry's attributes and the object's, minus what cannot be compared (passwords).
    pub(super) fn comparable(
        &self,
        kind: ObjectKind,
        sent: &Value,
        remote: &Value,
    ) -> (Attributes, Attributes) {
        let mut held = entry::attributes_of(remote);
        held.remove("dn");
        let mut desired = self.attributes(kind, sent);
        desired.retain(|name, _| {
            !PASSWORD_ATTRIBUTES
                .iter()
                .any(|p| p.eq_ignore_ascii_case(name))
        });
        (held, desired)
    }

    /// Every entry of `kind` under the base DN, by a paged search (RFC 2696), one page at a
    /// time into `sink`.
    pub(super) async fn aggregate_entries(
        &self,
        kind: ObjectKind,
        wanted: &[String],
        sink: &PageSink,
    ) -> Result<u64, ConnectorError> {
        // Only what is compared, correlated on, or tells a disabled entry: less to send and
        // decode than every attribute.
        let mut names: Vec<String> = match kind {
            ObjectKind::User if !wanted.is_empty() => wanted.to_vec(),
            ObjectKind::User => vec!["*".to_string()],
            ObjectKind::Group => vec![
                "cn".to_string(),
                self.group_class.member_attribute().to_string(),
            ],
        };
        if kind == ObjectKind::User && !wanted.is_empty() {
            names.push(self.correlation.clone());
            if let Some((attribute, _)) = &self.disable_mark {
                names.push(attribute.clone());
            }
        }
        let class = match kind {
            ObjectKind::User => self
                .user_classes
                .last()
                .cloned()
                .unwrap_or_else(|| "person".into()),
            ObjectKind::Group => self.group_class.object_classes()[1].to_string(),
        };
        let filter = format!("(objectClass={class})");
        let doing = format!("aggregating {filter} under {}", self.base_dn);
        let mut ldap = self.pool.get().await?;
        let adapters: Vec<Box<dyn ldap3::adapters::Adapter<_, _>>> = vec![
            Box::new(ldap3::adapters::EntriesOnly::new()),
            Box::new(ldap3::adapters::PagedResults::new(AGGREGATION_PAGE as i32)),
        ];
        let mut stream = self
            .call(
                &doing,
                ldap.streaming_search_with(adapters, &self.base_dn, Scope::Subtree, &filter, names),
            )
            .await?;
        let mut page = Vec::with_capacity(AGGREGATION_PAGE);
        let mut total = 0u64;
        while let Some(found) = self.call(&doing, stream.next()).await? {
            let found = SearchEntry::construct(found);
            let attributes: Attributes = found.attrs.into_iter().collect();
            page.push(RemoteObject {
                attributes: entry_json(&found.dn, attributes),
                remote_id: found.dn,
            });
            total += 1;
            if page.len() == AGGREGATION_PAGE {
                let full = std::mem::replace(&mut page, Vec::with_capacity(AGGREGATION_PAGE));
                if sink.send(full).await.is_err() {
                    return Err(permanent("the aggregation was stopped".into()));
                }
            }
        }
        self.call(&doing, async { stream.finish().await.success() })
            .await?;
        if !page.is_empty() && sink.send(page).await.is_err() {
            return Err(permanent("the aggregation was stopped".into()));
        }
        Ok(total)
    }
}

/// A directory entry as JSON: each attribute's values as a list.
pub(super) fn entry_json(dn: &str, attributes: Attributes) -> Value {
    let mut out = Map::new();
    out.insert("dn".into(), Value::String(dn.to_string()));
    for (name, values) in attributes {
        out.insert(
            name,
            Value::Array(values.into_iter().map(Value::String).collect()),
        );
    }
    Value::Object(out)
}
