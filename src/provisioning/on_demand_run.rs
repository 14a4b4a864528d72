//! Provision on demand as a service (the admin API's `POST /admin/provision-on-demand` and the
//! console's button): checks the target and the user, records the run's order under its own
//! lease, runs it now and answers with the trace and the order as it ended.

use serde_json::Value;

use super::operator::{self, Started};
use super::{on_demand, Context, Target};
use crate::identity::IdentityError;
use crate::scim::projection::Projection;
use crate::storage::orders::Order;
use crate::targets::TargetConfig;

/// How long the run holds its order; past it (the process died), the workers take it over.
const LEASE_MICROS: i64 = 10 * 60 * 1_000_000;

/// Why a run did not happen.
#[derive(Debug, thiserror::Error)]
pub enum OnDemandError {
    #[error("target {0:?} is disabled")]
    Disabled(String),
    #[error("target {0:?} does not take users")]
    NoUsers(String),
    #[error("the target cannot be used: {0}")]
    Unusable(String),
    #[error("no user {0:?}")]
    NoUser(String),
    #[error("user {user:?} has open orders on {target:?}: {open}; they go out first, in order")]
    Busy {
        user: String,
        target: String,
        open: String,
    },
    #[error("{0}")]
    Failed(String),
}

/// Runs `user_id`'s plan on the target now; the trace, step by step, and the order it is
/// recorded as.
pub async fn provision_user(
    directory: &Context,
    config: &TargetConfig,
    user_id: &str,
) -> Result<(Order, Vec<Value>), OnDemandError> {
    if !config.enabled {
        return Err(OnDemandError::Disabled(config.name.clone()));
    }
    if !config.users {
        return Err(OnDemandError::NoUsers(config.name.clone()));
    }
    let target = Target::from_config(config).map_err(|e| OnDemandError::Unusable(e.to_string()))?;
    let owner = format!("on-demand:{}", uuid::Uuid::new_v4());
    let (context, name, user, lease_owner) = (
        directory.clone(),
        config.name.clone(),
        user_id.to_string(),
        owner.clone(),
    );
    let started = tokio::task::spawn_blocking(move || {
        match context.get_user(&user, &Projection::default()) {
            Ok(_) => {}
            Err(IdentityError::NotFound(_)) => return Err(OnDemandError::NoUser(user)),
            Err(e) => return Err(OnDemandError::Failed(e.to_string())),
        }
        operator::start_on_demand(context.db(), &name, &user, &lease_owner, LEASE_MICROS)
            .map_err(|e| OnDemandError::Failed(e.to_string()))
    })
    .await
    .map_err(|e| OnDemandError::Failed(e.to_string()))??;
    let order = match started {
        Started::Order(order) => *order,
        Started::Busy(open) => {
            let listed: Vec<String> = open
                .iter()
                .map(|o| format!("{} ({})", o.id, o.state.as_str()))
                .collect();
            return Err(OnDemandError::Busy {
                user: user_id.to_string(),
                target: config.name.clone(),
                open: listed.join(", "),
            });
        }
    };
    let id = order.id;
    let trace = on_demand::run(directory, target, order, &owner).await;
    let db = directory.db().clone();
    let order = tokio::task::spawn_blocking(move || operator::order(&db, id))
        .await
        .map_err(|e| OnDemandError::Failed(e.to_string()))?
        .map_err(|e| OnDemandError::Failed(e.to_string()))?
        .ok_or_else(|| OnDemandError::Failed(format!("order {id} vanished")))?;
    Ok((order, trace))
}
