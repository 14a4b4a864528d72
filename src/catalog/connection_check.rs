//! Testing a target's connection with its connector's check (for SCIM, an authenticated
//! `GET Users?count=1`): how it went and how long it took. A failure is an outcome, not an
//! error of the test.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::connectors::ConnectorError;
use crate::provisioning::Target;
use crate::targets::TargetConfig;

/// How a connection test went.
pub struct ConnectionTest {
    pub latency_ms: u64,
    /// What the target told of itself (a SCIM target's capabilities), or why it failed.
    pub outcome: Result<Value, ConnectorError>,
}

pub async fn test_connection(config: &TargetConfig) -> ConnectionTest {
    let started = Instant::now();
    let outcome = match Target::from_config(config) {
        Err(e) => Err(ConnectorError::Permanent {
            message: e.to_string(),
            status: None,
        }),
        Ok(target) => {
            // The connector has its own timeout; this bounds connectors that might not.
            let limit = Duration::from_secs(config.timeout_seconds.max(1) + 5);
            match tokio::time::timeout(limit, target.connector.check()).await {
                Ok(outcome) => outcome,
                Err(_) => Err(ConnectorError::Retryable {
                    message: format!("no answer within {} s", limit.as_secs()),
                    status: None,
                    retry_after: None,
                }),
            }
        }
    };
    ConnectionTest {
        latency_ms: started.elapsed().as_millis() as u64,
        outcome,
    }
}
