//! Users (RFC 7643 §4.1, with the enterprise extension §4.3).

use serde_json::{json, Map, Value};

use super::passwords;
use super::search::{Layout, Query};
use super::write_request::WriteRequest;
use super::{
    precondition, stored_data, string_attr, Directory, IdentityError, IfMatch, Page, Rendered,
};
use crate::scim::filter::{AttrPath, CompareOp, Filter, Literal};
use crate::scim::input::{self, carry_over_on_replace, check_required};
use crate::scim::list::Paging;
use crate::scim::output::render;
use crate::scim::patch;
use crate::scim::projection::Projection;
use crate::scim::registry;
use crate::scim::ScimError;
use crate::storage::change_log::{self, Operation};
use crate::storage::passwords::NewPassword;
use crate::storage::query::Table;
use crate::storage::search::Fetch;
use crate::storage::secrets::SecretBox;
use crate::storage::users::{
    self, DirectGroups, EmailKey, GroupMembership, StoredUser, UserRecord,
};
use crate::storage::{user_changes, user_creates, user_reads};
use crate::storage::{Backend, DbConnection};

impl Directory {
    /// Creates a user. Blocking; HTTP handlers call [`Directory::create_user_async`].
    pub fn create_user(
        &self,
        body: &Map<String, Value>,
        projection: &Projection,
        actor: &str,
    ) -> Result<Rendered, IdentityError> {
        let (data, record) = new_user(self.db.secrets(), body, self.creating_in())?;
        let user_name = record.user_name.clone();
        let stored = user_creates::create(&self.db, &record, actor)
            .map_err(|e| creation_failed(e, &user_name))?;
        Ok(self.render_user(&stored, data, &[], projection))
    }

    /// [`Directory::create_user`] for async callers: the input is checked on the calling
    /// thread and the write is awaited without holding one.
    pub async fn create_user_async(
        &self,
        body: &Map<String, Value>,
        projection: &Projection,
        actor: &str,
    ) -> Result<Rendered, IdentityError> {
        let (data, record) = if body.keys().any(|k| passwords::is_password(k)) {
            // Hashing takes tens of milliseconds: off the HTTP worker's thread.
            let (db, body, connection) = (self.db.clone(), body.clone(), self.creating_in());
            tokio::task::spawn_blocking(move || new_user(db.secrets(), &body, connection))
                .await
                .map_err(|e| IdentityError::Corrupt(format!("password hashing stopped: {e}")))??
        } else {
            new_user(self.db.secrets(), body, self.creating_in())?
        };
        let user_name = record.user_name.clone();
        let stored = user_creates::create_queued(&self.db, record, actor.to_string())
            .await
            .map_err(|e| creation_failed(e, &user_name))?;
        Ok(self.render_user(&stored, data, &[], projection))
    }

    pub fn get_user(&self, id: &str, projection: &Projection) -> Result<Rendered, IdentityError> {
        self.db.read(|conn| {
            // The groups, when the answer carries them, are read in the user's statement.
            let found = match projection.wants(registry::user(), "groups") {
                true => users::find_with_groups(conn, id)?,
                false => users::find(conn, id)?.map(|user| (user, DirectGroups::default())),
            };
            let (stored, direct) = found
                .filter(|(u, _)| self.sees(&u.connection))
                .ok_or_else(|| user_not_found(id))?;
            let groups = self.groups_to_render(conn, id, projection, Some(direct))?;
            let data = stored_data(&stored.data)?;
            Ok(self.render_user(&stored, data, &groups, projection))
        })
    }

    /// [`Directory::get_user`] for async callers: on PostgreSQL the user is read together with
    /// the other GETs waiting (see `storage::user_reads`), without holding a thread.
    pub async fn get_user_async(
        &self,
        id: &str,
        projection: &Projection,
    ) -> Result<Rendered, IdentityError> {
        let found = user_reads::find_with_memberships(&self.db, id.to_string())
            .await?
            .filter(|(u, _)| self.sees(&u.connection))
            .ok_or_else(|| user_not_found(id))?;
        self.render_read(found, projection)
    }

