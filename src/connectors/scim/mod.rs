//! The SCIM 2.0 target connector (RFC 7644 as a client), over reqwest.

mod aggregate;
pub mod capabilities;
mod connector;
mod lookups;
mod sparse;
pub mod status;

use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Client, Method, RequestBuilder, Response, StatusCode};
use serde_json::{json, Value};

use self::capabilities::{Capabilities, Refused};
use self::lookups::LOOKUP_BATCH;
use self::status::Addressed;
use super::batch::Lookups;
use super::{covers, BoxFuture, Connector, ConnectorError, Delivered, ObjectKind, PageSink};
use crate::targets::capabilities::CapabilityOverrides;

const SCIM_JSON: &str = "application/scim+json";

#[derive(Debug, Clone)]
pub enum Auth {
    None,
    Bearer(String),
    Basic {
        username: String,
        password: String,
    },
    /// OAuth 2.0 client credentials (RFC 6749 §4.4): a token fetched from `token_url` and
    /// fetched again shortly before it expires, or when the target answers 401.
    ClientCredentials {
        token_url: String,
        client_id: String,
        client_secret: String,
        scope: Option<String>,
    },
}

pub use crate::targets::UpdateMethod;

pub struct ScimConnector {
    base: String,
    /// `base` with a trailing slash, parsed once: each request's path is joined to it, which
    /// spares parsing the scheme and host on every request. `None` when `base` is no URL (each
    /// request then fails as it is sent).
    base_url: Option<reqwest::Url>,
    auth: Auth,
    update: UpdateMethod,
    client: Client,
    /// The current OAuth access token and when to stop using it.
    access_token: tokio::sync::Mutex<Option<(String, Instant)>>,
    /// Concurrent lookups, shared into batched requests.
    user_names: Lookups<String>,
    group_names: Lookups<String>,
    user_reads: Lookups<Value>,
    group_reads: Lookups<Value>,
    /// Set for targets known to answer `or` filters; cleared when the target rejects one.
    batch_filters: AtomicBool,
    /// What the target's settings say of its features, over what it announces.
    overrides: CapabilityOverrides,
    /// What the target announces, read on first use.
    capabilities: tokio::sync::OnceCell<Capabilities>,
    /// What the target refused at run time.
    refused: Refused,
}

impl ScimConnector {
    pub fn new(
        base: &str,
        auth: Auth,
        update: UpdateMethod,
        timeout: Duration,
    ) -> Result<ScimConnector, reqwest::Error> {
        let mut headers = HeaderMap::new();
        headers.insert("accept", HeaderValue::from_static(SCIM_JSON));
        let client = Client::builder()
            .timeout(timeout)
            .default_headers(headers)
            .build()?;
        let base = base.trim_end_matches('/').to_string();
        Ok(ScimConnector {
            base_url: reqwest::Url::parse(&format!("{base}/")).ok(),
            base,
            auth,
            update,
            client,
            access_token: tokio::sync::Mutex::new(None),
            user_names: Lookups::new(LOOKUP_BATCH),
            group_names: Lookups::new(LOOKUP_BATCH),
            user_reads: Lookups::new(LOOKUP_BATCH),
            group_reads: Lookups::new(LOOKUP_BATCH),
            batch_filters: AtomicBool::new(false),
            overrides: CapabilityOverrides::default(),
            capabilities: tokio::sync::OnceCell::new(),
            refused: Refused::default(),
        })
    }

    /// Features to take as given whatever the target announces.
    pub fn with_capabilities(mut self, overrides: CapabilityOverrides) -> ScimConnector {
        self.overrides = overrides;
        self
    }

    /// Shares concurrent lookups into `or` filters (the target must answer them completely).
    pub fn batching_lookups(self, on: bool) -> ScimConnector {
        self.batch_filters
            .store(on, std::sync::atomic::Ordering::Relaxed);
        self
    }

