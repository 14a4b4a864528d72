//! What delivering an order does on its target (create, update, deactivate, delete or
//! nothing), decided from facts alone. The connector delivery and manual targets' work items
//! both carry out this decision.

use crate::connectors::ObjectKind;
use crate::storage::orders::Operation;

/// What an order comes to on its target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Not provisioned there, and not (or no longer) to be: nothing to do.
    Nothing,
    /// Provision it: correlate with an existing account first, then create.
    Create,
    /// Bring the linked account in line.
    Update {
        remote: String,
    },
    /// Disable the account, keeping it.
    Deactivate {
        remote: String,
    },
    Delete {
        remote: String,
    },
}

impl Action {
    /// Whether it deletes or deactivates something on the target (review rules hold those).
    pub fn deprovisions(&self) -> bool {
        matches!(self, Action::Deactivate { .. } | Action::Delete { .. })
    }

    /// The action in a word, as operators read it.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Nothing => "none",
            Action::Create => "create",
            Action::Update { .. } => "update",
            Action::Deactivate { .. } => "deactivate",
            Action::Delete { .. } => "delete",
        }
    }

    /// The account it acts on, when there is one.
    pub fn remote(&self) -> Option<&str> {
        match self {
            Action::Nothing | Action::Create => None,
            Action::Update { remote }
            | Action::Deactivate { remote }
            | Action::Delete { remote } => Some(remote),
        }
    }
}

/// What the decision starts from.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    pub operation: Operation,
    pub kind: ObjectKind,
    /// The order's resource id: for an orphan account's order, its remote id.
    pub resource_id: &'a str,
    /// The resource exists and is in the target's scope.
    pub wanted: bool,
    /// The account it is linked to there.
    pub link: Option<&'a str>,
    /// The target deactivates users leaving its scope instead of deleting them.
    pub deactivates: bool,
}

pub fn decide(facts: Facts<'_>) -> Action {
    match facts.operation {
        Operation::DeleteOrphan => {
            return Action::Delete {
                remote: facts.resource_id.to_string(),
            }
        }
        Operation::DisableOrphan => {
            return Action::Deactivate {
                remote: facts.resource_id.to_string(),
            }
        }
        Operation::Upsert | Operation::Delete => {}
    }
    let Some(remote) = facts.link.map(str::to_string) else {
        return if facts.wanted {
            Action::Create
        } else {
            Action::Nothing
        };
    };
    if facts.wanted {
        return Action::Update { remote };
    }
    // A deleted user's account goes whatever the policy; one leaving scope may stay, disabled.
    let keeps_account =
        facts.kind == ObjectKind::User && facts.deactivates && facts.operation != Operation::Delete;
    if keeps_account {
        Action::Deactivate { remote }
    } else {
        Action::Delete { remote }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(operation: Operation, wanted: bool, link: Option<&str>) -> Facts<'_> {
        Facts {
            operation,
            kind: ObjectKind::User,
            resource_id: "u1",
            wanted,
            link,
            deactivates: false,
        }
    }

    #[test]
    fn wanted_resources_are_created_or_updated() {
        assert_eq!(decide(facts(Operation::Upsert, true, None)), Action::Create);
        assert_eq!(
            decide(facts(Operation::Upsert, true, Some("r"))),
            Action::Update { remote: "r".into() }
        );
    }

    #[test]
    fn unwanted_resources_are_deprovisioned_only_where_provisioned() {
        assert_eq!(
            decide(facts(Operation::Upsert, false, None)),
            Action::Nothing
        );
        assert_eq!(
            decide(facts(Operation::Delete, false, None)),
            Action::Nothing
        );
        let out_of_scope = decide(facts(Operation::Upsert, false, Some("r")));
        assert_eq!(out_of_scope, Action::Delete { remote: "r".into() });
        assert!(out_of_scope.deprovisions());
    }

    #[test]
    fn deactivating_targets_keep_accounts_leaving_scope_but_not_deleted_users() {
        let mut leaving = facts(Operation::Upsert, false, Some("r"));
        leaving.deactivates = true;
        assert_eq!(decide(leaving), Action::Deactivate { remote: "r".into() });
        let mut deleted = facts(Operation::Delete, false, Some("r"));
        deleted.deactivates = true;
        assert_eq!(decide(deleted), Action::Delete { remote: "r".into() });
        let mut group = leaving;
        group.kind = ObjectKind::Group;
        assert_eq!(decide(group), Action::Delete { remote: "r".into() });
    }

    #[test]
    fn orphan_accounts_are_acted_on_by_their_remote_id() {
        let orphan = facts(Operation::DisableOrphan, false, None);
        assert_eq!(
            decide(orphan),
            Action::Deactivate {
                remote: "u1".into()
            }
        );
        assert_eq!(
            decide(facts(Operation::DeleteOrphan, true, Some("x"))),
            Action::Delete {
                remote: "u1".into()
            }
        );
        assert_eq!(Action::Create.name(), "create");
        assert_eq!(Action::Nothing.remote(), None);
    }
}
