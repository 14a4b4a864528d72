//! The server process killed with SIGKILL mid-work, then started again on the same database:
//! every create that was acknowledged (201) is there afterwards, and every change reaches an
//! independent SCIM target (scim2-server) exactly once, members right, no order left behind.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use serde_json::{json, Value};

use crate::harness::{database_url, Backend};
use crate::interop_servers::{ExternalScim, Implementation};
use crate::process::{creating_clients, free_port, token, Instance};

fn kill_during_creates_and_delivery(backend: Backend) {
    let dir = tempfile::tempdir().expect("temp dir");
    let database = database_url(backend, dir.path());
    let target = ExternalScim::start(Implementation::Scim2Server);
    let config = dir.path().join("scimgate.toml");
    std::fs::write(
        &config,
        format!(
            "[worker]\npoll_interval_ms = 50\nlease_seconds = 3\ninstance = \"chaos\"\n\n\
             [[targets]]\nname = \"app\"\nurl = \"{}\"\nretry_base_ms = 100\nretry_max_ms = 1000\n\
             [targets.auth]\ntype = \"bearer\"\ntoken = \"{}\"\n",
            target.base,
            target.token.clone().unwrap_or_default()
        ),
    )
    .expect("config");
    let scim = token(&config, &database, "idp", "scim");
    let ops = token(&config, &database, "ops", "viewer");
    let port = free_port();
    let server = Instance::start(&config, &database, port, "chaos");

    // Four clients create users until the server is killed under them.
    let stop = Arc::new(AtomicBool::new(false));
    let (acked, clients) = creating_clients(vec![server.scim()], scim.clone(), stop.clone());
    // A group with the first members, so memberships travel through the crash too.
    std::thread::sleep(Duration::from_millis(700));
    let client = Client::new();
    let members: Vec<Value> = acked
        .lock()
        .map(|set| set.iter().take(5).cloned().collect::<Vec<_>>())
        .unwrap_or_default()
        .iter()
        .filter_map(|name| {
            let r: Value = client
                .get(format!(
                    "{}/scim/v2/Users?filter=userName%20eq%20%22{name}%22",
                    server.root
                ))
                .bearer_auth(&scim)
                .send()
                .ok()?
                .json()
                .ok()?;
            Some(json!({"value": r["Resources"][0]["id"].as_str()?}))
        })
        .collect();
    assert!(
        !members.is_empty(),
        "some users were created before the kill"
    );
    let group = client
        .post(format!("{}/scim/v2/Groups", server.root))
        .bearer_auth(&scim)
        .header("content-type", "application/scim+json")
        .body(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Survivors", "members": members}).to_string())
        .send()
        .expect("group");
    assert_eq!(group.status().as_u16(), 201);
    std::thread::sleep(Duration::from_millis(500));
    server.kill();
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        let _ = c.join();
    }
    let acked = acked.lock().map(|s| s.clone()).unwrap_or_default();
    assert!(
        acked.len() > 10,
        "creates ran before the kill: {}",
        acked.len()
    );

    // Started again: nothing acknowledged is lost, and delivery converges.
    let restarted_at = Instant::now();
    let server = Instance::start(&config, &database, port, "chaos");
    let present = user_names(&client, &server.scim(), Some(&scim));
    let lost: Vec<_> = acked.difference(&present).collect();
    assert!(lost.is_empty(), "acknowledged creates lost: {lost:?}");

    let target_client = Client::new();
    let on_target = |path: &str| -> Value {
        let mut request = target_client.get(format!("{}{path}", target.base));
        if let Some(t) = &target.token {
            request = request.bearer_auth(t);
        }
        request.send().and_then(|r| r.json()).unwrap_or(Value::Null)
    };
    // Up to a minute: some two thousand users go to a single-threaded Python server, on a
    // machine running the rest of the suite meanwhile.
    wait_long("every order settled after the restart", || {
        // Every user there (so every change was planned and delivered), and no order open.
        let there = user_name_list(&target_client, &target.base, target.token.as_deref());
        (there.len() >= present.len()).then_some(())?;
        let r: Value = client
            .get(format!("{}/admin/targets/app/status", server.root))
            .bearer_auth(&ops)
            .send()
            .and_then(|r| r.json())
            .ok()?;
        let open: i64 = ["pending", "transmitted", "errored", "error"]
            .iter()
            .map(|s| r["orders"][s].as_i64().unwrap_or(0))
            .sum();
        (open == 0).then_some(())
    });
    let converged = restarted_at.elapsed();
    assert!(
        converged < Duration::from_secs(60),
        "converged after {converged:?}"
    );
    let names = user_name_list(&target_client, &target.base, target.token.as_deref());
    let unique: BTreeSet<String> = names.iter().cloned().collect();
    assert_eq!(names.len(), unique.len(), "no user twice on the target");
    assert_eq!(unique, present, "every user on the target");
    let groups = on_target("/Groups?filter=displayName%20eq%20%22Survivors%22");
    assert_eq!(groups["totalResults"], 1, "{groups}");
    let member_count = groups["Resources"][0]["members"]
        .as_array()
        .map_or(0, Vec::len);
    assert_eq!(member_count, members.len(), "{groups}");
}

fn wait_long(what: &str, mut check: impl FnMut() -> Option<()>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while check().is_none() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Every user's userName at a SCIM base, paged by index (servers cap `count`).
fn user_name_list(client: &Client, base: &str, token: Option<&str>) -> Vec<String> {
    let mut names = Vec::new();
    loop {
        let mut request = client.get(format!(
            "{base}/Users?startIndex={}&count=500&attributes=userName",
            names.len() + 1
        ));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let page: Value = request.send().and_then(|r| r.json()).expect("a page");
        let resources = page["Resources"].as_array().cloned().unwrap_or_default();
        names.extend(
            resources
                .iter()
                .filter_map(|u| u["userName"].as_str().map(str::to_string)),
        );
        let total = page["totalResults"].as_u64().unwrap_or(0) as usize;
        if resources.is_empty() || names.len() >= total {
            return names;
        }
    }
}

fn user_names(client: &Client, base: &str, token: Option<&str>) -> BTreeSet<String> {
    user_name_list(client, base, token).into_iter().collect()
}

crate::for_each_backend!(kill_during_creates_and_delivery,);
