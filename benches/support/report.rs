//! Where a benchmark leaves its figures: `target/bench/<name>.json`, so runs can be compared.

use std::path::PathBuf;

use serde_json::{json, Value};

fn directory() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("bench")
}

/// Writes `figures` with when and where they were measured; says where.
pub fn write(name: &str, figures: &Value) {
    let dir = directory();
    let path = dir.join(format!("{name}.json"));
    let document = json!({
        "bench": name,
        "measuredAt": scimgate::scim::output::format_time(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_micros() as i64)
        ),
        "cores": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "figures": figures,
    });
    let written = std::fs::create_dir_all(&dir).and_then(|()| {
        std::fs::write(
            &path,
            serde_json::to_string_pretty(&document).unwrap_or_default(),
        )
    });
    match written {
        Ok(()) => println!("figures written to {}", path.display()),
        Err(e) => eprintln!("could not write {}: {e}", path.display()),
    }
}

/// Figures recorded as a run goes, for [`write_recorded`].
static RECORDED: std::sync::Mutex<Vec<(String, Value)>> = std::sync::Mutex::new(Vec::new());

/// Keeps one figure (or a group of them) under `what`.
#[allow(dead_code)]
pub fn record(what: &str, value: Value) {
    if let Ok(mut recorded) = RECORDED.lock() {
        recorded.push((what.to_string(), value));
    }
}

/// Writes every recorded figure, in the order recorded.
#[allow(dead_code)]
pub fn write_recorded(name: &str) {
    let recorded = RECORDED.lock().map(|r| r.clone()).unwrap_or_default();
    let figures: serde_json::Map<String, Value> = recorded.into_iter().collect();
    write(name, &Value::Object(figures));
}
