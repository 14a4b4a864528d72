//! Accounts: every object last read from a target by an aggregation, and which identity it
//! stands for (its correlation situation).

use std::collections::HashMap;

use diesel::prelude::*;
use diesel::upsert::excluded;

use super::schema::accounts;
use super::{on_backend, DbConnection, Micros, StoreError, WriteTx, BIND_CHUNK};

/// Where an account stands relative to the identities.
pub mod situation {
    /// Its remote id is an identity's link (provisioned by scimgate, or linked before).
    pub const LINKED: &str = "linked";
    /// One identity matched the correlation rules; it is now linked to it.
    pub const CORRELATED: &str = "correlated";
    /// No identity matched: an orphan.
    pub const UNCORRELATED: &str = "uncorrelated";
    /// Several identities matched, or the one that matched is linked to another account:
    /// never guessed, never touched.
    pub const AMBIGUOUS: &str = "ambiguous";
    pub const ALL: [&str; 4] = [LINKED, CORRELATED, UNCORRELATED, AMBIGUOUS];
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = accounts)]
pub struct Account {
    pub target: String,
    pub resource_type: String,
    pub remote_id: String,
    /// JSON, as the target's connector reads the object.
    pub attributes: String,
    pub fingerprint: i64,
    pub identity_id: Option<String>,
    pub situation: String,
    /// JSON array of identity ids, for ambiguous accounts.
    pub candidates: Option<String>,
    /// The aggregation that last recorded a change to it.
    pub aggregation_id: i64,
    /// When that was.
    pub last_seen: Micros,
}

impl Account {
    /// The attributes as the target held them (`null` if the stored text is unreadable).
    pub fn held(&self) -> serde_json::Value {
        serde_json::from_str(&self.attributes).unwrap_or_default()
    }
}

/// What is recorded of an account, short of its attributes: enough to tell whether an
/// aggregation saw it unchanged.
#[derive(Debug, Clone, Queryable)]
pub struct Recorded {
    pub remote_id: String,
    pub fingerprint: i64,
    pub identity_id: Option<String>,
    pub situation: String,
    pub candidates: Option<String>,
}

impl Recorded {
    /// Whether the account is recorded as `seen`. An account correlated by an earlier
    /// aggregation is linked by that correlation now: still the same, so a first correlation
    /// of a large directory is not written twice.
    pub fn same_as(&self, seen: &SeenAccount) -> bool {
        let same_situation = self.situation == seen.situation
            || (self.situation == situation::CORRELATED && seen.situation == situation::LINKED);
        self.fingerprint == seen.fingerprint
            && self.identity_id == seen.identity_id
            && same_situation
            && self.candidates == seen.candidates
    }
}

/// Whether any account of the kind is recorded for the target (none before its first
/// aggregation).
pub fn any_recorded(
    conn: &mut DbConnection,
    target: &str,
    resource_type: &str,
) -> Result<bool, StoreError> {
    let found: Option<String> = accounts::table
        .filter(accounts::target.eq(target))
        .filter(accounts::resource_type.eq(resource_type))
        .select(accounts::remote_id)
        .first(conn)
        .optional()?;
    Ok(found.is_some())
}

/// How the accounts with these remote ids are recorded.
pub fn recorded(
    conn: &mut DbConnection,
    target: &str,
    resource_type: &str,
    remote_ids: &[String],
) -> Result<HashMap<String, Recorded>, StoreError> {
    let mut out = HashMap::with_capacity(remote_ids.len());
    for chunk in remote_ids.chunks(BIND_CHUNK) {
        let found: Vec<Recorded> = accounts::table
            .filter(accounts::target.eq(target))
            .filter(accounts::resource_type.eq(resource_type))
            .filter(accounts::remote_id.eq_any(chunk))
            .select((
                accounts::remote_id,
                accounts::fingerprint,
                accounts::identity_id,
                accounts::situation,
                accounts::candidates,
            ))
            .load(conn)?;
        out.extend(found.into_iter().map(|a| (a.remote_id.clone(), a)));
    }
    Ok(out)
}

/// One account as an aggregation found it.
#[derive(Debug, Clone)]
pub struct SeenAccount {
    pub remote_id: String,
    pub attributes: String,
    pub fingerprint: i64,
    pub identity_id: Option<String>,
    pub situation: &'static str,
    pub candidates: Option<String>,
}

