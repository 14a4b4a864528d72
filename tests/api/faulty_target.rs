//! A deliberately unreliable SCIM target for delivery tests: a real HTTP server on loopback that
//! answers POST /Users from a script of faults (500, 429 with Retry-After, a slow answer that
//! outlives the client's timeout, 409 after creating), and otherwise behaves.

use std::collections::{HashMap, VecDeque};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::{json, Value};

#[derive(Debug, Clone)]
pub enum Fault {
    Status(u16),
    TooManyRequests {
        retry_after_seconds: u64,
    },
    /// Creates the user, but answers only after this long.
    Slow(Duration),
    /// Creates the user, then answers 409 as if it had existed.
    ConflictAfterCreate,
}

#[derive(Default)]
struct State {
    /// OAuth mode: SCIM calls need `Bearer <valid_token>`; tokens come from POST /token.
    oauth: bool,
    valid_token: Option<String>,
    tokens_issued: usize,
    script: VecDeque<Fault>,
    users: HashMap<String, Value>,
    /// (method, path) of every request, in order.
    log: Vec<(String, String)>,
    /// Answer filters with `or` with 400, as targets that support only `userName eq` do.
    reject_or_filters: bool,
    /// Answer `cursor` paging (RFC 9865) with this status (400, 501); without one it is
    /// ignored, as by targets that know only index paging.
    cursor_refusal: Option<u16>,
    /// The ServiceProviderConfig to serve; none: 404, as many applications answer.
    announce: Option<Value>,
}

pub struct FaultyTarget {
    pub base: String,
    state: Arc<Mutex<State>>,
    handle: actix_web::dev::ServerHandle,
}

impl FaultyTarget {
    pub fn start(script: Vec<Fault>) -> FaultyTarget {
        Self::start_with(State {
            script: script.into(),
            ..State::default()
        })
    }

    /// A well-behaved target that answers `or` filters with 400 (as many applications do).
    pub fn start_without_or_filters() -> FaultyTarget {
        Self::start_with(State {
            reject_or_filters: true,
            ..State::default()
        })
    }

    /// A well-behaved target that knows only index paging, two users a page, and answers a
    /// `cursor` with `cursor_refusal` (or ignores it).
    pub fn start_index_paged(cursor_refusal: Option<u16>) -> FaultyTarget {
        Self::start_with(State {
            cursor_refusal,
            ..State::default()
        })
    }

    /// A well-behaved target that announces `spc` as its ServiceProviderConfig.
    pub fn start_announcing(spc: Value) -> FaultyTarget {
        Self::start_with(State {
            announce: Some(spc),
            ..State::default()
        })
    }

    /// A target guarded by OAuth 2.0 client credentials (client `scimgate`, secret `s3cret`).
    pub fn start_oauth() -> FaultyTarget {
        Self::start_with(State {
            oauth: true,
            ..State::default()
        })
    }

    /// Revokes the token in use: the next SCIM call gets 401.
    pub fn revoke_tokens(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.valid_token = None;
        }
    }

    pub fn tokens_issued(&self) -> usize {
        self.state
            .lock()
            .map(|s| s.tokens_issued)
            .unwrap_or_default()
    }

    pub fn token_url(&self) -> String {
        self.base.replace("/scim/v2", "/token")
    }

    fn start_with(initial: State) -> FaultyTarget {
        let state = Arc::new(Mutex::new(initial));
        let shared = state.clone();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(web::Data::new(shared.clone()))
                        .default_service(web::to(handle))
                })
                .workers(2)
                .bind("127.0.0.1:0")
                .expect("bind");
                let addr = server.addrs()[0];
                let server = server.run();
                tx.send((server.handle(), addr)).expect("send");
                let _ = server.await;
            })
        });
        let (handle, addr) = rx.recv().expect("faulty target started");
        FaultyTarget {
            base: format!("http://{addr}/scim/v2"),
            state,
            handle,
        }
    }

    pub fn users(&self) -> Vec<Value> {
        self.state
            .lock()
            .map(|s| s.users.values().cloned().collect())
            .unwrap_or_default()
    }

    pub fn requests(&self) -> Vec<(String, String)> {
        self.state.lock().map(|s| s.log.clone()).unwrap_or_default()
    }
}

impl Drop for FaultyTarget {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
    }
}

/// A list of every user, index-paged two at a time (`startIndex`, 1-based).
fn index_page(s: &State, query: &str) -> HttpResponse {
    if let Some(status) = s.cursor_refusal {
        if query.split('&').any(|p| p.starts_with("cursor")) {
            let status = actix_web::http::StatusCode::from_u16(status)
                .unwrap_or(actix_web::http::StatusCode::BAD_REQUEST);
            return HttpResponse::build(status)
                .json(json!({"detail": "cursor paging is not supported"}));
        }
    }
    let start: usize = query
        .split('&')
        .find_map(|p| p.strip_prefix("startIndex="))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .max(1);
    let mut all: Vec<&Value> = s.users.values().collect();
    all.sort_by_key(|u| u["id"].as_str().unwrap_or_default().to_string());
    let page: Vec<&Value> = all.iter().skip(start - 1).take(2).copied().collect();
    HttpResponse::Ok().json(json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": all.len(), "startIndex": start, "itemsPerPage": page.len(), "Resources": page,
    }))
}

