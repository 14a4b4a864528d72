//! A scimgate server for benchmarks: SQLite in a temp dir, a free loopback port, an API token.

use std::sync::mpsc;

use scimgate::auth::api_token;
use scimgate::config::Config;
use scimgate::storage::Db;

pub struct Server {
    /// e.g. `http://127.0.0.1:40123/scim/v2`
    pub base: String,
    pub token: String,
    pub db: Db,
    /// Stops the server (and its events and checkpoints) when the bench is done with it, so
    /// a later run does not share the machine with an earlier run's background work.
    running: Option<(actix_web::dev::ServerHandle, std::thread::JoinHandle<()>)>,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let Some((handle, thread)) = self.running.take() else {
            return;
        };
        // Stopped from a thread of its own: a bench may drop its server inside a runtime,
        // where blocking on another would panic.
        let stopping = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(handle.stop(true));
        });
        let _ = stopping.join();
        let _ = thread.join();
    }
}

/// Starts a server on SQLite after `adjust` has changed the bench configuration.
#[allow(dead_code)] // Not every bench starts one this way.
pub fn start(adjust: impl FnOnce(&mut Config) + Send + 'static) -> Server {
    start_on(None, adjust)
}

/// Starts a server on `database_url` (by default SQLite in a temp dir) after `adjust` has
/// changed the bench configuration.
pub fn start_on(
    database_url: Option<String>,
    adjust: impl FnOnce(&mut Config) + Send + 'static,
) -> Server {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = Config {
        listen: "127.0.0.1:0".into(),
        database_url: database_url
            .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("db").display())),
        pool_size: 16,
        ..Config::default()
    };
    adjust(&mut config);
    let db = Db::open(&config.database_url, 4).expect("open");
    let token = api_token::issue(&db, "bench").expect("token");
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let started = scimgate::app::start(&config).expect("start");
            tx.send((started.addr, started.server.handle()))
                .expect("addr");
            let _ = started.server.await;
        })
    });
    let (addr, handle) = rx.recv().expect("started");
    Server {
        base: format!("http://{addr}/scim/v2"),
        token,
        db,
        running: Some((handle, thread)),
        _dir: dir,
    }
}
