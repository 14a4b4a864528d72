//! Test fixture: a real scimgate server on a free loopback port, over a fresh database.

use std::sync::mpsc;
use std::time::Duration;

use reqwest::blocking::{Client, RequestBuilder};
use reqwest::Method;
use serde_json::Value;

use scimgate::auth::api_token;
use scimgate::clock::Clock;
use scimgate::config::{Config, JwtConfig};
use scimgate::storage::Db;

#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestServer {
    /// e.g. `http://127.0.0.1:40123/scim/v2`
    pub base: String,
    pub token: String,
    pub db: Db,
    /// The server's clock: `advance` it instead of sleeping for time to pass.
    pub clock: Clock,
    pub database_url: String,
    client: Client,
    handle: actix_web::dev::ServerHandle,
    _dir: tempfile::TempDir,
}

/// A response, read whole.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }

    /// Asserts a SCIM error body (RFC 7644 §3.12) with this status and scimType.
    pub fn assert_scim_error(&self, status: u16, scim_type: Option<&str>) {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.body
        );
        assert_eq!(
            self.body["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error",
            "not a SCIM error body: {}",
            self.body
        );
        assert_eq!(
            self.body["status"],
            status.to_string(),
            "status must be a string"
        );
        assert!(
            self.body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "no detail: {}",
            self.body
        );
        match scim_type {
            Some(t) => assert_eq!(self.body["scimType"], t, "body: {}", self.body),
            None => assert!(
                self.body.get("scimType").is_none(),
                "unexpected scimType: {}",
                self.body
            ),
        }
        assert!(
            self.header("content-type")
                .is_some_and(|c| c.starts_with("application/scim+json")),
            "content type {:?}",
            self.header("content-type")
        );
    }
}

/// The secret key (32 random bytes, base64) every PostgreSQL test server of this process
/// shares, in a directory that lives as long as the process.
pub fn shared_secret_key() -> &'static std::path::Path {
    static KEY: std::sync::OnceLock<(tempfile::TempDir, std::path::PathBuf)> =
        std::sync::OnceLock::new();
    &KEY.get_or_init(|| {
        use base64::Engine;
        let dir = tempfile::tempdir().expect("temp dir for the secret key");
        let path = dir.path().join("secret.key");
        let key: [u8; 32] = rand::random();
        std::fs::write(&path, base64::engine::general_purpose::STANDARD.encode(key))
            .expect("write the secret key");
        (dir, path)
    })
    .1
}

pub fn database_url(backend: Backend, dir: &std::path::Path) -> String {
    match backend {
        Backend::Sqlite => format!("sqlite://{}", dir.join("scimgate.db").display()),
        Backend::Postgres => crate::postgres::shared().create_database(),
    }
}

impl TestServer {
    pub fn start(backend: Backend) -> TestServer {
        Self::start_with(backend, |_| {})
    }

    /// Starts a server after `adjust` has changed the default test configuration.
    pub fn start_with(backend: Backend, adjust: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config {
            listen: "127.0.0.1:0".into(),
            database_url: database_url(backend, dir.path()),
            pool_size: 4,
            ..Config::default()
        };
        if matches!(backend, Backend::Postgres) {
            // PostgreSQL has no default key: the tests' instances share one, as production
            // instances on one database do.
            config.secret_key_file = Some(shared_secret_key().to_path_buf());
        }
        adjust(&mut config);
        let clock = Clock::adjustable();
        let db = Db::open(&config.database_url, 2)
            .expect("open database")
            .with_clock(clock.clone());
        let token = api_token::issue(&db, "test").expect("issue token");
        let database_url = config.database_url.clone();

        let (tx, rx) = mpsc::channel();
        let server_clock = clock.clone();
        std::thread::spawn(move || {
            let system = actix_web::rt::System::new();
            system.block_on(async move {
                match scimgate::app::start_with_clock(&config, server_clock) {
                    Ok(started) => {
                        let _ = tx.send(Ok((started.server.handle(), started.addr)));
                        let _ = started.server.await;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                    }
                }
            });
        });
        let (handle, addr) = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("server thread answered")
            .expect("server started");
        TestServer {
            base: format!("http://{addr}/scim/v2"),
            token,
            db,
            clock,
            database_url,
            client: Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("http client"),
            handle,
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A request with the test token, not yet sent.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(&self.token)
    }

    /// A request without credentials.
    pub fn anonymous(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, self.url(path))
    }

    pub fn get(&self, path: &str) -> Resp {
        send(self.request(Method::GET, path))
    }

    /// POSTs `body`; a User or Group body without `schemas` gets its core schema (tests that
    /// send bodies without one build the request themselves).
    pub fn post(&self, path: &str, body: &Value) -> Resp {
        send(scim_body(
            self.request(Method::POST, path),
            &with_schemas(path, body),
        ))
    }

