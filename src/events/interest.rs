//! Which events a subscription takes: event-type patterns, targets and resource types.

use serde_json::Value;

use crate::storage::events::{EventType, StoredEvent};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interest {
    types: Vec<String>,
    targets: Option<Vec<String>>,
    resource_types: Option<Vec<String>>,
}

/// An event-type pattern that names no event type.
#[derive(Debug, Clone, thiserror::Error)]
#[error("event type {0:?} matches no event type (known: {1})")]
pub struct UnknownType(pub String, pub String);

impl Interest {
    /// Patterns are an event type, `prefix.*` or `*`; none means every type.
    pub fn new(
        types: &[String],
        targets: Option<Vec<String>>,
        resource_types: Option<Vec<String>>,
    ) -> Result<Interest, UnknownType> {
        for pattern in types {
            if !EventType::ALL.iter().any(|t| matches(pattern, t.as_str())) {
                let known: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
                return Err(UnknownType(pattern.clone(), known.join(", ")));
            }
        }
        let types = if types.is_empty() {
            vec!["*".to_string()]
        } else {
            types.to_vec()
        };
        Ok(Interest {
            types,
            targets,
            resource_types,
        })
    }

    pub fn types(&self) -> &[String] {
        &self.types
    }

    pub fn targets(&self) -> Option<&[String]> {
        self.targets.as_deref()
    }

    pub fn resource_types(&self) -> Option<&[String]> {
        self.resource_types.as_deref()
    }

    /// Whether the event goes to the subscription. Test events go only where they are sent.
    pub fn takes(&self, event: &StoredEvent) -> bool {
        if event.event_type == EventType::Test.as_str() {
            return false;
        }
        if !self.types.iter().any(|p| matches(p, &event.event_type)) {
            return false;
        }
        if let Some(targets) = &self.targets {
            match &event.target {
                Some(target) if targets.iter().any(|t| t == target) => {}
                _ => return false,
            }
        }
        if let Some(kinds) = &self.resource_types {
            // An order's or work item's resource type is that of the identity it is about.
            let about = serde_json::from_str::<Value>(&event.data)
                .ok()
                .and_then(|d| d["resourceType"].as_str().map(str::to_string));
            let kind = about.as_deref().unwrap_or(&event.resource_type);
            if !kinds.iter().any(|k| k.eq_ignore_ascii_case(kind)) {
                return false;
            }
        }
        true
    }
}

/// `*` matches everything; `prefix.*` every type under `prefix.`; anything else itself.
fn matches(pattern: &str, event_type: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some("") => true,
        Some(prefix) if prefix.ends_with('.') => event_type.starts_with(prefix),
        _ => pattern == event_type,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(event_type: &str, target: Option<&str>, data: &str) -> StoredEvent {
        StoredEvent {
            seq: 1,
            id: "evt_1".into(),
            event_type: event_type.into(),
            resource_type: "Order".into(),
            resource_id: "1".into(),
            resource_seq: 1,
            target: target.map(str::to_string),
            actor: "scimgate".into(),
            occurred_at: 0,
            data: data.into(),
        }
    }

    #[test]
    fn wildcards_targets_and_resource_types() {
        let orders = Interest::new(&["order.*".into()], Some(vec!["ldap".into()]), None).unwrap();
        assert!(orders.takes(&event("order.state_changed", Some("ldap"), "{}")));
        assert!(!orders.takes(&event("order.state_changed", Some("app"), "{}")));
        assert!(!orders.takes(&event("user.created", Some("ldap"), "{}")));
        let groups = Interest::new(&[], None, Some(vec!["Group".into()])).unwrap();
        assert!(groups.takes(&event(
            "order.state_changed",
            None,
            r#"{"resourceType":"Group"}"#
        )));
        assert!(!groups.takes(&event(
            "order.state_changed",
            None,
            r#"{"resourceType":"User"}"#
        )));
        assert!(!groups.takes(&event("test", None, "{}")));
        assert!(Interest::new(&["orders.*".into()], None, None).is_err());
        assert!(Interest::new(&["user.created".into(), "*".into()], None, None).is_ok());
    }
}