    /// A valid OAuth access token, fetched when there is none or it is about to expire.
    async fn oauth_token(&self, force_refresh: bool) -> Result<String, ConnectorError> {
        let Auth::ClientCredentials {
            token_url,
            client_id,
            client_secret,
            scope,
        } = &self.auth
        else {
            return Ok(String::new());
        };
        let mut cached = self.access_token.lock().await;
        if let (false, Some((token, until))) = (force_refresh, cached.as_ref()) {
            if *until > Instant::now() {
                return Ok(token.clone());
            }
        }
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(scope) = scope {
            form.push(("scope", scope.as_str()));
        }
        let response = self
            .client
            .post(token_url)
            .basic_auth(client_id, Some(client_secret))
            .form(&form)
            .send()
            .await
            .map_err(|e| ConnectorError::Retryable {
                message: format!("token request failed: {e}"),
                status: None,
                retry_after: None,
            })?;
        let (_, body) = read(response, Addressed::Endpoint)
            .await
            .map_err(|e| match e {
                ConnectorError::Permanent { message, status } => ConnectorError::Permanent {
                    message: format!("token endpoint refused: {message}"),
                    status,
                },
                other => other,
            })?;
        let token = body["access_token"]
            .as_str()
            .ok_or_else(|| ConnectorError::Permanent {
                message: "the token endpoint answered without an access_token".into(),
                status: None,
            })?;
        // Renew a little early so a request never carries a token expiring in flight.
        let lifetime = body["expires_in"]
            .as_u64()
            .unwrap_or(300)
            .saturating_sub(30)
            .max(1);
        *cached = Some((
            token.to_string(),
            Instant::now() + Duration::from_secs(lifetime),
        ));
        Ok(token.to_string())
    }

    /// `Users/{id}` or `Groups/{id}`.
    fn object_path(kind: ObjectKind, remote_id: &str) -> String {
        format!("{}/{remote_id}", Self::endpoint(kind))
    }

    fn endpoint(kind: ObjectKind) -> &'static str {
        match kind {
            ObjectKind::User => "Users",
            ObjectKind::Group => "Groups",
        }
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let builder = match self.base_url.as_ref().and_then(|base| base.join(path).ok()) {
            Some(url) => self.client.request(method, url),
            None => self.client.request(method, format!("{}/{path}", self.base)),
        };
        match &self.auth {
            Auth::None | Auth::ClientCredentials { .. } => builder,
            Auth::Bearer(token) => builder.header(AUTHORIZATION, format!("Bearer {token}")),
            Auth::Basic { username, password } => builder.basic_auth(username, Some(password)),
        }
    }

    /// Sends a request about one object (`Users/{id}`).
    async fn send(
        &self,
        builder: RequestBuilder,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value), ConnectorError> {
        self.send_to(Addressed::Object, builder, body).await
    }

    /// Sends a request; failures are classed by [`status::classify`] for what it `addressed`.
    async fn send_to(
        &self,
        addressed: Addressed,
        builder: RequestBuilder,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value), ConnectorError> {
        self.send_text(addressed, builder, body.map(Value::to_string))
            .await
    }

    /// [`ScimConnector::send_to`] with the body already written as JSON text.
    async fn send_text(
        &self,
        addressed: Addressed,
        builder: RequestBuilder,
        body: Option<String>,
    ) -> Result<(StatusCode, Value), ConnectorError> {
        let builder = match body {
            Some(text) => builder.header(CONTENT_TYPE, SCIM_JSON).body(text),
            None => builder,
        };
        if !matches!(self.auth, Auth::ClientCredentials { .. }) {
            return self.send_once(addressed, builder).await;
        }
        // With OAuth, a 401 means the token was revoked or expired early: fetch a new one once.
        let retry = builder.try_clone();
        let token = self.oauth_token(false).await?;
        match self.send_once(addressed, builder.bearer_auth(token)).await {
            Err(ConnectorError::Permanent {
                status: Some(401), ..
            }) if retry.is_some() => {
                let token = self.oauth_token(true).await?;
                match retry {
                    Some(again) => self.send_once(addressed, again.bearer_auth(token)).await,
                    None => Err(ConnectorError::Permanent {
                        message: "unauthorized".into(),
                        status: Some(401),
                    }),
                }
            }
            other => other,
        }
    }

    async fn send_once(
        &self,
        addressed: Addressed,
        builder: RequestBuilder,
    ) -> Result<(StatusCode, Value), ConnectorError> {
        let response = builder
            .send()
            .await
            .map_err(|e| ConnectorError::Retryable {
                message: format!("request failed: {e}"),
                status: None,
                retry_after: None,
            })?;
        read(response, addressed).await
    }
}