    /// A user read with its groups, rendered (the groups only when the answer carries them).
    fn render_read(
        &self,
        (stored, groups): (StoredUser, Vec<GroupMembership>),
        projection: &Projection,
    ) -> Result<Rendered, IdentityError> {
        let groups = match projection.wants(registry::user(), "groups") {
            true => groups,
            false => Vec::new(),
        };
        let data = stored_data(&stored.data)?;
        Ok(self.render_user(&stored, data, &groups, projection))
    }

    /// [`Directory::search_users`] for async callers. On PostgreSQL the first page of a search
    /// whose filter compares one text (`userName eq "…"`, `emails[value eq "…"]`, …) is read
    /// together with the other searches of its shape and the GETs waiting (see
    /// `storage::user_reads`); any other query is searched on the blocking pool.
    pub async fn search_users_async(&self, query: Query) -> Result<Page, IdentityError> {
        let first_page = match self.db.backend() {
            Backend::Postgres => self
                .user_layout()
                .first_page(&query, query.projection.wants(registry::user(), "groups"))?,
            Backend::Sqlite => None,
        };
        let Some(first_page) = first_page else {
            let directory = self.clone();
            return tokio::task::spawn_blocking(move || directory.search_users(&query))
                .await
                .map_err(|e| IdentityError::Corrupt(format!("search stopped: {e}")))?;
        };
        let found = user_reads::first_page(&self.db, first_page).await?;
        let mut resources = Vec::with_capacity(found.users.len());
        for user in found.users {
            resources.push(self.render_read(user, &query.projection)?.body);
        }
        Ok(Page {
            total: found.total,
            resources,
            next_cursor: None,
        })
    }

    /// Several users at once (the provisioning engine reads a round's users together); ids
    /// that do not exist are simply absent from the result. `with_password` adds the stored
    /// password (never returned over SCIM) for targets whose mapping provisions it.
    pub fn get_users(
        &self,
        ids: &[String],
        projection: &Projection,
        with_password: bool,
    ) -> Result<std::collections::HashMap<String, Value>, IdentityError> {
        self.db.read(|conn| {
            let rows = users::find_many(conn, ids)?;
            let mut memberships = if projection.wants(registry::user(), "groups") {
                users::memberships(conn, ids)?
            } else {
                Default::default()
            };
            let mut clear_passwords = if with_password {
                crate::storage::passwords::unsealed(conn, self.db.secrets(), ids)?
            } else {
                Default::default()
            };
            let mut out = std::collections::HashMap::with_capacity(rows.len());
            for stored in rows.into_iter().filter(|u| self.sees(&u.connection)) {
                let derived = memberships.remove(&stored.id).unwrap_or_default();
                let data = stored_data(&stored.data)?;
                let mut body = self.render_user(&stored, data, &derived, projection).body;
                if let (Some(password), Value::Object(fields)) =
                    (clear_passwords.remove(&stored.id), &mut body)
                {
                    fields.insert("password".into(), Value::String(password));
                }
                out.insert(stored.id.clone(), body);
            }
            Ok(out)
        })
    }

    /// PUT (RFC 7644 §3.5.1): the body becomes the user's state, within mutability rules.
    pub fn replace_user(
        &self,
        id: &str,
        body: &Map<String, Value>,
        condition: Option<&IfMatch>,
        projection: &Projection,
        actor: &str,
    ) -> Result<Rendered, IdentityError> {
        let mut data = input::canonicalize_request(registry::user(), body)?;
        let password =
            passwords::prepare(self.db.secrets(), id, passwords::take(&mut data).as_deref())?;
        let request = WriteRequest::of(self, id, condition, projection, actor);
        self.change_user(request, Operation::Replace, move |_, current| {
            // The change may be computed again (see `user_changes`): it starts from the
            // request.
            let mut data = data.clone();
            carry_over_on_replace(registry::user(), &stored_data(&current.data)?, &mut data)?;
            check_required(registry::user(), &data)?;
            Ok((data, password.clone()))
        })
    }