    /// PUTs `body`, with `schemas` as [`TestServer::post`] adds it.
    pub fn put(&self, path: &str, body: &Value) -> Resp {
        send(scim_body(
            self.request(Method::PUT, path),
            &with_schemas(path, body),
        ))
    }

    pub fn delete(&self, path: &str) -> Resp {
        send(self.request(Method::DELETE, path))
    }

    /// Creates a user and returns its body, asserting 201.
    pub fn create_user(&self, body: &Value) -> Value {
        let r = self.post("/Users", body);
        assert_eq!(r.status, 201, "create user: {}", r.body);
        r.body
    }

    pub fn create_group(&self, body: &Value) -> Value {
        let r = self.post("/Groups", body);
        assert_eq!(r.status, 201, "create group: {}", r.body);
        r.body
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        // Sends the stop command at once; the server thread ends on its own.
        drop(self.handle.stop(false));
        // Every test checks, at its end, that each order move it caused was tallied: the
        // console and the metrics read the tallies, not the orders. (A database a test took
        // away answers nothing here, and is not checked.)
        if !std::thread::panicking() {
            if let Ok(off) = self
                .db
                .read(scimgate::storage::order_tallies::discrepancies)
            {
                assert!(
                    off.is_empty(),
                    "order tallies that disagree with the orders (target, state, off by): {off:?}"
                );
            }
        }
    }
}

/// `body` with the core schema of the resource type `path` addresses, when it has none.
pub fn with_schemas(path: &str, body: &Value) -> Value {
    if path.ends_with("/.search") {
        return body.clone();
    }
    let schema = if path.starts_with("/Users") {
        "urn:ietf:params:scim:schemas:core:2.0:User"
    } else if path.starts_with("/Groups") {
        "urn:ietf:params:scim:schemas:core:2.0:Group"
    } else {
        return body.clone();
    };
    let mut body = body.clone();
    if let Value::Object(fields) = &mut body {
        fields
            .entry("schemas")
            .or_insert_with(|| serde_json::json!([schema]));
    }
    body
}

pub fn scim_body(builder: RequestBuilder, body: &Value) -> RequestBuilder {
    builder
        .header("content-type", "application/scim+json")
        .body(body.to_string())
}

pub fn send(builder: RequestBuilder) -> Resp {
    let response = builder.send().expect("request sent");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().expect("response body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    Resp {
        status,
        headers,
        body,
    }
}

/// A SCIM base URL where every connection is refused: port 1 on loopback, where nothing
/// listens. (A port freed by dropping a listener may be taken at once by another test's server,
/// which then answers in its stead.)
pub fn refusing_url() -> String {
    "http://127.0.0.1:1/scim/v2".to_string()
}

pub fn id_of(resource: &Value) -> String {
    resource["id"].as_str().expect("resource id").to_string()
}

/// A JWT configuration for tests.
pub fn jwt_config(
    algorithm: &str,
    secret: Option<&str>,
    public_key_file: Option<&str>,
) -> JwtConfig {
    JwtConfig {
        algorithm: algorithm.into(),
        secret: secret.map(str::to_string),
        secret_file: None,
        public_key_pem: None,
        public_key_file: public_key_file.map(Into::into),
        issuer: "https://issuer.test".into(),
        audience: "scimgate-test".into(),
        leeway_seconds: 0,
    }
}

/// Declares each listed test function twice: once on SQLite, once on PostgreSQL.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $name() {
                    let server = $crate::harness::TestServer::start($crate::harness::Backend::Sqlite);
                    super::$name(&server);
                }
            )*
        }
        mod postgres {
            $(
                #[test]
                fn $name() {
                    let server = $crate::harness::TestServer::start($crate::harness::Backend::Postgres);
                    super::$name(&server);
                }
            )*
        }
    };
}

/// For test functions that take the backend themselves (they start their own servers):
/// declares `sqlite_NAME` and `postgres_NAME`.
#[macro_export]
macro_rules! for_each_backend {
    ($($name:ident),* $(,)?) => {
        mod per_backend {
            $(
                pub mod $name {
                    #[test]
                    fn sqlite() {
                        super::super::$name($crate::harness::Backend::Sqlite);
                    }
                    #[test]
                    fn postgres() {
                        super::super::$name($crate::harness::Backend::Postgres);
                    }
                }
            )*
        }
    };
}

/// The events of `event_type` recorded so far (the outbox, read directly).
pub fn recorded_events(
    s: &TestServer,
    event_type: &str,
) -> Vec<scimgate::storage::events::StoredEvent> {
    scimgate::storage::events::readable_after(&s.db, 0, 1_000_000)
        .expect("read the outbox")
        .into_iter()
        .filter(|e| e.event_type == event_type)
        .collect()
}