/// Records accounts as aggregation `aggregation_id` saw them, replacing what an earlier
/// aggregation recorded for the same remote ids.
pub fn record(
    tx: &mut WriteTx<'_>,
    target: &str,
    resource_type: &str,
    aggregation_id: i64,
    seen: &[SeenAccount],
) -> Result<(), StoreError> {
    let now = tx.now();
    for chunk in seen.chunks(500) {
        let rows: Vec<_> = chunk
            .iter()
            .map(|a| {
                (
                    accounts::target.eq(target),
                    accounts::resource_type.eq(resource_type),
                    accounts::remote_id.eq(&a.remote_id),
                    accounts::attributes.eq(&a.attributes),
                    accounts::fingerprint.eq(a.fingerprint),
                    accounts::identity_id.eq(&a.identity_id),
                    accounts::situation.eq(a.situation),
                    accounts::candidates.eq(&a.candidates),
                    accounts::aggregation_id.eq(aggregation_id),
                    accounts::last_seen.eq(now),
                )
            })
            .collect();
        // Each backend's own connection: diesel's MultiBackend has no ON CONFLICT.
        on_backend!(tx.conn(), |c| diesel::insert_into(accounts::table)
            .values(rows)
            .on_conflict((
                accounts::target,
                accounts::resource_type,
                accounts::remote_id,
            ))
            .do_update()
            .set((
                accounts::attributes.eq(excluded(accounts::attributes)),
                accounts::fingerprint.eq(excluded(accounts::fingerprint)),
                accounts::identity_id.eq(excluded(accounts::identity_id)),
                accounts::situation.eq(excluded(accounts::situation)),
                accounts::candidates.eq(excluded(accounts::candidates)),
                accounts::aggregation_id.eq(excluded(accounts::aggregation_id)),
                accounts::last_seen.eq(excluded(accounts::last_seen)),
            ))
            .execute(c))?;
    }
    Ok(())
}

/// Up to `limit` remote ids of the target's accounts after `after`, in order.
pub fn remote_ids_after(
    conn: &mut DbConnection,
    target: &str,
    resource_type: &str,
    after: &str,
    limit: i64,
) -> Result<Vec<String>, StoreError> {
    Ok(accounts::table
        .filter(accounts::target.eq(target))
        .filter(accounts::resource_type.eq(resource_type))
        .filter(accounts::remote_id.gt(after))
        .order(accounts::remote_id)
        .limit(limit)
        .select(accounts::remote_id)
        .load(conn)?)
}

/// Forgets these accounts (gone from the target).
pub fn forget(
    tx: &mut WriteTx<'_>,
    target: &str,
    resource_type: &str,
    remote_ids: &[String],
) -> Result<usize, StoreError> {
    let mut forgotten = 0;
    for chunk in remote_ids.chunks(BIND_CHUNK) {
        forgotten += diesel::delete(
            accounts::table
                .filter(accounts::target.eq(target))
                .filter(accounts::resource_type.eq(resource_type))
                .filter(accounts::remote_id.eq_any(chunk)),
        )
        .execute(tx.conn())?;
    }
    Ok(forgotten)
}

/// The accounts with these remote ids.
pub fn by_remote_ids(
    conn: &mut DbConnection,
    target: &str,
    resource_type: &str,
    remote_ids: &[String],
) -> Result<HashMap<String, Account>, StoreError> {
    let mut out = HashMap::with_capacity(remote_ids.len());
    for chunk in remote_ids.chunks(BIND_CHUNK) {
        let found: Vec<Account> = accounts::table
            .filter(accounts::target.eq(target))
            .filter(accounts::resource_type.eq(resource_type))
            .filter(accounts::remote_id.eq_any(chunk))
            .select(Account::as_select())
            .load(conn)?;
        out.extend(found.into_iter().map(|a| (a.remote_id.clone(), a)));
    }
    Ok(out)
}

/// What [`page`] lists.
#[derive(Debug, Clone, Default)]
pub struct AccountFilter {
    pub resource_type: Option<String>,
    pub situation: Option<String>,
    /// Remote ids after this one (keyset paging).
    pub after: Option<String>,
    pub limit: i64,
}

/// A target's accounts in remote-id order.
pub fn page(
    conn: &mut DbConnection,
    target: &str,
    filter: &AccountFilter,
) -> Result<Vec<Account>, StoreError> {
    let mut query = accounts::table
        .filter(accounts::target.eq(target))
        .into_boxed();
    if let Some(kind) = &filter.resource_type {
        query = query.filter(accounts::resource_type.eq(kind.clone()));
    }
    if let Some(situation) = &filter.situation {
        query = query.filter(accounts::situation.eq(situation.clone()));
    }
    if let Some(after) = &filter.after {
        query = query.filter(accounts::remote_id.gt(after.clone()));
    }
    Ok(query
        .order(accounts::remote_id)
        .limit(filter.limit)
        .select(Account::as_select())
        .load(conn)?)
}

/// Accounts per (resource type, situation) on a target.
pub fn counts(
    conn: &mut DbConnection,
    target: &str,
) -> Result<HashMap<(String, String), i64>, StoreError> {
    let rows: Vec<(String, String, i64)> = accounts::table
        .filter(accounts::target.eq(target))
        .group_by((accounts::resource_type, accounts::situation))
        .select((
            accounts::resource_type,
            accounts::situation,
            diesel::dsl::count_star(),
        ))
        .load(conn)?;
    Ok(rows.into_iter().map(|(k, s, n)| ((k, s), n)).collect())
}
