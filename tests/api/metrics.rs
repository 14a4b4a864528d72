//! `GET /metrics`: after a known workload (users pushed in through SCIM and delivered to a
//! SCIM target) the counters, histograms and gauges say what happened, and the output parses
//! as Prometheus text format; a configured bearer token guards it.

use std::time::Duration;

use prometheus_parse::{Scrape, Value as Sample};
use regex::Regex;
use serde_json::json;

use crate::harness::{id_of, Backend, TestServer};
use crate::provisioning::{fast, settled, target_for, wait_for};

fn metrics_url(s: &TestServer) -> String {
    s.base.replace("/scim/v2", "/metrics")
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// The scrape's text, checked line by line against the text format's grammar.
fn scrape_text(s: &TestServer, token: Option<&str>) -> String {
    let mut request = client().get(metrics_url(s));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().expect("scrape");
    assert_eq!(response.status().as_u16(), 200);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = response.text().expect("body");
    let sample = Regex::new(
        r#"^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? (-?[0-9.]+([eE][-+]?[0-9]+)?|NaN|[+-]Inf)$"#,
    )
    .expect("regex");
    for line in text.lines().filter(|l| !l.is_empty()) {
        assert!(
            line.starts_with("# HELP ") || line.starts_with("# TYPE ") || sample.is_match(line),
            "not Prometheus text format: {line:?}"
        );
    }
    text
}

fn parse(text: &str) -> Scrape {
    Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("parses as Prometheus text")
}

/// The value of the series `name` whose labels include `labels` (a histogram's count).
fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .find(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match &s.value {
            Sample::Counter(v) | Sample::Gauge(v) | Sample::Untyped(v) => *v,
            Sample::Histogram(buckets) => buckets
                .iter()
                .find(|b| b.less_than.is_infinite())
                .map_or(0.0, |b| b.count),
            Sample::Summary(_) => panic!("{name} is a summary; histograms were asked for"),
        })
}

fn counts_a_known_workload(backend: Backend) {
    let remote = TestServer::start(backend);
    let target = target_for(&remote, "app");
    let s = TestServer::start_with(backend, |c| fast(c, vec![target]));
    let mut ids = Vec::new();
    for name in ["m.one", "m.two", "m.three"] {
        let user = s.create_user(&json!({"userName": name, "active": true}));
        ids.push(id_of(&user));
    }
    assert_eq!(s.get(&format!("/Users/{}", ids[0])).status, 200);
    assert_eq!(s.get("/Users/no-such-user").status, 404);
    for id in &ids {
        wait_for("the user's order to settle", || {
            settled(&s, "User", id).then_some(())
        });
    }
    let text = scrape_text(&s, None);
    let m = parse(&text);
    for histogram in [
        "scimgate_scim_request_duration_seconds",
        "scimgate_target_request_duration_seconds",
        "scimgate_order_completion_seconds",
    ] {
        assert!(
            text.contains(&format!("# TYPE {histogram} histogram")),
            "{histogram} is a histogram"
        );
    }
    let scim = "scimgate_scim_request_duration_seconds";
    let users = [("resource", "Users")];
    let with = |extra: &[(&'static str, &'static str)]| -> Vec<(&str, &str)> {
        users.iter().chain(extra).copied().collect()
    };
    assert_eq!(
        value(&m, scim, &with(&[("method", "POST"), ("status", "201")])),
        Some(3.0)
    );
    assert_eq!(
        value(&m, scim, &with(&[("method", "GET"), ("status", "200")])),
        Some(1.0)
    );
    assert_eq!(
        value(&m, scim, &with(&[("method", "GET"), ("status", "404")])),
        Some(1.0)
    );
    // Ids never become labels.
    assert!(!text.contains(&ids[0]), "a user id in the metrics");

    let app = [("target", "app")];
    let transitions = "scimgate_order_transitions_total";
    let moved = |from: &str, to: &str| {
        value(
            &m,
            transitions,
            &[("target", "app"), ("from", from), ("to", to)],
        )
        .unwrap_or(0.0)
    };
    assert_eq!(moved("new", "pending"), 3.0);
    assert!(moved("pending", "transmitted") >= 3.0);
    assert_eq!(moved("transmitted", "verified"), 3.0);
    let delivered = value(
        &m,
        "scimgate_target_request_duration_seconds",
        &[("target", "app"), ("outcome", "success")],
    );
    assert_eq!(delivered, Some(3.0));
    let completed = value(
        &m,
        "scimgate_order_completion_seconds",
        &[("target", "app"), ("state", "verified")],
    );
    assert_eq!(completed, Some(3.0));

    let orders = |state: &str| {
        value(
            &m,
            "scimgate_orders",
            &[("target", "app"), ("state", state)],
        )
    };
    assert_eq!(orders("verified"), Some(3.0));
    assert_eq!(orders("pending"), Some(0.0));
    assert_eq!(orders("error"), Some(0.0));
    assert_eq!(
        value(&m, "scimgate_oldest_open_order_age_seconds", &app),
        Some(0.0)
    );
    assert_eq!(value(&m, "scimgate_target_quarantined", &app), Some(0.0));
    let last_success =
        value(&m, "scimgate_target_last_success_timestamp_seconds", &app).expect("last success");
    assert!(last_success > 1.7e9, "a Unix time: {last_success}");
    assert_eq!(value(&m, "scimgate_planner_lag_changes", &[]), Some(0.0));

    // Counters only grow: one more create is one more.
    s.create_user(&json!({"userName": "m.four"}));
    let again = parse(&scrape_text(&s, None));
    assert_eq!(
        value(
            &again,
            scim,
            &with(&[("method", "POST"), ("status", "201")])
        ),
        Some(4.0)
    );
}

fn a_token_guards_the_metrics(backend: Backend) {
    let s = TestServer::start_with(backend, |c| c.metrics.token = Some("scrape-secret".into()));
    let anonymous = client().get(metrics_url(&s)).send().expect("scrape");
    assert_eq!(anonymous.status().as_u16(), 401);
    let challenge = anonymous.headers().get("www-authenticate").cloned();
    assert_eq!(
        challenge.as_ref().and_then(|v| v.to_str().ok()),
        Some("Bearer realm=\"metrics\"")
    );
    let wrong = client()
        .get(metrics_url(&s))
        .bearer_auth("not-it")
        .send()
        .expect("scrape");
    assert_eq!(wrong.status().as_u16(), 401);
    // The SCIM token is no key to the metrics either.
    let scim_token = client()
        .get(metrics_url(&s))
        .bearer_auth(&s.token)
        .send()
        .expect("scrape");
    assert_eq!(scim_token.status().as_u16(), 401);
    let text = scrape_text(&s, Some("scrape-secret"));
    assert!(text.contains("scimgate_planner_lag_changes"));

    let off = TestServer::start_with(backend, |c| c.metrics.enabled = false);
    let response = client().get(metrics_url(&off)).send().expect("scrape");
    assert_eq!(response.status().as_u16(), 404);
}

crate::for_each_backend!(counts_a_known_workload, a_token_guards_the_metrics);
