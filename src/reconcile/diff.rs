//! The full sync's comparison: every identity mapped through the target's mapping against the
//! account aggregated for it, and every account no identity stands for. Only managed
//! attributes are compared (the mapping's), and only groups scimgate manages (linked ones).

use std::collections::{HashMap, HashSet};

use serde_json::{json, Value};

use super::aggregate::resource_type;
use super::error::ReconcileError;
use crate::connectors::{AttributeDrift, ObjectKind};
use crate::provisioning::group_members::group_object;
use crate::provisioning::Context;
use crate::provisioning::Target;
use crate::storage::accounts::{self, situation, Account, AccountFilter};
use crate::storage::corrections::Correction;
use crate::storage::identity_links;
use crate::storage::orders::Operation;
use crate::storage::sync_runs::NewFinding;
use crate::targets::reconcile::OrphanPolicy;

/// Identities (and accounts) compared per page.
const PAGE: i64 = 1_000;

/// One finding and the order that corrects it, if any.
#[derive(Debug, Clone)]
pub struct Planned {
    pub finding: NewFinding,
    pub correction: Option<Correction>,
}

impl Planned {
    /// Whether carrying it out deletes or disables an account (the mass-delete guard counts
    /// these).
    pub fn removes(&self) -> bool {
        matches!(self.finding.action, "delete" | "disable" | "deprovision")
    }
}

#[derive(Debug, Default)]
pub struct Plan {
    pub compared: u64,
    pub planned: Vec<Planned>,
    /// User accounts on the target (the guard's percentage is of these).
    pub population: u64,
}

/// What a finding is about.
#[derive(Clone, Copy)]
struct Subject<'a> {
    kind: ObjectKind,
    identity: Option<&'a str>,
    remote: Option<&'a str>,
}

struct Comparison<'a> {
    target: &'a Target,
    plan: Plan,
    /// The target cannot be read back (a message queue): every resource in scope is
    /// published again instead of compared.
    republish: bool,
}

impl Comparison<'_> {
    fn note(
        &mut self,
        subject: Subject<'_>,
        finding: &'static str,
        action: &'static str,
        attributes: Option<Value>,
        operation: Option<Operation>,
    ) {
        let Subject {
            kind,
            identity,
            remote,
        } = subject;
        let resource_type = resource_type(kind).to_string();
        let correction = operation.map(|operation| {
            let orphan = operation.is_for_orphan();
            Correction {
                resource_type: resource_type.clone(),
                resource_id: if orphan { remote } else { identity }
                    .unwrap_or_default()
                    .to_string(),
                operation,
                remote_id: remote.map(str::to_string),
                hold: None,
            }
        });
        self.plan.planned.push(Planned {
            finding: NewFinding {
                resource_type,
                identity_id: identity.map(str::to_string),
                remote_id: remote.map(str::to_string),
                finding,
                attributes: attributes.map(|a| a.to_string()),
                action,
                order_id: None,
            },
            correction,
        });
    }

    /// Compares one identity's desired object with its account, if it has one.
    fn object(
        &mut self,
        kind: ObjectKind,
        id: &str,
        desired: Result<Value, String>,
        account: Option<&Account>,
    ) {
        if self.republish {
            let subject = Subject {
                kind,
                identity: Some(id),
                remote: None,
            };
            self.note(
                subject,
                "republished",
                "publish",
                None,
                Some(Operation::Upsert),
            );
            return;
        }
        let remote = account.map(|a| a.remote_id.as_str());
        let Some(account) = account else {
            self.note(
                Subject {
                    kind,
                    identity: Some(id),
                    remote: None,
                },
                "missing",
                "create",
                None,
                Some(Operation::Upsert),
            );
            return;
        };
        let actual = account.held();
        let mut drift = match &desired {
            Ok(desired) => self.target.connector.differences(kind, desired, &actual),
            // A member not provisioned yet: the group is incomplete on the target.
            Err(why) => vec![AttributeDrift {
                name: "members".into(),
                expected: Value::String(why.clone()),
                actual: Value::Null,
            }],
        };
        if kind == ObjectKind::User
            && self.target.connector.is_disabled(&actual)
            && !drift.iter().any(|d| d.name == "active")
        {
            drift.push(AttributeDrift {
                name: "active".into(),
                expected: Value::Bool(true),
                actual: Value::Bool(false),
            });
        }
        if !drift.is_empty() {
            let listed = serde_json::to_value(&drift).unwrap_or(Value::Null);
            self.note(
                Subject {
                    kind,
                    identity: Some(id),
                    remote,
                },
                "differs",
                "update",
                Some(listed),
                Some(Operation::Upsert),
            );
        }
    }

    /// An account no present identity stands for: the orphan policy applies.
    fn orphan(&mut self, account: &Account, policy: OrphanPolicy) {
        let (action, operation) = match policy {
            OrphanPolicy::Disable if !self.target.connector.is_disabled(&account.held()) => {
                ("disable", Some(Operation::DisableOrphan))
            }
            OrphanPolicy::Delete => ("delete", Some(Operation::DeleteOrphan)),
            // Ignored, or disabled already.
            OrphanPolicy::Ignore | OrphanPolicy::Disable => ("none", None),
        };
        let subject = Subject {
            kind: ObjectKind::User,
            identity: account.identity_id.as_deref(),
            remote: Some(&account.remote_id),
        };
        self.note(subject, "orphan", action, None, operation);
    }
}

