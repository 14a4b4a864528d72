//! Aggregation: every account and group on a target, read page by page into the accounts
//! table and correlated to identities as it streams, so a large directory never sits in
//! memory whole.

use std::collections::HashSet;

use serde::Serialize;
use serde_json::Value;
use tokio::sync::mpsc;

use super::correlation::{Correlator, IdentityIndex, Rule};
use super::error::{blocking, ReconcileError};
use crate::connectors::{ObjectKind, RemoteObject};
use crate::provisioning::Context;
use crate::provisioning::Target;
use crate::storage::accounts::{self, situation, SeenAccount};
use crate::storage::identity_links;
use crate::targets::TargetConfig;

/// Identities read per page while building the correlation index.
const IDENTITY_PAGE: i64 = 1_000;
/// Links made by correlation written together (see `aggregate_kind`).
const LINKS_PER_WRITE: usize = 25_000;
/// Pages read ahead of correlation (a page is up to a few thousand objects).
const READ_AHEAD_PAGES: usize = 4;

/// What one aggregation found for one kind of object.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct KindReport {
    pub read: u64,
    pub linked: u64,
    pub correlated: u64,
    pub uncorrelated: u64,
    pub ambiguous: u64,
    /// Accounts a previous aggregation saw that are gone from the target.
    pub forgotten: u64,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct AggregationReport {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub users: Option<KindReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<KindReport>,
}

pub fn resource_type(kind: ObjectKind) -> &'static str {
    match kind {
        ObjectKind::User => "User",
        ObjectKind::Group => "Group",
    }
}

/// The target's user correlation rules, or the default: `userName` against the attribute
/// the target correlates on.
pub fn user_rules(config: &TargetConfig) -> Result<Vec<Rule>, ReconcileError> {
    let configured = &config.reconcile.correlation;
    if !configured.is_empty() {
        return configured
            .iter()
            .map(|r| Rule::parse(r))
            .collect::<Result<_, _>>()
            .map_err(|e| ReconcileError::Config(format!("target {:?}: {e}", config.name)));
    }
    let account = match (config.kind.as_str(), &config.ldap) {
        ("ldap", Some(ldap)) => ldap.correlation(),
        _ => "userName".to_string(),
    };
    Rule::parse(&format!("userName = {account}"))
        .map(|r| vec![r])
        .map_err(ReconcileError::Config)
}

/// Groups correlate by name.
pub fn group_rules(config: &TargetConfig) -> Vec<Rule> {
    let account = if config.kind == crate::targets::TargetKind::Ldap {
        "cn"
    } else {
        "displayName"
    };
    Rule::parse(&format!("displayName = {account}"))
        .map(|r| vec![r])
        .unwrap_or_default()
}

/// Aggregates every kind the target provisions, as part of run `run_id`.
pub async fn aggregate(
    directory: &Context,
    target: &Target,
    run_id: i64,
) -> Result<AggregationReport, ReconcileError> {
    let mut report = AggregationReport::default();
    if target.config.users {
        let rules = user_rules(&target.config)?;
        report.users =
            Some(aggregate_kind(directory, target, ObjectKind::User, rules, run_id).await?);
    }
    if target.config.groups {
        let rules = group_rules(&target.config);
        report.groups =
            Some(aggregate_kind(directory, target, ObjectKind::Group, rules, run_id).await?);
    }
    Ok(report)
}

/// What an aggregation knows of the target before it reads anything.
struct Known {
    /// A correlator knowing the target's links.
    correlator: Correlator,
    /// Some identities of the kind have no link, so accounts may need correlating.
    unlinked_identities: bool,
    /// No account of the kind is recorded yet.
    first_aggregation: bool,
}

async fn known(
    directory: &Context,
    target: &str,
    kind: ObjectKind,
    rules: Vec<Rule>,
) -> Result<Known, ReconcileError> {
    let (directory, target) = (directory.clone(), target.to_string());
    blocking(move || {
        let (links, recorded) = directory.db().read(|c| {
            let links = identity_links::all_of(c, &target, resource_type(kind))?;
            let recorded = accounts::any_recorded(c, &target, resource_type(kind))?;
            Ok::<_, crate::storage::StoreError>((links, recorded))
        })?;
        let identities = match kind {
            ObjectKind::User => directory.user_count()?,
            ObjectKind::Group => directory.group_count()?,
        };
        Ok(Known {
            unlinked_identities: (links.len() as u64) < identities,
            correlator: Correlator::new(rules, &links),
            first_aggregation: !recorded,
        })
    })
    .await
}

