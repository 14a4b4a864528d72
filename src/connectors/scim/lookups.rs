//! Finding and reading objects on a SCIM target, many at once. Concurrent correlation lookups
//! share one `userName eq "a" or userName eq "b" ...` request, and read-backs one
//! `id eq "x" or id eq "y" ...`; a target that rejects such filters, or answers a page short,
//! is asked one object at a time instead.

use std::sync::atomic::Ordering;

use reqwest::Method;
use serde_json::Value;

use super::status::Addressed;
use super::{quote, ScimConnector};
use crate::connectors::{ConnectorError, ObjectKind};

/// Most values one filter asks for (keeps the request line short).
pub const LOOKUP_BATCH: usize = 50;

fn any_of(attribute: &str, values: &[String]) -> String {
    values
        .iter()
        .map(|v| format!("{attribute} eq {}", quote(v)))
        .collect::<Vec<_>>()
        .join(" or ")
}

fn resources(body: &Value) -> Vec<Value> {
    body["Resources"].as_array().cloned().unwrap_or_default()
}

impl ScimConnector {
    /// The resources whose `attribute` equals one of `values`; `None` when the batched
    /// request cannot be trusted to have found them all.
    async fn search_any(
        &self,
        kind: ObjectKind,
        attribute: &str,
        values: &[String],
        attributes: Option<&str>,
    ) -> Result<Option<Vec<Value>>, ConnectorError> {
        if !self.batch_filters.load(Ordering::Relaxed)
            || self.capabilities().await?.filter == Some(false)
        {
            return Ok(None);
        }
        let filter = any_of(attribute, values);
        let count = (values.len() * 2).to_string();
        let mut query = vec![("filter", filter.as_str()), ("count", count.as_str())];
        if let Some(attributes) = attributes {
            query.push(("attributes", attributes));
        }
        let request = self
            .request(Method::GET, Self::endpoint(kind))
            .query(&query);
        match self.send_to(Addressed::Endpoint, request, None).await {
            Ok((_, body)) => {
                let found = resources(&body);
                let total = body["totalResults"].as_u64().unwrap_or(0) as usize;
                // A target that pages below what was asked: ask one by one.
                Ok((total <= found.len()).then_some(found))
            }
            // The target does not take `or` filters: from now on, one by one.
            Err(ConnectorError::Unsupported { .. })
            | Err(ConnectorError::Permanent {
                status: Some(400 | 403),
                ..
            }) => {
                self.batch_filters.store(false, Ordering::Relaxed);
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// The ids of the target's objects whose correlation attribute (`userName`, a group's
    /// `displayName`) is `value`.
    pub(super) async fn ids_named(
        &self,
        kind: ObjectKind,
        value: &str,
    ) -> Result<Vec<String>, ConnectorError> {
        let search = |values: Vec<String>| self.search_named(kind, values);
        self.names(kind).find(value, search).await
    }

    /// Looks up these names of objects about to be created in as few requests as the target
    /// allows; only when it answers `or` filters (else each create looks up on its own).
    pub(super) async fn look_ahead_names(&self, kind: ObjectKind, values: Vec<String>) {
        if values.is_empty() || !self.batch_filters.load(Ordering::Relaxed) {
            return;
        }
        let search = |values: Vec<String>| self.search_named(kind, values);
        self.names(kind).look_ahead(values, search).await;
    }

    fn names(&self, kind: ObjectKind) -> &crate::connectors::batch::Lookups<String> {
        match kind {
            ObjectKind::User => &self.user_names,
            ObjectKind::Group => &self.group_names,
        }
    }

    /// The attribute objects of the kind correlate on.
    pub(super) fn name_attribute(kind: ObjectKind) -> &'static str {
        match kind {
            ObjectKind::User => "userName",
            ObjectKind::Group => "displayName",
        }
    }

    /// The objects named any of `values`: each id with the name it holds.
    async fn search_named(
        &self,
        kind: ObjectKind,
        values: Vec<String>,
    ) -> Result<Vec<(String, Vec<String>)>, ConnectorError> {
        let attribute = Self::name_attribute(kind);
        if self.capabilities().await?.filter == Some(false) {
            // A target without filtering cannot be searched: nothing is found to correlate.
            return Ok(Vec::new());
        }
        let wanted = format!("id,{attribute}");
        let found = match values.len() {
            1 => None,
            _ => {
                self.search_any(kind, attribute, &values, Some(&wanted))
                    .await?
            }
        };
        let found = match found {
            Some(found) => found,
            None => {
                let mut all = Vec::new();
                for value in &values {
                    let filter = format!("{attribute} eq {}", quote(value));
                    let request = self.request(Method::GET, Self::endpoint(kind)).query(&[
                        ("filter", filter.as_str()),
                        ("attributes", wanted.as_str()),
                        ("count", "2"),
                    ]);
                    let (_, body) = self.send_to(Addressed::Endpoint, request, None).await?;
                    // A target may leave out the attribute asked for: the value searched for
                    // is what the hit holds.
                    all.extend(resources(&body).into_iter().map(|mut r| {
                        if r[attribute].is_null() {
                            r[attribute] = Value::String(value.clone());
                        }
                        r
                    }));
                }
                all
            }
        };
        Ok(found
            .iter()
            .filter_map(|r| {
                Some((
                    r["id"].as_str()?.to_string(),
                    vec![r[attribute].as_str()?.to_string()],
                ))
            })
            .collect())
    }

    /// The target's object `remote_id`, as a GET returns it; `None` when it does not exist.
    pub(super) async fn object(
        &self,
        kind: ObjectKind,
        remote_id: &str,
    ) -> Result<Option<Value>, ConnectorError> {
        let lookups = match kind {
            ObjectKind::User => &self.user_reads,
            ObjectKind::Group => &self.group_reads,
        };
        let search = |ids: Vec<String>| async move {
            let found = match ids.len() {
                1 => None,
                _ => self.search_any(kind, "id", &ids, None).await?,
            };
            let found = match found {
                Some(found) => found,
                None => {
                    let mut all = Vec::new();
                    for id in &ids {
                        let path = Self::object_path(kind, id);
                        match self.send(self.request(Method::GET, &path), None).await {
                            Ok((_, body)) => all.push(body),
                            Err(ConnectorError::Permanent {
                                status: Some(404), ..
                            }) => {}
                            Err(e) => return Err(e),
                        }
                    }
                    all
                }
            };
            Ok(found
                .into_iter()
                .filter_map(|r| {
                    let id = r["id"].as_str()?.to_string();
                    Some((r, vec![id]))
                })
                .collect())
        };
        let found = lookups.find(remote_id, search).await?;
        Ok(found
            .into_iter()
            .find(|r| r["id"].as_str() == Some(remote_id)))
    }
}