/// Computes the corrective plan for the target from its last aggregation.
pub fn plan(directory: &Context, target: &Target) -> Result<Plan, ReconcileError> {
    let config = &target.config;
    let name = config.name.as_str();
    let policy = config
        .reconcile
        .orphan_policy()
        .map_err(ReconcileError::Config)?;
    let db = directory.db();
    let user_links = db.read(|c| identity_links::all_of(c, name, "User"))?;
    let group_links = db.read(|c| identity_links::all_of(c, name, "Group"))?;
    let mut cmp = Comparison {
        target,
        plan: Plan::default(),
        republish: target.publisher.is_some(),
    };
    // The users in the target's scope (`None`: all of them).
    let scope = match &target.users_filter {
        Some(filter) => Some(directory.user_ids_matching(filter)?),
        None => None,
    };
    if config.users {
        users(directory, &mut cmp, &user_links, scope.as_ref(), policy)?;
    }
    if config.groups {
        groups(
            directory,
            &mut cmp,
            &user_links,
            &group_links,
            scope.as_ref(),
        )?;
    }
    Ok(cmp.plan)
}

fn users(
    directory: &Context,
    cmp: &mut Comparison<'_>,
    links: &HashMap<String, String>,
    scope: Option<&HashSet<String>>,
    policy: OrphanPolicy,
) -> Result<(), ReconcileError> {
    let target = cmp.target;
    let name = target.config.name.as_str();
    let db = directory.db();
    let secrets = target.mapping.secret_targets();
    let projection = target.mapping.user_projection();
    let mut present: HashSet<String> = HashSet::new();
    let mut after = String::new();
    loop {
        let page = directory.users_after(&after, PAGE, &projection)?;
        let Some((last, _)) = page.last() else { break };
        after = last.clone();
        let remote_ids: Vec<String> = page
            .iter()
            .filter_map(|(id, _)| links.get(id).cloned())
            .collect();
        let held = db.read(|c| accounts::by_remote_ids(c, name, "User", &remote_ids))?;
        for (id, user) in &page {
            present.insert(id.clone());
            cmp.plan.compared += 1;
            let account = links.get(id).and_then(|r| held.get(r));
            let in_scope = scope.is_none_or(|s| s.contains(id));
            if in_scope {
                let mut desired = target.mapping.user(user, id);
                if let Value::Object(fields) = &mut desired {
                    for secret in secrets {
                        fields.remove(secret);
                    }
                }
                cmp.object(ObjectKind::User, id, Ok(desired), account);
            } else if let Some(account) = account {
                let actual = account.held();
                let deactivates =
                    target.config.deprovision == crate::targets::Deprovision::Deactivate;
                if !(deactivates && target.connector.is_disabled(&actual)) {
                    let remote = Some(account.remote_id.as_str());
                    cmp.note(
                        Subject {
                            kind: ObjectKind::User,
                            identity: Some(id),
                            remote,
                        },
                        "out_of_scope",
                        "deprovision",
                        None,
                        Some(Operation::Upsert),
                    );
                }
            } else if cmp.republish && links.contains_key(id) {
                // Published once, out of scope now: the order publishes its deprovisioning.
                let subject = Subject {
                    kind: ObjectKind::User,
                    identity: Some(id),
                    remote: None,
                };
                let upsert = Some(Operation::Upsert);
                cmp.note(subject, "out_of_scope", "deprovision", None, upsert);
            }
        }
    }
    cmp.plan.population = db
        .read(|c| accounts::counts(c, name))?
        .iter()
        .filter(|((kind, _), _)| kind == "User")
        .map(|(_, n)| *n as u64)
        .sum();
    // Accounts no present identity stands for: orphans, ambiguous ones, and those still
    // linked to a user deleted here.
    let mut filter = AccountFilter {
        resource_type: Some("User".into()),
        limit: PAGE,
        ..AccountFilter::default()
    };
    loop {
        let page = db.read(|c| accounts::page(c, name, &filter))?;
        let Some(last) = page.last() else { break };
        filter.after = Some(last.remote_id.clone());
        for account in &page {
            match account.situation.as_str() {
                situation::AMBIGUOUS => {
                    let candidates = account
                        .candidates
                        .as_deref()
                        .and_then(|c| serde_json::from_str::<Value>(c).ok())
                        .map(|c| json!([{"name": "candidates", "expected": Value::Null, "actual": c}]));
                    cmp.note(
                        Subject {
                            kind: ObjectKind::User,
                            identity: None,
                            remote: Some(&account.remote_id),
                        },
                        "ambiguous",
                        "none",
                        candidates,
                        None,
                    );
                }
                situation::UNCORRELATED => cmp.orphan(account, policy),
                _ if account
                    .identity_id
                    .as_ref()
                    .is_some_and(|id| !present.contains(id)) =>
                {
                    cmp.orphan(account, policy)
                }
                _ => {}
            }
        }
    }
    Ok(())
}