/// Every identity of the kind indexed by the rules' values.
fn index_identities(
    directory: &Context,
    kind: ObjectKind,
    rules: Vec<Rule>,
) -> Result<IdentityIndex, ReconcileError> {
    let names_only = kind == ObjectKind::User && rules.iter().all(Rule::reads_user_name_columns);
    let mut index = IdentityIndex::new(rules);
    if names_only {
        directory.each_user_name(|id, user_name, external_id| {
            index.add_user_names(id, user_name, external_id)
        })?;
        return Ok(index);
    }
    let mut after = String::new();
    loop {
        let page = match kind {
            ObjectKind::User => directory.stored_users_after(&after, IDENTITY_PAGE)?,
            ObjectKind::Group => directory.groups_after(&after, IDENTITY_PAGE)?,
        };
        let Some((last, _)) = page.last() else {
            return Ok(index);
        };
        after = last.clone();
        for (id, identity) in &page {
            index.add(id, identity);
        }
    }
}

/// The identity index, read in the background at once when some identities have no link
/// (a first aggregation correlates every account, and the index is then ready when the
/// target's first pages arrive), or else only once an account turns up that no link
/// explains, so a target whose accounts are all linked never pays for it.
struct PendingIndex {
    directory: Context,
    kind: ObjectKind,
    rules: Vec<Rule>,
    early: Option<tokio::task::JoinHandle<Result<IdentityIndex, ReconcileError>>>,
}

impl PendingIndex {
    fn new(directory: &Context, kind: ObjectKind, rules: Vec<Rule>, now: bool) -> Self {
        let early = now.then(|| {
            let (directory, rules) = (directory.clone(), rules.clone());
            tokio::task::spawn_blocking(move || index_identities(&directory, kind, rules))
        });
        PendingIndex {
            directory: directory.clone(),
            kind,
            rules,
            early,
        }
    }

    async fn ready(self) -> Result<IdentityIndex, ReconcileError> {
        match self.early {
            Some(task) => task
                .await
                .map_err(|e| ReconcileError::Task(e.to_string()))?,
            None => {
                let PendingIndex {
                    directory,
                    kind,
                    rules,
                    ..
                } = self;
                blocking(move || index_identities(&directory, kind, rules)).await
            }
        }
    }
}

async fn aggregate_kind(
    directory: &Context,
    target: &Target,
    kind: ObjectKind,
    rules: Vec<Rule>,
    run_id: i64,
) -> Result<KindReport, ReconcileError> {
    let name = target.config.name.clone();
    // The directory is read while the identities are indexed; a bounded number of pages
    // waits meanwhile, so memory stays bounded however large the target.
    let (sender, mut receiver) = mpsc::channel::<Vec<RemoteObject>>(READ_AHEAD_PAGES);
    let connector = target.connector.clone();
    let wanted: Vec<String> = match kind {
        ObjectKind::User => {
            let mut names = target.mapping.compared_attributes();
            if !names.is_empty() {
                names.extend(rules.iter().map(|r| r.account_attribute().to_string()));
            }
            names
        }
        ObjectKind::Group => Vec::new(),
    };
    let reading = async move {
        let sender = sender;
        connector.aggregate(kind, &wanted, &sender).await
    };
    let db = directory.db().clone();
    let writing = async {
        let Known {
            mut correlator,
            unlinked_identities,
            first_aggregation,
        } = known(directory, &name, kind, rules.clone()).await?;
        let mut index = Some(PendingIndex::new(
            directory,
            kind,
            rules,
            unlinked_identities,
        ));
        let mut report = KindReport::default();
        // Only ids: enough to tell, at the end, which recorded accounts are gone.
        let mut present: HashSet<String> = HashSet::new();
        // One page is written while the next is correlated.
        let mut in_flight: Option<tokio::task::JoinHandle<Result<(), ReconcileError>>> = None;
        let mut unwritten_links: Vec<(String, String)> = Vec::new();
        while let Some(page) = receiver.recv().await {
            if index.is_some() && page.iter().any(|o| !correlator.is_linked(&o.remote_id)) {
                if let Some(pending) = index.take() {
                    correlator.use_index(pending.ready().await?);
                }
            }
            let (seen, new_links) = place(&mut correlator, page, &mut report);
            unwritten_links.extend(new_links);
            // Links land at random places in their index: written a few large batches at a
            // time, each index page is written once per batch rather than once per page.
            let new_links = if unwritten_links.len() >= LINKS_PER_WRITE {
                in_key_order(std::mem::take(&mut unwritten_links))
            } else {
                Vec::new()
            };
            if let Some(previous) = in_flight.take() {
                previous
                    .await
                    .map_err(|e| ReconcileError::Task(e.to_string()))??;
            }
            present.extend(seen.iter().map(|a| a.remote_id.clone()));
            let (db, name) = (db.clone(), name.clone());
            in_flight = Some(tokio::task::spawn_blocking(move || {
                record(
                    &db,
                    &name,
                    kind,
                    run_id,
                    seen,
                    &new_links,
                    first_aggregation,
                )
            }));
        }
        if let Some(last) = in_flight {
            last.await
                .map_err(|e| ReconcileError::Task(e.to_string()))??;
        }
        if !unwritten_links.is_empty() {
            let (db, name) = (db.clone(), name.clone());
            let unwritten_links = in_key_order(unwritten_links);
            blocking(move || {
                Ok(db.write(|tx| {
                    identity_links::add_missing(tx, &name, resource_type(kind), &unwritten_links)
                })?)
            })
            .await?;
        }
        Ok::<_, ReconcileError>((report, present, first_aggregation))
    };
    let (read, written) = tokio::join!(reading, writing);
    let (mut report, present, first_aggregation) = written?;
    // A read that failed part way must not make the unread accounts look gone.
    read?;
    // Before a first aggregation nothing was recorded, so nothing can be gone.
    if !first_aggregation {
        let (db, name) = (directory.db().clone(), name.clone());
        report.forgotten = blocking(move || forget_unseen(&db, &name, kind, &present)).await?;
    }
    Ok(report)
}