    /// PUT and PATCH alike: `new_state` turns the user as stored into its new document and
    /// password; who may see the user, `If-Match`, userName uniqueness and the rendering are
    /// the same for both.
    fn change_user(
        &self,
        request: WriteRequest,
        operation: Operation,
        mut new_state: impl FnMut(
                &Directory,
                &StoredUser,
            ) -> Result<(Map<String, Value>, Option<NewPassword>), IdentityError>
            + Send
            + 'static,
    ) -> Result<Rendered, IdentityError> {
        let id = request.id.clone();
        let projection = request.projection.clone();
        let stored = user_changes::change(
            &self.db,
            request.id.clone(),
            operation,
            request.actor.clone(),
            move |conn, current, direct_groups| {
                let WriteRequest { this, id, .. } = &request;
                if !this.sees(&current.connection) {
                    return Err(user_not_found(id));
                }
                precondition::check(request.condition.as_ref(), current.version)?;
                let (data, password) = new_state(this, current)?;
                let record =
                    user_record(id.to_string(), &data, password, current.connection.clone())?;
                if record.user_name != current.user_name {
                    ensure_user_name_free(conn, &record.user_name, Some(id))?;
                }
                // A user's write leaves its memberships as they are.
                let groups = this.groups_to_render(conn, id, &request.projection, direct_groups)?;
                Ok::<_, IdentityError>((record, groups))
            },
        )?
        .ok_or_else(|| user_not_found(&id))?;
        // Rendered after the write, so the writes queued behind it need not wait for that.
        let data = stored_data(&stored.0.data)?;
        Ok(self.render_user(&stored.0, data, &stored.1, &projection))
    }

    /// Up to `limit` users after id `after`, in id order, as scimgate renders them (a full
    /// sync walks every user this way).
    pub fn users_after(
        &self,
        after: &str,
        limit: i64,
        projection: &Projection,
    ) -> Result<Vec<(String, Value)>, IdentityError> {
        let ids = self.db.read(|conn| users::ids_after(conn, after, limit))?;
        let mut found = self.get_users(&ids, projection, false)?;
        Ok(ids
            .into_iter()
            .filter_map(|id| found.remove(&id).map(|user| (id, user)))
            .collect())
    }

    /// How many users there are.
    pub fn user_count(&self) -> Result<u64, IdentityError> {
        Ok(self.db.read(users::count)?)
    }

    /// Every user as (id, userName, externalId) only, handed to `each`: enough to correlate
    /// on those, without reading each user's document.
    pub fn each_user_name(
        &self,
        each: impl FnMut(&str, &str, Option<&str>),
    ) -> Result<(), IdentityError> {
        Ok(self.db.read(|conn| users::each_name(conn, each))?)
    }

    /// Up to `limit` users after id `after`, in id order, as stored: the attributes a client
    /// sent, without derived ones (`groups`, `meta`). Cheaper than rendering, for indexing
    /// users by their own attributes (correlation).
    pub fn stored_users_after(
        &self,
        after: &str,
        limit: i64,
    ) -> Result<Vec<(String, Value)>, IdentityError> {
        let rows = self.db.read(|conn| users::rows_after(conn, after, limit))?;
        rows.into_iter()
            .map(|row| {
                let mut data = stored_data(&row.data)?;
                data.insert("id".into(), Value::String(row.id.clone()));
                Ok((row.id, Value::Object(data)))
            })
            .collect()
    }

    /// The ids of every user matching `filter` (a target's scope), evaluated in the database.
    pub fn user_ids_matching(
        &self,
        filter: &Filter,
    ) -> Result<std::collections::HashSet<String>, IdentityError> {
        let query = Query {
            filter: Some(filter.clone()),
            ..Query::default()
        };
        let layout = Layout {
            table: Table::Users,
            rt: registry::user(),
            scope: self.connection.clone(),
        };
        self.db.read(|conn| {
            let selection = layout.select(conn, &query, Fetch::Ids)?;
            Ok(selection.rows.into_iter().map(|r| r.id).collect())
        })
    }

    /// Whether the user matches `filter` (a target's scope), evaluated in the database.
    pub fn user_matches(&self, id: &str, filter: &Filter) -> Result<bool, IdentityError> {
        let by_id = Filter::Compare {
            path: AttrPath::parse("id")?,
            op: CompareOp::Eq,
            value: Literal::String(id.to_string()),
        };
        let query = Query {
            filter: Some(Filter::And(Box::new(by_id), Box::new(filter.clone()))),
            paging: Some(Paging {
                start_index: 1,
                count: 0,
            }),
            ..Query::default()
        };
        let layout = Layout {
            table: Table::Users,
            rt: registry::user(),
            scope: self.connection.clone(),
        };
        self.db
            .read(|conn| Ok(layout.select(conn, &query, Fetch::Ids)?.total > 0))
    }

