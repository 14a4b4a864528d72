//! Targets created through the admin API: their settings as JSON text, a version per row, and
//! the generation counter that every instance polls to notice creations, updates and deletions.
//! Targets declared in the config file are not stored here.

use diesel::prelude::*;

use super::secrets::SecretBox;

use super::schema::{target_health, targets, targets_generation};
use super::{orders, DbConnection, Micros, StoreError, WriteTx};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = targets)]
pub struct StoredTarget {
    pub name: String,
    /// The target's `TargetConfig` as JSON, secrets included.
    pub config: String,
    /// The targets generation at this row's last change.
    pub version: i64,
    pub created_at: Micros,
    pub updated_at: Micros,
}

/// The targets generation: it moves with every create, update and delete.
pub fn generation(conn: &mut DbConnection) -> Result<i64, StoreError> {
    Ok(targets_generation::table
        .find(1)
        .select(targets_generation::value)
        .first(conn)?)
}

/// Moves the generation on; on PostgreSQL the row lock also makes concurrent target writers
/// take turns, so a name check after it sees every committed target.
fn bump(tx: &mut WriteTx<'_>) -> Result<i64, StoreError> {
    Ok(diesel::update(targets_generation::table.find(1))
        .set(targets_generation::value.eq(targets_generation::value + 1))
        .returning(targets_generation::value)
        .get_result(tx.conn())?)
}

pub fn list(conn: &mut DbConnection) -> Result<Vec<StoredTarget>, StoreError> {
    Ok(targets::table
        .order(targets::name.asc())
        .select(StoredTarget::as_select())
        .load(conn)?)
}

pub fn find(conn: &mut DbConnection, name: &str) -> Result<Option<StoredTarget>, StoreError> {
    Ok(targets::table
        .find(name)
        .select(StoredTarget::as_select())
        .first(conn)
        .optional()?)
}

/// Stores a new target; `None` when the name is taken.
pub fn insert(
    tx: &mut WriteTx<'_>,
    name: &str,
    config: &str,
) -> Result<Option<StoredTarget>, StoreError> {
    let version = bump(tx)?;
    if find(tx.conn(), name)?.is_some() {
        return Ok(None);
    }
    let now = tx.now();
    let inserted = diesel::insert_into(targets::table)
        .values((
            targets::name.eq(name),
            targets::config.eq(config),
            targets::version.eq(version),
            targets::created_at.eq(now),
            targets::updated_at.eq(now),
        ))
        .execute(tx.conn())
        .map_err(StoreError::from);
    match inserted {
        Err(e) if e.is_unique_violation() => Ok(None),
        Err(e) => Err(e),
        Ok(_) => find(tx.conn(), name),
    }
}

/// Replaces a stored target's settings if it is still at `expected` version; `None` when it
/// is not (changed meanwhile, or deleted).
pub fn update(
    tx: &mut WriteTx<'_>,
    name: &str,
    expected: i64,
    config: &str,
) -> Result<Option<StoredTarget>, StoreError> {
    let version = bump(tx)?;
    let now = tx.now();
    let updated = diesel::update(
        targets::table
            .filter(targets::name.eq(name))
            .filter(targets::version.eq(expected)),
    )
    .set((
        targets::config.eq(config),
        targets::version.eq(version),
        targets::updated_at.eq(now),
    ))
    .execute(tx.conn())?;
    if updated == 0 {
        return Ok(None);
    }
    find(tx.conn(), name)
}

/// Seals the `secret_fields` of every stored target's `auth` with `secrets`' current key
/// (opening them with any key it holds; values stored in clear are sealed too). Answers how
/// many targets were written; each counts as changed, so every instance rebuilds it.
pub fn reseal(
    tx: &mut WriteTx<'_>,
    secrets: &SecretBox,
    secret_fields: &[&str],
) -> Result<usize, StoreError> {
    let mut written = 0;
    for row in list(tx.conn())? {
        let mut config: serde_json::Value = serde_json::from_str(&row.config)
            .map_err(|e| StoreError::Aborted(format!("stored target {:?}: {e}", row.name)))?;
        let mut changed = false;
        if let Some(auth) = config.get_mut("auth").and_then(|a| a.as_object_mut()) {
            for field in secret_fields {
                let Some(value) = auth.get(*field).and_then(|v| v.as_str()) else {
                    continue;
                };
                if secrets.is_current(value) {
                    continue;
                }
                let context = format!("{}/{field}", row.name);
                let sealed = secrets.seal(&secrets.open(value, &context)?, &context)?;
                auth.insert((*field).to_string(), serde_json::Value::String(sealed));
                changed = true;
            }
        }
        if changed {
            let text = config.to_string();
            if update(tx, &row.name, row.version, &text)?.is_some() {
                written += 1;
            }
        }
    }
    Ok(written)
}

/// Deletes a stored target with its health and identity links; its open orders become
/// `Inactive` and its open work items `withdrawn` (their history stays). Returns how many orders that was, or `None` when there
/// is no such target.
pub fn delete(tx: &mut WriteTx<'_>, name: &str) -> Result<Option<usize>, StoreError> {
    bump(tx)?;
    let deleted = diesel::delete(targets::table.find(name)).execute(tx.conn())?;
    if deleted == 0 {
        return Ok(None);
    }
    let inactivated = orders::inactivate_open(tx, name, "the target was deleted")?;
    super::work_items::withdraw_open(tx, name, "the target was deleted")?;
    forget_health(tx, name)?;
    super::identity_links::delete_target(tx, name)?;
    Ok(Some(inactivated))
}

/// Clears a target's recorded health (an operator changed it: it starts afresh).
pub fn forget_health(tx: &mut WriteTx<'_>, name: &str) -> Result<(), StoreError> {
    diesel::delete(target_health::table.find(name)).execute(tx.conn())?;
    Ok(())
}
