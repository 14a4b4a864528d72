//! The figures read from the store when metrics are scraped: they describe the shared
//! database, so every instance reports the same values (aggregate them with `max`).

use super::{
    Metrics, OLDEST_OPEN_ORDER, ORDERS, PLANNER_LAG, TARGET_LAST_SUCCESS, TARGET_QUARANTINED,
};
use crate::storage::orders::{self, OrderState};
use crate::storage::{target_health, targets, Db, StoreError};

pub(super) fn refresh(metrics: &Metrics, db: &Db) -> Result<(), StoreError> {
    let now = db.clock().now_micros();
    db.read(|conn| {
        let mut names: Vec<String> = targets::list(conn)?.into_iter().map(|t| t.name).collect();
        names.extend(metrics.config_targets());
        names.sort();
        names.dedup();
        let health = target_health::all(conn)?;
        for name in &names {
            let status = orders::status(conn, name)?;
            for state in OrderState::ALL {
                let count = status.counts.get(state.as_str()).copied().unwrap_or(0);
                let labels = [
                    ("target", name.clone()),
                    ("state", state.as_str().to_string()),
                ];
                metrics.gauge(ORDERS, &labels).set(count as f64);
            }
            let target = [("target", name.clone())];
            let oldest = status.oldest_pending_at.map_or(0.0, |at| seconds(now - at));
            metrics.gauge(OLDEST_OPEN_ORDER, &target).set(oldest);
            let quarantined = health
                .iter()
                .any(|h| &h.target == name && h.quarantined_since.is_some());
            metrics
                .gauge(TARGET_QUARANTINED, &target)
                .set(if quarantined { 1.0 } else { 0.0 });
            if let Some(at) = status.last_success_at {
                metrics.gauge(TARGET_LAST_SUCCESS, &target).set(seconds(at));
            }
        }
        let lag = orders::planner_lag(conn)?;
        metrics.gauge(PLANNER_LAG, &[]).set(lag as f64);
        Ok(())
    })
}

fn seconds(micros: i64) -> f64 {
    micros.max(0) as f64 / 1e6
}
