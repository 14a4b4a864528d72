//! Groups (RFC 7643 §4.2): members are Users or Groups, stored one row per membership.

use std::collections::HashSet;

use serde_json::{json, Map, Value};

use super::search::{Layout, Query};
use super::write_request::WriteRequest;
use super::{
    precondition, stored_data, string_attr, Directory, IdentityError, IfMatch, Page, Rendered,
};
use crate::scim::filter_eval;
use crate::scim::input::{self, carry_over_on_replace, check_required};
use crate::scim::output::render;
use crate::scim::patch::{self, MemberChange};
use crate::scim::projection::Projection;
use crate::scim::registry;
use crate::scim::ScimError;
use crate::storage::change_log::Operation;
use crate::storage::groups::{
    self, GroupRecord, Member, MemberKind, MemberRef, MembersWrite, StoredGroup,
};
use crate::storage::member_edits::{self, MemberEdit};
use crate::storage::query::Table;
use crate::storage::search::Fetch;
use crate::storage::{DbConnection, WriteTx};

/// A member as a client named it, before it is checked against the store.
#[derive(Debug, Clone)]
struct RequestedMember {
    id: String,
    kind: Option<MemberKind>,
    display: Option<String>,
}

impl Directory {
    pub fn create_group(
        &self,
        body: &Map<String, Value>,
        projection: &Projection,
        actor: &str,
    ) -> Result<Rendered, IdentityError> {
        let mut data = input::canonicalize_request(registry::group(), body)?;
        check_required(registry::group(), &data)?;
        let requested = take_members(&mut data)?;
        let record = group_record(super::new_resource_id(), &data, self.creating_in())?;
        let request = WriteRequest::of(self, &record.id, None, projection, actor);
        self.db.write_grouped(move |tx| {
            ensure_display_name_free(tx.conn(), &record.display_name, None)?;
            let members = resolve_members(tx.conn(), &record.id, &record.connection, &requested)?;
            let stored = groups::insert(tx, &record, &members, &request.actor)?;
            request
                .this
                .load_group(tx.conn(), stored, &request.projection)
        })
    }

    /// How many groups there are.
    pub fn group_count(&self) -> Result<u64, IdentityError> {
        Ok(self.db.read(groups::count)?)
    }

