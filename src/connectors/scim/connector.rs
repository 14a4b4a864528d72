//! The `Connector` operations of a SCIM target, as the engine calls them.

use super::*;

impl Connector for ScimConnector {
    /// `GET Users?count=1` with the target's credentials (fetching an OAuth token first when
    /// it uses client credentials), and what its ServiceProviderConfig announces.
    fn check(&self) -> BoxFuture<'_, Result<Value, ConnectorError>> {
        Box::pin(async move {
            let builder = self
                .request(Method::GET, Self::endpoint(ObjectKind::User))
                .query(&[("count", "1")]);
            self.send_to(Addressed::Endpoint, builder, None).await?;
            Ok(json!({"capabilities": self.capabilities().await?.report()}))
        })
    }

    fn aggregate<'a>(
        &'a self,
        kind: ObjectKind,
        _attributes: &'a [String],
        sink: &'a PageSink,
    ) -> BoxFuture<'a, Result<u64, ConnectorError>> {
        Box::pin(self.aggregate_resources(kind, sink))
    }

    fn look_ahead<'a>(&'a self, kind: ObjectKind, objects: &'a [&'a Value]) -> BoxFuture<'a, ()> {
        let attribute = Self::name_attribute(kind);
        let values = objects
            .iter()
            .filter_map(|o| o[attribute].as_str().map(str::to_string))
            .collect();
        Box::pin(self.look_ahead_names(kind, values))
    }

    fn find<'a>(
        &'a self,
        kind: ObjectKind,
        object: &'a Value,
    ) -> BoxFuture<'a, Result<Option<String>, ConnectorError>> {
        let attribute = Self::name_attribute(kind);
        let value = object[attribute].as_str().unwrap_or_default();
        Box::pin(async move {
            let found = self.ids_named(kind, value).await?;
            match found.as_slice() {
                [] => Ok(None),
                [one] => Ok(Some(one.to_string())),
                _ => Err(ConnectorError::Permanent {
                    message: format!(
                        "several {} on the target have {attribute} {}: not guessing",
                        Self::endpoint(kind),
                        quote(value)
                    ),
                    status: None,
                }),
            }
        })
    }

    fn create<'a>(
        &'a self,
        kind: ObjectKind,
        object: &'a Value,
    ) -> BoxFuture<'a, Result<Delivered, ConnectorError>> {
        Box::pin(async move {
            let (status, body) = self
                .send_text(
                    Addressed::Endpoint,
                    self.request(Method::POST, Self::endpoint(kind)),
                    Some(sparse::to_json(object)),
                )
                .await?;
            let remote_id = body["id"].as_str().map(str::to_string).ok_or_else(|| {
                ConnectorError::Permanent {
                    message: "the target answered a create without an id".into(),
                    status: Some(status.as_u16()),
                }
            })?;
            Ok(Delivered {
                remote_id: Some(remote_id),
                status: Some(status.as_u16()),
                read_back: representation(body),
            })
        })
    }

    fn update<'a>(
        &'a self,
        kind: ObjectKind,
        remote_id: &'a str,
        object: &'a Value,
    ) -> BoxFuture<'a, Result<Delivered, ConnectorError>> {
        Box::pin(async move {
            let path = Self::object_path(kind, remote_id);
            let patching = match kind {
                ObjectKind::Group => true,
                ObjectKind::User => self.update == UpdateMethod::Patch,
            };
            if patching && self.patch_supported().await? {
                let patched = match kind {
                    ObjectKind::Group => self.update_group(&path, remote_id, object).await,
                    ObjectKind::User => self.patch_user(&path, remote_id, object).await,
                };
                match patched {
                    // The target has no PATCH after all: PUT from now on.
                    Err(ConnectorError::Unsupported { .. }) => Refused::mark(&self.refused.patch),
                    other => return other,
                }
            }
            let (status, body) = self
                .send_text(
                    Addressed::Object,
                    self.request(Method::PUT, &path),
                    Some(sparse::to_json(object)),
                )
                .await?;
            Ok(Delivered {
                read_back: representation(body),
                ..Delivered::at(remote_id, status)
            })
        })
    }

    fn read<'a>(
        &'a self,
        kind: ObjectKind,
        remote_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<Value>, ConnectorError>> {
        Box::pin(self.object(kind, remote_id))
    }

    fn deactivate<'a>(
        &'a self,
        kind: ObjectKind,
        remote_id: &'a str,
    ) -> BoxFuture<'a, Result<Delivered, ConnectorError>> {
        Box::pin(async move {
            let path = Self::object_path(kind, remote_id);
            if self.patch_supported().await? {
                let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "replace", "path": "active", "value": false}]});
                match self
                    .send(self.request(Method::PATCH, &path), Some(&body))
                    .await
                {
                    Ok((status, _)) => return Ok(Delivered::at(remote_id, status)),
                    Err(ConnectorError::Unsupported { .. }) => Refused::mark(&self.refused.patch),
                    Err(e) => return Err(e),
                }
            }
            // No PATCH: the target's own copy, inactive, put back whole.
            let mut current =
                self.object(kind, remote_id)
                    .await?
                    .ok_or_else(|| ConnectorError::Permanent {
                        message: format!("{path} is not on the target"),
                        status: Some(404),
                    })?;
            if let Some(fields) = current.as_object_mut() {
                fields.remove("meta");
                fields.insert("active".into(), Value::Bool(false));
            }
            let (status, _) = self
                .send(self.request(Method::PUT, &path), Some(&current))
                .await?;
            Ok(Delivered::at(remote_id, status))
        })
    }

    fn delete<'a>(
        &'a self,
        kind: ObjectKind,
        remote_id: &'a str,
    ) -> BoxFuture<'a, Result<Delivered, ConnectorError>> {
        Box::pin(async move {
            let path = Self::object_path(kind, remote_id);
            match self.send(self.request(Method::DELETE, &path), None).await {
                Ok((status, _)) => Ok(Delivered::at(remote_id, status)),
                // Already gone is what we wanted.
                Err(ConnectorError::Permanent {
                    status: Some(404), ..
                }) => Ok(Delivered {
                    remote_id: None,
                    status: Some(404),
                    read_back: None,
                }),
                Err(e) => Err(e),
            }
        })
    }
}