    /// PATCH (RFC 7644 §3.5.2): every operation applies, or none does.
    pub fn patch_user(
        &self,
        id: &str,
        body: &Map<String, Value>,
        condition: Option<&IfMatch>,
        projection: &Projection,
        actor: &str,
    ) -> Result<Rendered, IdentityError> {
        let ops = patch::parse_request(body)?;
        let mut prepared = passwords::Prepared::for_patch(self.db.secrets(), id, &ops)?;
        let request = WriteRequest::of(self, id, condition, projection, actor);
        let id = id.to_string();
        self.change_user(request, Operation::Modify, move |this, current| {
            let mut doc = stored_data(&current.data)?;
            for op in &ops {
                patch::apply(registry::user(), &mut doc, op)?;
            }
            // The patched document is validated like a new one: types, primaries, required.
            let mut data = input::canonicalize(registry::user(), &doc)?;
            check_required(registry::user(), &data)?;
            let clear = passwords::take(&mut data);
            let password = prepared.resolve(this.db.secrets(), &id, clear.as_deref())?;
            Ok((data, password))
        })
    }

    pub fn delete_user(
        &self,
        id: &str,
        condition: Option<&IfMatch>,
        actor: &str,
    ) -> Result<(), IdentityError> {
        let request = WriteRequest::of(self, id, condition, &Projection::default(), actor);
        self.db.write_grouped(move |tx| {
            let WriteRequest { this, id, .. } = &request;
            let current = users::find_for_update(tx, id)?
                .filter(|u| this.sees(&u.connection))
                .ok_or_else(|| user_not_found(id))?;
            precondition::check(request.condition.as_ref(), current.version)?;
            if let Some(limit) = this.delete_guard {
                let hour_ago = tx.now() - 3_600_000_000;
                let deleted =
                    change_log::user_deletions_since(tx.conn(), &current.connection, hour_ago)?;
                if deleted >= limit as i64 {
                    return Err(ScimError::new(
                        403,
                        None,
                        format!(
                            "connection {:?} deleted {deleted} users in the last hour, its \
                             mass-delete guard's limit (max_user_deletes_per_hour); nothing was \
                             deleted. An operator can raise the limit",
                            current.connection
                        ),
                    )
                    .into());
                }
            }
            users::delete(tx, &current, &request.actor)?;
            Ok(())
        })
    }

    /// Lists users matching a query: filter, sort and page evaluated in the database.
    pub fn search_users(&self, query: &Query) -> Result<Page, IdentityError> {
        let layout = self.user_layout();
        self.db.read(|conn| {
            // The groups are read in the page's statement, not in a second round trip.
            let with_groups = query.projection.wants(registry::user(), "groups");
            let mut selection = layout.select(conn, query, Fetch::records(with_groups))?;
            let mut memberships = if with_groups {
                let direct = selection
                    .rows
                    .iter_mut()
                    .filter_map(|row| {
                        let groups = std::mem::take(&mut row.record.as_mut()?.direct_groups);
                        Some((row.id.clone(), groups))
                    })
                    .collect();
                users::memberships_from(conn, direct)?
            } else {
                Default::default()
            };
            let mut resources = Vec::with_capacity(selection.rows.len());
            for stored in selection.rows.into_iter().filter_map(StoredUser::found) {
                let derived = memberships.remove(&stored.id).unwrap_or_default();
                let data = stored_data(&stored.data)?;
                resources.push(
                    self.render_user(&stored, data, &derived, &query.projection)
                        .body,
                );
            }
            Ok(Page {
                total: selection.total,
                resources,
                next_cursor: selection.next_cursor,
            })
        })
    }

    /// How users are stored, as this directory's searches see them.
    fn user_layout(&self) -> Layout {
        Layout {
            table: Table::Users,
            rt: registry::user(),
            scope: self.connection.clone(),
        }
    }

