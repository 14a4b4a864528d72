//! `scimgate` run as its own process (the binary Cargo built for this test or bench), so it can
//! be killed with SIGKILL: no shutdown hook, no lease given back, nothing flushed.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use serde_json::json;

pub struct Instance {
    child: Child,
    /// e.g. `http://127.0.0.1:40123`
    pub root: String,
}

/// `scimgate` with this config file and database.
pub fn scimgate(config: &Path, database: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_scimgate"));
    command
        .arg("--config")
        .arg(config)
        .env("SCIMGATE_DATABASE_URL", database)
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "error");
    // A benchmark's own settings are not scimgate's (it refuses unknown SCIMGATE_ keys).
    for (name, _) in std::env::vars().filter(|(n, _)| n.starts_with("SCIMGATE_BENCH_")) {
        command.env_remove(name);
    }
    command
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

/// A new API token with `role`, made by `scimgate token create`.
pub fn token(config: &Path, database: &str, name: &str, role: &str) -> String {
    let out = scimgate(config, database)
        .args(["token", "create", "--name", name, "--role", role])
        .output()
        .expect("token");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Waits (up to a minute) until the server at `root` answers `/healthz`.
pub fn wait_until_healthy(root: &str) {
    let client = Client::new();
    let started = Instant::now();
    while client
        .get(format!("{root}/healthz"))
        .send()
        .map_or(true, |r| !r.status().is_success())
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "scimgate did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Instance {
    /// `scimgate serve` on `port`, as worker instance `name`, once it answers `/healthz`.
    pub fn start(config: &Path, database: &str, port: u16, name: &str) -> Instance {
        let child = scimgate(config, database)
            .arg("serve")
            .env("SCIMGATE_LISTEN", format!("127.0.0.1:{port}"))
            .env("SCIMGATE_WORKER__INSTANCE", name)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start scimgate");
        let root = format!("http://127.0.0.1:{port}");
        wait_until_healthy(&root);
        Instance { child, root }
    }

    /// The SCIM base URL.
    pub fn scim(&self) -> String {
        format!("{}/scim/v2", self.root)
    }

    /// SIGKILL, and wait for the process to be gone.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Four clients creating users through `bases` (SCIM base URLs, round robin) until `stop`;
/// the userNames acknowledged with a 201.
pub fn creating_clients(
    bases: Vec<String>,
    token: String,
    stop: Arc<AtomicBool>,
) -> (
    Arc<Mutex<BTreeSet<String>>>,
    Vec<std::thread::JoinHandle<()>>,
) {
    let acked: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let threads = (0..4)
        .map(|c| {
            let (acked, stop, token) = (acked.clone(), stop.clone(), token.clone());
            let base = bases[c % bases.len()].clone();
            std::thread::spawn(move || {
                let client = Client::builder()
                    .timeout(Duration::from_secs(5))
                    .build()
                    .expect("client");
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let name = format!("c{c}-{n:05}");
                    n += 1;
                    let body = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                        "userName": name});
                    let answer = client
                        .post(format!("{base}/Users"))
                        .bearer_auth(&token)
                        .header("content-type", "application/scim+json")
                        .body(body.to_string())
                        .send();
                    match answer {
                        Ok(r) if r.status().as_u16() == 201 => {
                            if let Ok(mut set) = acked.lock() {
                                set.insert(name);
                            }
                        }
                        _ => std::thread::sleep(Duration::from_millis(20)),
                    }
                }
            })
        })
        .collect();
    (acked, threads)
}