/// Links sorted by identity id, the key of their index: each index page is then written
/// once, in order, instead of at random.
fn in_key_order(mut links: Vec<(String, String)>) -> Vec<(String, String)> {
    links.sort_unstable();
    links
}

/// Records a page: only the accounts that are new or changed since the last aggregation are
/// written (a steady target costs reads, not writes), with the links correlation made. On a
/// target's first aggregation nothing is recorded yet, and nothing is looked up.
fn record(
    db: &crate::storage::Db,
    target: &str,
    kind: ObjectKind,
    run_id: i64,
    seen: Vec<SeenAccount>,
    new_links: &[(String, String)],
    first_aggregation: bool,
) -> Result<(), ReconcileError> {
    let known = if first_aggregation {
        Default::default()
    } else {
        let ids: Vec<String> = seen.iter().map(|a| a.remote_id.clone()).collect();
        db.read(|c| accounts::recorded(c, target, resource_type(kind), &ids))?
    };
    let changed: Vec<SeenAccount> = seen
        .into_iter()
        .filter(|a| !known.get(&a.remote_id).is_some_and(|k| k.same_as(a)))
        .collect();
    if changed.is_empty() && new_links.is_empty() {
        return Ok(());
    }
    Ok(db.write(|tx| {
        accounts::record(tx, target, resource_type(kind), run_id, &changed)?;
        identity_links::add_missing(tx, target, resource_type(kind), new_links)
    })?)
}

/// Forgets the recorded accounts this aggregation did not see; returns how many.
fn forget_unseen(
    db: &crate::storage::Db,
    target: &str,
    kind: ObjectKind,
    present: &HashSet<String>,
) -> Result<u64, ReconcileError> {
    let mut gone = Vec::new();
    let mut after = String::new();
    loop {
        let page =
            db.read(|c| accounts::remote_ids_after(c, target, resource_type(kind), &after, 5_000))?;
        let Some(last) = page.last() else { break };
        after = last.clone();
        gone.extend(page.into_iter().filter(|id| !present.contains(id)));
    }
    if gone.is_empty() {
        return Ok(0);
    }
    Ok(db.write(|tx| accounts::forget(tx, target, resource_type(kind), &gone))? as u64)
}

/// Correlates one page: the rows to record and the links correlation made.
fn place(
    correlator: &mut Correlator,
    page: Vec<RemoteObject>,
    report: &mut KindReport,
) -> (Vec<SeenAccount>, Vec<(String, String)>) {
    let mut seen = Vec::with_capacity(page.len());
    let mut new_links = Vec::new();
    for object in page {
        let placed = correlator.place(&object.remote_id, &object.attributes);
        report.read += 1;
        match placed.situation {
            situation::LINKED => report.linked += 1,
            situation::CORRELATED => {
                report.correlated += 1;
                if let Some(id) = &placed.identity_id {
                    new_links.push((id.clone(), object.remote_id.clone()));
                }
            }
            situation::AMBIGUOUS => report.ambiguous += 1,
            _ => report.uncorrelated += 1,
        }
        let attributes = object.attributes.to_string();
        seen.push(SeenAccount {
            remote_id: object.remote_id,
            fingerprint: fingerprint(&attributes),
            attributes,
            identity_id: placed.identity_id,
            situation: placed.situation,
            candidates: (!placed.candidates.is_empty())
                .then(|| Value::from(placed.candidates).to_string()),
        });
    }
    (seen, new_links)
}

/// The account's attributes hashed, the same in every process and release.
fn fingerprint(attributes: &str) -> i64 {
    crate::storage::fnv1a(attributes.bytes())
}

/// Runs aggregation `id` (a run started with kind `aggregate`) on its own and records how it
/// ended.
pub async fn run(
    directory: &Context,
    target: &Target,
    id: i64,
) -> Result<AggregationReport, ReconcileError> {
    let result = aggregate(directory, target, id).await;
    let (summary, error) = match &result {
        Ok(report) => (serde_json::to_value(report).unwrap_or_default(), None),
        Err(e) => (Value::Object(Default::default()), Some(e.to_string())),
    };
    let db = directory.db().clone();
    blocking(move || {
        db.write(|tx| crate::storage::sync_runs::finish(tx, id, &summary, error.as_deref()))
            .map_err(ReconcileError::from)
    })
    .await?;
    result
}