fn groups(
    directory: &Context,
    cmp: &mut Comparison<'_>,
    user_links: &HashMap<String, String>,
    group_links: &HashMap<String, String>,
    scope: Option<&HashSet<String>>,
) -> Result<(), ReconcileError> {
    let name = cmp.target.config.name.clone();
    let db = directory.db();
    let mut after = String::new();
    loop {
        let page = directory.groups_after(&after, PAGE)?;
        let Some((last, _)) = page.last() else { break };
        after = last.clone();
        let remote_ids: Vec<String> = page
            .iter()
            .filter_map(|(id, _)| group_links.get(id).cloned())
            .collect();
        let held = db.read(|c| accounts::by_remote_ids(c, &name, "Group", &remote_ids))?;
        for (id, group) in &page {
            cmp.plan.compared += 1;
            let (desired, missing) = group_object(group, id, |kind, member| {
                if kind == "Group" {
                    group_links.get(member).cloned()
                } else {
                    user_links.get(member).cloned()
                }
            });
            // Users out of the target's scope are left out of its groups, as delivery does.
            let awaited = missing
                .iter()
                .find(|(kind, member)| kind != "User" || scope.is_none_or(|s| s.contains(member)));
            let desired = match awaited {
                None => Ok(desired),
                Some((kind, member)) => {
                    Err(format!("member {kind} {member} is not provisioned yet"))
                }
            };
            let account = group_links.get(id).and_then(|r| held.get(r));
            cmp.object(ObjectKind::Group, id, desired, account);
        }
    }
    Ok(())
}