    /// The user's groups, when the response carries them (they can be many: loaded only then),
    /// from its direct groups when they were read with the user.
    fn groups_to_render(
        &self,
        conn: &mut DbConnection,
        id: &str,
        projection: &Projection,
        direct: Option<DirectGroups>,
    ) -> Result<Vec<GroupMembership>, IdentityError> {
        if !projection.wants(registry::user(), "groups") {
            return Ok(Vec::new());
        }
        let mut found = match direct {
            Some(direct) => users::memberships_from(conn, vec![(id.to_string(), direct)])?,
            None => users::memberships(conn, &[id.to_string()])?,
        };
        Ok(found.remove(id).unwrap_or_default())
    }

    fn render_user(
        &self,
        stored: &StoredUser,
        data: Map<String, Value>,
        groups: &[GroupMembership],
        projection: &Projection,
    ) -> Rendered {
        let mut derived = Map::new();
        if !groups.is_empty() {
            let values: Vec<Value> = groups
                .iter()
                .map(|g| {
                    json!({
                        "value": g.group_id,
                        "$ref": self.location("/Groups", &g.group_id),
                        "display": g.display_name,
                        "type": if g.direct { "direct" } else { "indirect" },
                    })
                })
                .collect();
            derived.insert("groups".into(), Value::Array(values));
        }
        let meta = self.meta(
            registry::user().endpoint,
            &stored.id,
            stored.version,
            stored.created_at,
            stored.last_modified,
        );
        Rendered {
            body: projection.apply(
                registry::user(),
                render(registry::user(), &stored.id, &data, &derived, &meta),
            ),
            version: stored.version,
        }
    }
}

/// A new user's canonical attributes and the record to store, with a fresh id.
fn new_user(
    secrets: &SecretBox,
    body: &Map<String, Value>,
    connection: String,
) -> Result<(Map<String, Value>, UserRecord), IdentityError> {
    let mut data = input::canonicalize_request(registry::user(), body)?;
    check_required(registry::user(), &data)?;
    let id = super::new_resource_id();
    let password = passwords::prepare(secrets, &id, passwords::take(&mut data).as_deref())?;
    let record = user_record(id, &data, password, connection)?;
    Ok((data, record))
}

/// Why a create failed; the unique index decides, so a taken userName comes back from the
/// store as a uniqueness violation.
fn creation_failed(error: crate::storage::StoreError, user_name: &str) -> IdentityError {
    let other_value_taken = error.is_external_id_taken() || error.is_extension_value_taken();
    match IdentityError::from(error) {
        IdentityError::Conflict(_) if !other_value_taken => {
            IdentityError::Conflict(format!("userName '{user_name}' is already taken"))
        }
        other => other,
    }
}

fn user_not_found(id: &str) -> IdentityError {
    IdentityError::NotFound(format!("User {id} not found"))
}

fn ensure_user_name_free(
    conn: &mut DbConnection,
    user_name: &str,
    own_id: Option<&str>,
) -> Result<(), IdentityError> {
    match users::id_by_user_name(conn, user_name)? {
        Some(holder) if Some(holder.as_str()) != own_id => Err(IdentityError::Conflict(format!(
            "userName '{user_name}' is already taken"
        ))),
        _ => Ok(()),
    }
}

/// The indexed columns of a canonical user.
/// The record to store for a canonical document without its password, and the password
/// given with the write, if any.
fn user_record(
    id: String,
    data: &Map<String, Value>,
    password: Option<NewPassword>,
    connection: String,
) -> Result<UserRecord, IdentityError> {
    let user_name = string_attr(data, "userName").unwrap_or_default();
    let emails = match data.get("emails") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|e| {
                let value = e.get("value")?.as_str()?;
                Some(EmailKey {
                    value: value.to_string(),
                    email_type: e.get("type").and_then(Value::as_str).map(str::to_string),
                    primary: e.get("primary").and_then(Value::as_bool).unwrap_or(false),
                })
            })
            .collect(),
        _ => Vec::new(),
    };
    let json = serde_json::to_string(data).map_err(|e| IdentityError::Corrupt(e.to_string()))?;
    Ok(UserRecord {
        id,
        user_name,
        external_id: string_attr(data, "externalId"),
        display_name: string_attr(data, "displayName"),
        active: data.get("active").and_then(Value::as_bool),
        data: json,
        emails,
        password,
        connection,
    })
}