/// Reads a response; failures are classed by the table in [`status`].
async fn read(
    response: Response,
    addressed: Addressed,
) -> Result<(StatusCode, Value), ConnectorError> {
    let status = response.status();
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let text = response
        .text()
        .await
        .map_err(|e| ConnectorError::Retryable {
            message: format!("reading the response failed: {e}"),
            status: Some(status.as_u16()),
            retry_after: None,
        })?;
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if status.is_success() {
        return Ok((status, body));
    }
    let detail = body["detail"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| text.chars().take(500).collect());
    let message = format!("{} {}", status.as_u16(), detail);
    Err(status::error_for(
        status.as_u16(),
        addressed,
        message,
        retry_after,
    ))
}

/// The resource a create or update answered with (RFC 7644 §3.3, §3.5): the target's own
/// representation right after the change, which verification compares instead of reading it
/// again. A `204 No Content` answer has none, and the object is read back with a GET.
fn representation(body: Value) -> Option<Value> {
    body["id"].is_string().then_some(body)
}

fn quote(value: &str) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "\"\"".into())
}

impl ScimConnector {
    /// Users by PATCH: read the target's copy, then replace the managed attributes that differ
    /// and remove those the source no longer has. Nothing is sent when nothing differs.
    async fn patch_user(
        &self,
        path: &str,
        remote_id: &str,
        desired: &Value,
    ) -> Result<Delivered, ConnectorError> {
        let current = self
            .object(ObjectKind::User, remote_id)
            .await?
            .ok_or_else(|| ConnectorError::Permanent {
                message: format!("{path} is not on the target"),
                status: Some(404),
            })?;
        let mut operations = Vec::new();
        let mut compare = |op_path: String, want: &Value, have: &Value| {
            if want.is_null() {
                if !have.is_null() {
                    operations.push(json!({"op": "remove", "path": op_path}));
                }
            } else if !covers(want, have) {
                operations.push(json!({"op": "replace", "path": op_path, "value": want}));
            }
        };
        let Value::Object(fields) = desired else {
            return Ok(Delivered {
                remote_id: Some(remote_id.to_string()),
                status: None,
                read_back: None,
            });
        };
        for (name, want) in fields {
            if name == "schemas" {
                continue;
            }
            if name.starts_with("urn:") {
                if let Value::Object(ext) = want {
                    for (sub, sub_want) in ext {
                        let have = current
                            .get(name)
                            .and_then(|e| e.get(sub))
                            .unwrap_or(&Value::Null);
                        compare(format!("{name}:{sub}"), sub_want, have);
                    }
                }
                continue;
            }
            compare(
                name.clone(),
                want,
                current.get(name).unwrap_or(&Value::Null),
            );
        }
        if operations.is_empty() {
            // Just read, and nothing differs: that read is the read-back.
            return Ok(Delivered {
                remote_id: Some(remote_id.to_string()),
                status: Some(200),
                read_back: Some(current),
            });
        }
        let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": operations});
        let (status, answer) = self
            .send(self.request(Method::PATCH, path), Some(&body))
            .await?;
        Ok(Delivered {
            read_back: representation(answer),
            ..Delivered::at(remote_id, status)
        })
    }

    /// Groups: the attributes by PATCH replace, and only the members that differ by PATCH
    /// add/remove, so a large group is never rewritten for one change.
    async fn update_group(
        &self,
        path: &str,
        remote_id: &str,
        desired: &Value,
    ) -> Result<Delivered, ConnectorError> {
        let (_, current) = self.send(self.request(Method::GET, path), None).await?;
        let ids = |v: &Value| -> Vec<String> {
            v["members"]
                .as_array()
                .map(|m| {
                    m.iter()
                        .filter_map(|x| x["value"].as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        let have = ids(&current);
        let want = ids(desired);
        let add: Vec<Value> = want
            .iter()
            .filter(|id| !have.contains(id))
            .map(|id| json!({"value": id}))
            .collect();
        let remove: Vec<&String> = have.iter().filter(|id| !want.contains(id)).collect();
        let mut operations =
            vec![json!({"op": "replace", "path": "displayName", "value": desired["displayName"]})];
        if let Some(external_id) = desired.get("externalId") {
            operations.push(json!({"op": "replace", "path": "externalId", "value": external_id}));
        }
        if !add.is_empty() {
            operations.push(json!({"op": "add", "path": "members", "value": add}));
        }
        for id in remove {
            operations
                .push(json!({"op": "remove", "path": format!("members[value eq {}]", quote(id))}));
        }
        let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": operations});
        let (status, _) = self
            .send(
                self.request(Method::PATCH, &format!("{path}?excludedAttributes=members")),
                Some(&body),
            )
            .await?;
        Ok(Delivered::at(remote_id, status))
    }
}
