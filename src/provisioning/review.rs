//! Provisioning review: a target's rules (`[targets.review]`) hold matching orders in
//! `awaiting_approval` until an operator approves or declines them.
//!
//! The rules are applied at delivery, not at planning: only then does the worker know the
//! resource as it is (a user leaving `users_filter` scope is an ordinary update in the change
//! log, yet deprovisions on the target), whether there is anything on the target to remove
//! (a link), and the same decision serves change-log, full-sync and retried orders alike. An
//! order an operator approved is not held again.

use serde_json::Value;

use super::Context;
use crate::connectors::ConnectorError;
use crate::scim::filter::Filter;
use crate::storage::orders::Order;

use crate::targets::review::ReviewRules;

/// What delivery knows about an order when the rules are applied.
pub struct Facts<'a> {
    pub order: &'a Order,
    /// The resource now; `None` once deleted.
    pub state: Option<&'a Value>,
    /// The order would delete or deactivate something on the target.
    pub deprovisions: bool,
}

/// Why the order must wait for approval, naming the rule; `None` when it may go out.
pub async fn held_reason(
    directory: &Context,
    target: &str,
    rules: &ReviewRules,
    filter: Option<&Filter>,
    facts: Facts<'_>,
) -> Result<Option<String>, ConnectorError> {
    let order = facts.order;
    if order.approved || rules.is_default() {
        return Ok(None);
    }
    if rules.all {
        return Ok(Some(format!(
            "review rule all: every order of target {target} is reviewed"
        )));
    }
    if rules.deprovisioning && facts.deprovisions {
        return Ok(Some(format!(
            "review rule deprovisioning: this order deletes or deactivates an account on {target}"
        )));
    }
    if order.resource_type == "Group" {
        let name = facts
            .state
            .and_then(|g| g["displayName"].as_str())
            .unwrap_or_default();
        if let Some(sensitive) = rules.groups.iter().find(|g| g.eq_ignore_ascii_case(name)) {
            return Ok(Some(format!(
                "review rule groups: {sensitive:?} is a sensitive group on {target}"
            )));
        }
    }
    if let (Some(parsed), Some(text), Some(_), "User") = (
        filter,
        &rules.filter,
        facts.state,
        order.resource_type.as_str(),
    ) {
        let (directory, id, parsed) =
            (directory.clone(), order.resource_id.clone(), parsed.clone());
        let matches = tokio::task::spawn_blocking(move || directory.user_matches(&id, &parsed))
            .await
            .map_err(|e| retryable(e.to_string()))?
            .map_err(|e| retryable(e.to_string()))?;
        if matches {
            return Ok(Some(format!(
                "review rule filter: the user matches {text} on {target}"
            )));
        }
    }
    Ok(None)
}

fn retryable(message: String) -> ConnectorError {
    ConnectorError::Retryable {
        message,
        status: None,
        retry_after: None,
    }
}
