//! SCIM service providers written by others, run on loopback as outbound targets: the Python
//! reference server `scim2-server` (PyPI) and `scimmy` with `scimmy-routers` (npm), both at the
//! versions pinned under `tests/interop/` and installed by `tests/interop/install.sh` (run once
//! per test binary when needed). Each server is a child process on its own port, killed on drop.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// An independent SCIM implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Implementation {
    /// `scim2-server` (Python, PyPI): the reference server of the scim2 project.
    Scim2Server,
    /// `scimmy` + `scimmy-routers` (Node.js, npm) behind a few lines of express.
    Scimmy,
}

impl Implementation {
    pub fn name(self) -> &'static str {
        match self {
            Implementation::Scim2Server => "scim2-server",
            Implementation::Scimmy => "scimmy",
        }
    }
}

pub struct ExternalScim {
    pub implementation: Implementation,
    /// e.g. `http://127.0.0.1:40123/scim/v2`
    pub base: String,
    /// The bearer token it demands, if it can demand one (scim2-server can; scimmy's routers
    /// leave authentication to the application, and this launcher has none).
    pub token: Option<String>,
    child: Child,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Installs both servers once per test binary (the script is quick when they are installed).
fn installed() -> &'static Result<(), String> {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let script = root().join("tests/interop/install.sh");
        let out = Command::new("bash")
            .arg(&script)
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .status()
            .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
        out.success()
            .then_some(())
            .ok_or_else(|| format!("{} failed: {out}", script.display()))
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl ExternalScim {
    pub fn start(implementation: Implementation) -> ExternalScim {
        if let Err(e) = installed() {
            panic!("the interop servers are not installed: {e}");
        }
        let port = free_port();
        let root = root();
        let (mut command, base, token) = match implementation {
            Implementation::Scim2Server => {
                let token = format!("interop-{port}");
                let mut c = Command::new(root.join("target/interop/venv/bin/scim2-server"));
                c.args(["--hostname", "127.0.0.1", "--port", &port.to_string()])
                    .args(["--bearer-token", &token]);
                (c, format!("http://127.0.0.1:{port}/v2"), Some(token))
            }
            Implementation::Scimmy => {
                let mut c = Command::new("node");
                c.arg(root.join("tests/interop/scimmy/server.js"))
                    .arg(port.to_string());
                (c, format!("http://127.0.0.1:{port}/scim/v2"), None)
            }
        };
        let child = command
            .current_dir(&root)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", implementation.name()));
        let server = ExternalScim {
            implementation,
            base,
            token,
            child,
        };
        server.wait_until_ready();
        server
    }

    fn wait_until_ready(&self) {
        let client = reqwest::blocking::Client::new();
        let url = format!("{}/ServiceProviderConfig", self.base);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut request = client.get(&url);
            if let Some(token) = &self.token {
                request = request.bearer_auth(token);
            }
            if request.send().is_ok_and(|r| r.status().is_success()) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not answer at {url}",
                self.implementation.name()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for ExternalScim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
