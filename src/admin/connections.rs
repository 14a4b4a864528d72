//! `/admin/connections`: the upstream identity providers, each with its own SCIM endpoint
//! (`/scim/{name}/v2`) and tokens. Create, list, read, enable, disable, and delete one that
//! owns no users or groups (its tokens are revoked). A disabled connection's tokens get 401
//! (within `auth.token_cache_seconds`); its resources stay.

use actix_web::http::header::LOCATION;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{blocking, time, AdminError, AdminState};
use crate::auth::Principal;
use crate::connections::ConnectionSettings;
use crate::identity::{IdentityError, Kind, DEFAULT_CONNECTION};
use crate::storage::connections::{self, ConnectionRow};

/// What a connection is created with.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewConnection {
    name: String,
    #[serde(default = "yes")]
    enabled: bool,
    /// Its own settings (kept as given; a JSON object).
    #[serde(default)]
    settings: serde_json::Map<String, Value>,
}

fn yes() -> bool {
    true
}

fn view(row: &ConnectionRow, (users, groups): (i64, i64)) -> Value {
    let path = if row.name == DEFAULT_CONNECTION {
        "/scim/v2".to_string()
    } else {
        format!("/scim/{}/v2", row.name)
    };
    json!({
        "name": row.name,
        "enabled": row.enabled,
        "scimPath": path,
        "settings": serde_json::from_str::<Value>(&row.settings).unwrap_or(Value::Null),
        "version": row.version,
        "created": time(row.created_at),
        "lastModified": time(row.updated_at),
        "users": users,
        "groups": groups,
    })
}

/// A connection's name is a path segment: plain, and not one the SCIM paths use.
fn check_name(name: &str) -> Result<(), AdminError> {
    let plain = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_'));
    if !plain || name == "v2" {
        return Err(AdminError::BadRequest(format!(
            "name {name:?}: use 1 to 64 lower-case letters, digits, '-' or '_' (not v2)"
        )));
    }
    Ok(())
}

/// The settings as stored, once they read as a connection's settings.
fn checked_settings(settings: serde_json::Map<String, Value>) -> Result<String, AdminError> {
    let text = Value::Object(settings).to_string();
    ConnectionSettings::parse(&text).map_err(AdminError::BadRequest)?;
    Ok(text)
}

fn not_found(name: &str) -> AdminError {
    AdminError::NotFound(format!("no connection named {name:?}"))
}

/// `GET /admin/connections`
pub async fn list(state: web::Data<AdminState>) -> Result<HttpResponse, AdminError> {
    let all = blocking(move || {
        state
            .db
            .read(|c| {
                let mut out = Vec::new();
                for row in connections::list(c)? {
                    let owned = connections::resources(c, &row.name)?;
                    out.push(view(&row, owned));
                }
                Ok::<_, crate::storage::StoreError>(out)
            })
            .map_err(AdminError::from)
    })
    .await?;
    Ok(HttpResponse::Ok().json(json!({ "connections": all })))
}

/// `GET /admin/connections/{name}`
pub async fn get(
    state: web::Data<AdminState>,
    name: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let name = name.into_inner();
    let found = blocking(move || {
        state
            .db
            .read(|c| {
                let Some(row) = connections::find(c, &name)? else {
                    return Ok(None);
                };
                let owned = connections::resources(c, &name)?;
                Ok::<_, crate::storage::StoreError>(Some(view(&row, owned)))
            })?
            .ok_or_else(|| not_found(&name))
    })
    .await?;
    Ok(HttpResponse::Ok().json(found))
}

/// `POST /admin/connections`: `{"name": "okta", "enabled": true, "settings": {}}`.
pub async fn create(
    state: web::Data<AdminState>,
    body: web::Bytes,
) -> Result<HttpResponse, AdminError> {
    let new: NewConnection = serde_json::from_slice(&body)
        .map_err(|e| AdminError::BadRequest(format!("invalid connection: {e}")))?;
    check_name(&new.name)?;
    let settings = checked_settings(new.settings)?;
    let name = new.name.clone();
    let row = blocking(move || {
        state
            .db
            .write(|tx| connections::insert(tx, &new.name, new.enabled, &settings))?
            .ok_or_else(|| {
                AdminError::Conflict(format!("a connection named {:?} exists", new.name))
            })
    })
    .await?;
    Ok(HttpResponse::Created()
        .insert_header((LOCATION, format!("/admin/connections/{name}")))
        .json(view(&row, (0, 0))))
}

/// What `PUT` replaces: the enabled flag and every setting.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangedConnection {
    /// When given, it must be the URL's: connections are not renamed.
    name: Option<String>,
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default)]
    settings: serde_json::Map<String, Value>,
}