    /// Up to `limit` groups after id `after`, in id order, with their members.
    pub fn groups_after(
        &self,
        after: &str,
        limit: i64,
    ) -> Result<Vec<(String, Value)>, IdentityError> {
        let ids = self.db.read(|conn| groups::ids_after(conn, after, limit))?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            match self.get_group(&id, &Projection::default()) {
                Ok(found) => out.push((id, found.body)),
                // Deleted meanwhile.
                Err(IdentityError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    pub fn get_group(&self, id: &str, projection: &Projection) -> Result<Rendered, IdentityError> {
        self.db.read(|conn| {
            let stored = groups::find(conn, id)?
                .filter(|g| self.sees(&g.connection))
                .ok_or_else(|| group_not_found(id))?;
            self.load_group(conn, stored, projection)
        })
    }

    pub fn replace_group(
        &self,
        id: &str,
        body: &Map<String, Value>,
        condition: Option<&IfMatch>,
        projection: &Projection,
        actor: &str,
    ) -> Result<Rendered, IdentityError> {
        let mut data = input::canonicalize_request(registry::group(), body)?;
        let requested = take_members(&mut data)?;
        let request = WriteRequest::of(self, id, condition, projection, actor);
        self.db.write_grouped(move |tx| {
            let WriteRequest { this, id, .. } = &request;
            let current = groups::find_for_update(tx, id)?
                .filter(|g| this.sees(&g.connection))
                .ok_or_else(|| group_not_found(id))?;
            precondition::check(request.condition.as_ref(), current.version)?;
            // A write may run again (see `Db::write_grouped`): it starts from the request.
            let mut data = data.clone();
            carry_over_on_replace(registry::group(), &stored_data(&current.data)?, &mut data)?;
            check_required(registry::group(), &data)?;
            let record = group_record(id.to_string(), &data, current.connection.clone())?;
            if record.display_name != current.display_name {
                ensure_display_name_free(tx.conn(), &record.display_name, Some(id))?;
            }
            let members = resolve_members(tx.conn(), id, &current.connection, &requested)?;
            let stored = groups::update(
                tx,
                &current,
                &record,
                MembersWrite::Replaced(&members),
                Operation::Replace,
                &request.actor,
            )?;
            this.load_group(tx.conn(), stored, &request.projection)
        })
    }

    /// PATCH (RFC 7644 §3.5.2), all operations in one transaction. Membership changes touch
    /// only the membership rows they name.
    pub fn patch_group(
        &self,
        id: &str,
        body: &Map<String, Value>,
        condition: Option<&IfMatch>,
        projection: &Projection,
        actor: &str,
    ) -> Result<Rendered, IdentityError> {
        let (attribute_ops, member_changes) =
            patch::split_member_ops(registry::group(), patch::parse_request(body)?)?;
        if let Some(edit) = members_only(&attribute_ops, &member_changes, condition) {
            if member_edits::supported(&self.db) {
                return self.edit_members(id, edit, projection, actor);
            }
        }
        let request = WriteRequest::of(self, id, condition, projection, actor);
        self.db.write_grouped(move |tx| {
            let WriteRequest { this, id, .. } = &request;
            let current = groups::find_for_update(tx, id)?
                .filter(|g| this.sees(&g.connection))
                .ok_or_else(|| group_not_found(id))?;
            precondition::check(request.condition.as_ref(), current.version)?;
            let mut doc = stored_data(&current.data)?;
            for op in &attribute_ops {
                patch::apply(registry::group(), &mut doc, op)?;
            }
            let data = input::canonicalize(registry::group(), &doc)?;
            check_required(registry::group(), &data)?;
            let record = group_record(id.to_string(), &data, current.connection.clone())?;
            if record.display_name != current.display_name {
                ensure_display_name_free(tx.conn(), &record.display_name, Some(id))?;
            }
            for change in &member_changes {
                apply_member_change(tx, id, &current.connection, change)?;
            }
            let stored = groups::update(
                tx,
                &current,
                &record,
                if member_changes.is_empty() {
                    MembersWrite::Untouched
                } else {
                    MembersWrite::Edited
                },
                Operation::Modify,
                &request.actor,
            )?;
            this.load_group(tx.conn(), stored, &request.projection)
        })
    }

    /// A PATCH of members alone, written as one statement (see `storage::member_edits`).
    fn edit_members(
        &self,
        id: &str,
        edit: RequestedEdit<'_>,
        projection: &Projection,
        actor: &str,
    ) -> Result<Rendered, IdentityError> {
        // The group and the members named, read on one connection.
        let (group, edit) = self.db.read(|conn| {
            let group = groups::find(conn, id)?
                .filter(|g| self.sees(&g.connection))
                .ok_or_else(|| group_not_found(id))?;
            let edit = match edit {
                RequestedEdit::Add(values) => {
                    let requested = values
                        .into_iter()
                        .map(requested_members)
                        .collect::<Result<Vec<_>, _>>()?
                        .concat();
                    MemberEdit::Add(resolve_members(conn, id, &group.connection, &requested)?)
                }
                RequestedEdit::Remove(ids) => MemberEdit::Remove(ids.concat()),
            };
            Ok::<_, IdentityError>((group, edit))
        })?;
        let stored = member_edits::edit(&self.db, &group, edit, actor)?
            .ok_or_else(|| group_not_found(id))?;
        self.db
            .read(|conn| self.load_group(conn, stored, projection))
    }

    pub fn delete_group(
        &self,
        id: &str,
        condition: Option<&IfMatch>,
        actor: &str,
    ) -> Result<(), IdentityError> {
        let request = WriteRequest::of(self, id, condition, &Projection::default(), actor);
        self.db.write_grouped(move |tx| {
            let WriteRequest { this, id, .. } = &request;
            let current = groups::find_for_update(tx, id)?
                .filter(|g| this.sees(&g.connection))
                .ok_or_else(|| group_not_found(id))?;
            precondition::check(request.condition.as_ref(), current.version)?;
            groups::delete(tx, &current, &request.actor)?;
            Ok(())
        })
    }

    pub fn search_groups(&self, query: &Query) -> Result<Page, IdentityError> {
        let layout = Layout {
            table: Table::Groups,
            rt: registry::group(),
            scope: self.connection.clone(),
        };
        self.db.read(|conn| {
            let selection = layout.select(conn, query, Fetch::Records)?;
            let mut members = if query.projection.wants(registry::group(), "members") {
                groups::members_of(conn, &selection.ids())?
            } else {
                Default::default()
            };
            let mut resources = Vec::with_capacity(selection.rows.len());
            for stored in selection.rows.into_iter().filter_map(StoredGroup::found) {
                let derived = members.remove(&stored.id).unwrap_or_default();
                let data = stored_data(&stored.data)?;
                resources.push(
                    self.render_group(&stored, data, &derived, &query.projection)
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

    fn load_group(
        &self,
        conn: &mut DbConnection,
        stored: StoredGroup,
        projection: &Projection,
    ) -> Result<Rendered, IdentityError> {
        // Derived attributes can be large (a group's members): load them only when returned.
        let members = if projection.wants(registry::group(), "members") {
            groups::members_of(conn, std::slice::from_ref(&stored.id))?
                .remove(&stored.id)
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        let data = stored_data(&stored.data)?;
        Ok(self.render_group(&stored, data, &members, projection))
    }

    fn render_group(
        &self,
        stored: &StoredGroup,
        data: Map<String, Value>,
        members: &[Member],
        projection: &Projection,
    ) -> Rendered {
        let mut derived = Map::new();
        if !members.is_empty() {
            let values: Vec<Value> = members
                .iter()
                .map(|m| {
                    let endpoint = match m.kind {
                        MemberKind::User => "/Users",
                        MemberKind::Group => "/Groups",
                    };
                    let mut v = json!({
                        "value": m.id,
                        "$ref": self.location(endpoint, &m.id),
                        "type": m.kind.as_str(),
                    });
                    if let Some(display) = &m.display {
                        v["display"] = Value::String(display.clone());
                    }
                    v
                })
                .collect();
            derived.insert("members".into(), Value::Array(values));
        }
        let meta = self.meta(
            registry::group().endpoint,
            &stored.id,
            stored.version,
            stored.created_at,
            stored.last_modified,
        );
        Rendered {
            body: projection.apply(
                registry::group(),
                render(registry::group(), &stored.id, &data, &derived, &meta),
            ),
            version: stored.version,
        }
    }
}

/// The member changes of a PATCH that changes nothing else, all adds or all removes, with
/// no version to match: what `storage::member_edits` writes in one statement.
enum RequestedEdit<'a> {
    Add(Vec<&'a [Value]>),
    Remove(Vec<&'a [String]>),
}

fn members_only<'a>(
    attribute_ops: &[patch::PatchOp],
    member_changes: &'a [MemberChange],
    condition: Option<&IfMatch>,
) -> Option<RequestedEdit<'a>> {
    if !attribute_ops.is_empty() || matches!(condition, Some(IfMatch::Tags(_))) {
        return None;
    }
    let (mut adds, mut removes) = (Vec::new(), Vec::new());
    for change in member_changes {
        match change {
            MemberChange::Add(values) => adds.push(values.as_slice()),
            MemberChange::Remove(ids) => removes.push(ids.as_slice()),
            _ => return None,
        }
    }
    match (adds.is_empty(), removes.is_empty()) {
        (false, true) => Some(RequestedEdit::Add(adds)),
        (true, false) => Some(RequestedEdit::Remove(removes)),
        _ => None,
    }
}

fn group_not_found(id: &str) -> IdentityError {
    IdentityError::NotFound(format!("Group {id} not found"))
}

fn ensure_display_name_free(
    conn: &mut DbConnection,
    display_name: &str,
    own_id: Option<&str>,
) -> Result<(), IdentityError> {
    match groups::id_by_display_name(conn, display_name)? {
        Some(holder) if Some(holder.as_str()) != own_id => Err(IdentityError::Conflict(format!(
            "a group with displayName '{display_name}' already exists"
        ))),
        _ => Ok(()),
    }
}

/// Removes `members` from the canonical data (they live in their own rows) and reads them.
fn take_members(data: &mut Map<String, Value>) -> Result<Vec<RequestedMember>, ScimError> {
    match data.remove("members") {
        Some(Value::Array(items)) => requested_members(&items),
        _ => Ok(Vec::new()),
    }
}

/// Member values as a client sent them: objects with `value` (and maybe `type`), or bare ids.
fn requested_members(items: &[Value]) -> Result<Vec<RequestedMember>, ScimError> {
    let field = |item: &Value, name: &str| -> Option<String> {
        item.as_object()
            .and_then(|f| f.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)))
            .and_then(|(_, v)| v.as_str())
            .map(str::to_string)
    };
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let id = match item {
            Value::String(id) => Some(id.clone()),
            other => field(other, "value"),
        };
        let Some(id) = id else {
            return Err(ScimError::invalid_value(
                "every member needs a 'value' with the member's id",
            ));
        };
        let kind = match field(item, "type") {
            None => None,
            Some(t) if t.eq_ignore_ascii_case("User") => Some(MemberKind::User),
            Some(t) if t.eq_ignore_ascii_case("Group") => Some(MemberKind::Group),
            Some(t) => {
                return Err(ScimError::invalid_value(format!(
                    "member type '{t}' is not one of 'User', 'Group'"
                )))
            }
        };
        if seen.insert(id.clone()) {
            out.push(RequestedMember {
                id,
                kind,
                display: field(item, "display"),
            });
        }
    }
    Ok(out)
}

/// Applies one membership change, touching only the rows it names.
fn apply_member_change(
    tx: &mut WriteTx<'_>,
    group_id: &str,
    connection: &str,
    change: &MemberChange,
) -> Result<(), IdentityError> {
    match change {
        MemberChange::Add(values) => {
            let requested = requested_members(values)?;
            let refs = resolve_members(tx.conn(), group_id, connection, &requested)?;
            let ids: Vec<String> = refs.iter().map(|m| m.id.clone()).collect();
            let present = groups::existing_member_ids(tx.conn(), group_id, &ids)?;
            let new: Vec<MemberRef> = refs
                .into_iter()
                .filter(|m| !present.contains(&m.id))
                .collect();
            groups::add_member_rows(tx, group_id, &new)?;
        }
        MemberChange::Remove(ids) => groups::remove_member_rows(tx, group_id, ids)?,
        MemberChange::RemoveAll => groups::remove_all_member_rows(tx, group_id)?,
        MemberChange::Replace(values) => {
            let requested = requested_members(values)?;
            let refs = resolve_members(tx.conn(), group_id, connection, &requested)?;
            groups::set_members(tx, group_id, &refs)?;
        }
        MemberChange::RemoveWhere(filter) => {
            let members_def = registry::group().core.attribute("members");
            let current = groups::members_of(tx.conn(), &[group_id.to_string()])?
                .remove(group_id)
                .unwrap_or_default();
            let doomed: Vec<String> = current
                .into_iter()
                .filter(|m| {
                    let value =
                        json!({"value": m.id, "type": m.kind.as_str(), "display": m.display});
                    members_def.is_some_and(|d| filter_eval::matches(filter, &value, d))
                })
                .map(|m| m.id)
                .collect();
            groups::remove_member_rows(tx, group_id, &doomed)?;
        }
    }
    Ok(())
}

/// Checks that every requested member exists in the group's connection, with the type the
/// client named.
fn resolve_members(
    conn: &mut DbConnection,
    group_id: &str,
    connection: &str,
    requested: &[RequestedMember],
) -> Result<Vec<MemberRef>, IdentityError> {
    if requested.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = requested.iter().map(|m| m.id.clone()).collect();
    let kinds = groups::resolve_kinds(conn, &ids)?;
    let mut out = Vec::with_capacity(requested.len());
    for member in requested {
        if member.id == group_id {
            return Err(ScimError::invalid_value("a group cannot be a member of itself").into());
        }
        // Another connection's resource is as unknown here as one that does not exist.
        let Some(kind) = kinds
            .get(&member.id)
            .filter(|(_, owner)| owner == connection)
            .map(|(kind, _)| *kind)
        else {
            return Err(
                ScimError::invalid_value(format!("member '{}' does not exist", member.id)).into(),
            );
        };
        if let Some(named) = member.kind {
            if named != kind {
                return Err(ScimError::invalid_value(format!(
                    "member '{}' is a {}, not a {}",
                    member.id,
                    kind.as_str(),
                    named.as_str()
                ))
                .into());
            }
        }
        out.push(MemberRef {
            id: member.id.clone(),
            kind,
            display: member.display.clone(),
        });
    }
    Ok(out)
}

fn group_record(
    id: String,
    data: &Map<String, Value>,
    connection: String,
) -> Result<GroupRecord, IdentityError> {
    let json = serde_json::to_string(data).map_err(|e| IdentityError::Corrupt(e.to_string()))?;
    Ok(GroupRecord {
        id,
        display_name: string_attr(data, "displayName").unwrap_or_default(),
        external_id: string_attr(data, "externalId"),
        data: json,
        connection,
    })
}