async fn handle(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<Arc<Mutex<State>>>,
) -> HttpResponse {
    let method = req.method().to_string();
    let path = req.path().to_string();
    let (fault, response) = {
        let Ok(mut s) = state.lock() else {
            return HttpResponse::InternalServerError().finish();
        };
        s.log.push((method.clone(), path.clone()));
        if path == "/token" {
            let basic = req
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let form = String::from_utf8_lossy(&body);
            // "scimgate:s3cret" in base64
            if basic != "Basic c2NpbWdhdGU6czNjcmV0"
                || !form.contains("grant_type=client_credentials")
            {
                return HttpResponse::Unauthorized().json(json!({"error": "invalid_client"}));
            }
            s.tokens_issued += 1;
            let token = format!("tok-{}", s.tokens_issued);
            s.valid_token = Some(token.clone());
            return HttpResponse::Ok()
                .json(json!({"access_token": token, "token_type": "Bearer", "expires_in": 3600}));
        }
        if s.oauth {
            let presented = req
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let ok = s
                .valid_token
                .as_ref()
                .is_some_and(|t| presented == format!("Bearer {t}"));
            if !ok {
                return HttpResponse::Unauthorized().json(json!({"detail": "invalid token"}));
            }
        }
        match (method.as_str(), path.trim_start_matches("/scim/v2")) {
            ("GET", "/ServiceProviderConfig") => match &s.announce {
                Some(spc) => (None, HttpResponse::Ok().json(spc)),
                None => (None, HttpResponse::NotFound().finish()),
            },
            ("GET", "/Users") => {
                let query = req
                    .query_string()
                    .replace("%22", "\"")
                    .replace("%20", " ")
                    .replace('+', " ");
                if !query.contains("filter=") {
                    return index_page(&s, &query);
                }
                if query.contains(" or ") && s.reject_or_filters {
                    return HttpResponse::BadRequest().json(
                        json!({"scimType": "invalidFilter", "detail": "or is not supported"}),
                    );
                }
                // `attr eq "v"`, possibly joined by `or`: the quoted values are every other piece.
                let (attribute, wanted): (&str, Vec<String>) = (
                    if query.contains("filter=id ") {
                        "id"
                    } else {
                        "userName"
                    },
                    query
                        .split('"')
                        .skip(1)
                        .step_by(2)
                        .map(str::to_string)
                        .collect(),
                );
                let found: Vec<Value> = s
                    .users
                    .values()
                    .filter(|u| wanted.iter().any(|w| u[attribute] == w.as_str()))
                    .cloned()
                    .collect();
                (None, HttpResponse::Ok().json(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], "totalResults": found.len(), "Resources": found})))
            }
            ("POST", "/Users") => {
                let mut user: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let fault = s.script.pop_front();
                let create = |s: &mut State, user: &mut Value| {
                    let id = format!("remote-{}", s.users.len() + 1);
                    user["id"] = json!(id);
                    s.users.insert(id, user.clone());
                };
                match fault {
                    Some(Fault::Status(code)) => (
                        None,
                        HttpResponse::build(
                            actix_web::http::StatusCode::from_u16(code)
                                .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR),
                        )
                        .json(json!({"detail": "scripted failure"})),
                    ),
                    Some(Fault::TooManyRequests {
                        retry_after_seconds,
                    }) => (
                        None,
                        HttpResponse::TooManyRequests()
                            .insert_header(("Retry-After", retry_after_seconds.to_string()))
                            .json(json!({"detail": "slow down"})),
                    ),
                    Some(Fault::Slow(d)) => {
                        create(&mut s, &mut user);
                        (Some(d), HttpResponse::Created().json(user))
                    }
                    Some(Fault::ConflictAfterCreate) => {
                        create(&mut s, &mut user);
                        (
                            None,
                            HttpResponse::Conflict()
                                .json(json!({"scimType": "uniqueness", "detail": "exists"})),
                        )
                    }
                    None => {
                        create(&mut s, &mut user);
                        (None, HttpResponse::Created().json(user))
                    }
                }
            }
            ("GET", p) if p.starts_with("/Users/") => {
                match s.users.get(p.trim_start_matches("/Users/")) {
                    Some(user) => (None, HttpResponse::Ok().json(user)),
                    None => (
                        None,
                        HttpResponse::NotFound().json(json!({"detail": "no such user"})),
                    ),
                }
            }
            ("PUT", p) if p.starts_with("/Users/") => {
                let id = p.trim_start_matches("/Users/").to_string();
                let mut user: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                user["id"] = json!(id);
                match s.users.get_mut(&id) {
                    Some(slot) => {
                        *slot = user.clone();
                        (None, HttpResponse::Ok().json(user))
                    }
                    None => (
                        None,
                        HttpResponse::NotFound().json(json!({"detail": "no such user"})),
                    ),
                }
            }
            // Like many applications: no PATCH at all.
            ("PATCH", _) => (
                None,
                HttpResponse::NotImplemented().json(json!({"detail": "PATCH is not implemented"})),
            ),
            _ => (None, HttpResponse::NotFound().finish()),
        }
    };
    if let Some(delay) = fault {
        actix_web::rt::time::sleep(delay).await;
    }
    response
}