/// `PUT /admin/connections/{name}`: replaces its settings and enabled flag.
pub async fn replace(
    state: web::Data<AdminState>,
    name: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AdminError> {
    let name = name.into_inner();
    let changed: ChangedConnection = serde_json::from_slice(&body)
        .map_err(|e| AdminError::BadRequest(format!("invalid connection: {e}")))?;
    if changed.name.as_ref().is_some_and(|n| n != &name) {
        return Err(AdminError::BadRequest(
            "the body names another connection: connections are not renamed".into(),
        ));
    }
    let settings = checked_settings(changed.settings)?;
    change(state, name, move |_| (changed.enabled, settings)).await
}

/// Writes what `new` makes of the connection's (enabled, settings), unless it changed
/// meanwhile; answers the connection as it then is.
async fn change(
    state: web::Data<AdminState>,
    name: String,
    new: impl FnOnce(&ConnectionRow) -> (bool, String) + Send + 'static,
) -> Result<HttpResponse, AdminError> {
    let changed = blocking(move || {
        let db = &state.db;
        let row = db
            .read(|c| connections::find(c, &name))?
            .ok_or_else(|| not_found(&name))?;
        let (enabled, settings) = new(&row);
        let row = db
            .write(|tx| connections::update(tx, &name, row.version, enabled, &settings))?
            .ok_or_else(|| {
                AdminError::Conflict(format!("connection {name:?} changed meanwhile; try again"))
            })?;
        let owned = db.read(|c| connections::resources(c, &name))?;
        Ok(view(&row, owned))
    })
    .await?;
    Ok(HttpResponse::Ok().json(changed))
}

async fn set_enabled(
    state: web::Data<AdminState>,
    name: String,
    enabled: bool,
) -> Result<HttpResponse, AdminError> {
    change(state, name, move |row| (enabled, row.settings.clone())).await
}

/// `POST /admin/connections/{name}/enable`
pub async fn enable(
    state: web::Data<AdminState>,
    name: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    set_enabled(state, name.into_inner(), true).await
}

/// `POST /admin/connections/{name}/disable`: its tokens get 401; its users and groups stay
/// (and stay provisioned).
pub async fn disable(
    state: web::Data<AdminState>,
    name: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    set_enabled(state, name.into_inner(), false).await
}

/// `DELETE /admin/connections/{name}`: only a connection that owns no users or groups, unless
/// `?deprovision=true`: then it is disabled first, and every group and user it owns is deleted
/// through the normal change path, so targets deprovision them (the mass-delete guard holds
/// a burst as it holds any other). Its tokens are revoked. The default connection stays.
pub async fn delete(
    state: web::Data<AdminState>,
    name: web::Path<String>,
    query: web::Query<Deletion>,
    principal: Principal,
) -> Result<HttpResponse, AdminError> {
    let name = name.into_inner();
    if name == DEFAULT_CONNECTION {
        return Err(AdminError::Conflict(
            "the default connection cannot be deleted".into(),
        ));
    }
    let n = name.clone();
    let deprovision = query.deprovision;
    let (users, groups) = blocking(move || {
        let db = &state.db;
        let row = db
            .read(|c| connections::find(c, &n))?
            .ok_or_else(|| not_found(&n))?;
        let deprovisioned = if deprovision {
            if row.enabled {
                db.write(|tx| connections::update(tx, &n, row.version, false, &row.settings))?;
            }
            deprovision_all(&state, &n, &principal.actor)?
        } else {
            (0, 0)
        };
        let (users, groups) = db.read(|c| connections::resources(c, &n))?;
        if users + groups > 0 {
            return Err(AdminError::Conflict(format!(
                "connection {n:?} owns {users} users and {groups} groups; delete them first, \
                 or delete with ?deprovision=true"
            )));
        }
        if !db.write(|tx| connections::delete(tx, &n))? {
            return Err(not_found(&n));
        }
        Ok(deprovisioned)
    })
    .await?;
    Ok(HttpResponse::Ok().json(json!({
        "name": name,
        "deleted": true,
        "deprovisioned": {"users": users, "groups": groups},
    })))
}

/// `?deprovision=true` on a connection's deletion.
#[derive(Deserialize)]
pub struct Deletion {
    #[serde(default)]
    deprovision: bool,
}

/// Deletes every group, then every user, the connection owns, as its identity provider would;
/// answers how many of each.
fn deprovision_all(state: &AdminState, name: &str, actor: &str) -> Result<(u64, u64), AdminError> {
    let own = state.directory.directory().for_connection(name, "");
    let (mut users, mut groups) = (0u64, 0u64);
    loop {
        let (user_ids, group_ids) = state.db.read(|c| connections::resource_ids(c, name, 500))?;
        if user_ids.is_empty() && group_ids.is_empty() {
            return Ok((users, groups));
        }
        for (kind, ids, count) in [
            (Kind::Group, group_ids, &mut groups),
            (Kind::User, user_ids, &mut users),
        ] {
            for id in ids {
                match own.delete(kind, &id, None, actor) {
                    Ok(()) => *count += 1,
                    // Deleted meanwhile (a group's deletion does not delete its users).
                    Err(IdentityError::NotFound(_)) => {}
                    Err(e) => return Err(AdminError::Internal(e.to_string())),
                }
            }
        }
    }
}
