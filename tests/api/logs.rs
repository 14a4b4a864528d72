//! What `scimgate serve` writes to its log: no colour codes when stderr is not a terminal,
//! one JSON object per line with `SCIMGATE_LOG_FORMAT=json`, an access line per request when
//! asked for, and on a database without tokens a hint on how to make one.

use std::path::Path;
use std::process::Stdio;

use serde_json::Value;

use crate::harness::{database_url, Backend};
use crate::process::{free_port, scimgate, token, wait_until_healthy};

/// Runs `scimgate serve` with `env`, sends `requests` (paths, with `bearer` if given), stops it
/// with SIGTERM and returns what it logged.
fn serve_and_log(
    dir: &Path,
    database: &str,
    env: &[(&str, &str)],
    bearer: Option<&str>,
    requests: &[&str],
) -> String {
    let config = dir.join("scimgate.toml");
    std::fs::write(&config, "").expect("config");
    let log = dir.join(format!("serve-{}.log", free_port()));
    let port = free_port();
    let mut command = scimgate(&config, database);
    command
        .arg("serve")
        .env("SCIMGATE_LISTEN", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"));
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("start scimgate");
    let root = format!("http://127.0.0.1:{port}");
    wait_until_healthy(&root);
    let client = reqwest::blocking::Client::new();
    for path in requests {
        let mut request = client.get(format!("{root}{path}"));
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        request.send().expect("request");
    }
    // SAFETY: signals our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let _ = child.wait();
    std::fs::read_to_string(&log).expect("read the log")
}

fn plain_text_without_colour_and_a_first_run_hint(backend: Backend) {
    let dir = tempfile::tempdir().expect("dir");
    let database = database_url(backend, dir.path());
    let log = serve_and_log(dir.path(), &database, &[], None, &["/scim/v2/Users"]);
    assert!(
        !log.contains('\u{1b}'),
        "escape codes in a log file:\n{log}"
    );
    assert!(log.contains("scimgate listening"), "{log}");
    assert!(log.contains("no API token exists yet"), "{log}");
    assert!(log.contains("scimgate token create --name"), "{log}");
    // Said once, and only while there is no token.
    assert_eq!(log.matches("no API token exists yet").count(), 1);
    let config = dir.path().join("scimgate.toml");
    token(&config, &database, "okta", "scim");
    let again = serve_and_log(dir.path(), &database, &[], None, &[]);
    assert!(!again.contains("no API token exists yet"), "{again}");
    // No access log unless asked for.
    assert!(!again.contains("scimgate::access"), "{again}");
}

fn json_lines_with_an_access_log(backend: Backend) {
    let dir = tempfile::tempdir().expect("dir");
    let database = database_url(backend, dir.path());
    let config = dir.path().join("scimgate.toml");
    std::fs::write(&config, "").expect("config");
    let okta = token(&config, &database, "okta", "scim");
    let env = [
        ("SCIMGATE_LOG_FORMAT", "json"),
        ("SCIMGATE_ACCESS_LOG", "true"),
    ];
    let log = serve_and_log(
        dir.path(),
        &database,
        &env,
        Some(&okta),
        &["/scim/v2/Users?count=1"],
    );
    let lines: Vec<Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}")))
        .collect();
    assert!(lines
        .iter()
        .all(|l| l["level"].is_string() && l["timestamp"].is_string()));
    let access: Vec<&Value> = lines
        .iter()
        .filter(|l| l["target"] == "scimgate::access" && l["route"] != "/healthz")
        .collect();
    assert_eq!(access.len(), 1, "{log}");
    let line = access[0];
    assert_eq!(line["method"], "GET");
    assert_eq!(line["route"], "/scim/v2/Users");
    assert_eq!(line["status"], 200);
    assert_eq!(line["actor"], "token:okta");
    assert!(line["latency_ms"].as_f64().is_some_and(|ms| ms >= 0.0));
    assert!(
        line["span"]["request_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty()),
        "the request id: {line}"
    );
    // The token itself never reaches the log.
    assert!(!log.contains(&okta));
}

crate::for_each_backend!(
    plain_text_without_colour_and_a_first_run_hint,
    json_lines_with_an_access_log
);
