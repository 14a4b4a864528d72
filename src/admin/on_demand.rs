//! `POST /admin/provision-on-demand` `{"userId", "target"}`: runs one user's plan on one target
//! now and answers with the step-by-step trace and the order it is recorded as.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::orders::order_json;
use super::targets::{find, not_found};
use super::{blocking, AdminError, AdminState};
use crate::identity::IdentityError;
use crate::provisioning::operator::{self, Started};
use crate::provisioning::{on_demand, Target};
use crate::scim::projection::Projection;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Body {
    user_id: String,
    target: String,
}

/// How long the run holds its order; past it (the process died), the workers take it over.
const LEASE_MICROS: i64 = 10 * 60 * 1_000_000;

pub async fn run(
    state: web::Data<AdminState>,
    raw: web::Bytes,
) -> Result<HttpResponse, AdminError> {
    let body: Body = serde_json::from_slice(&raw).map_err(|e| {
        AdminError::BadRequest(format!(
            "send {{\"userId\": \"...\", \"target\": \"...\"}}: {e}"
        ))
    })?;
    let (state2, name) = (state.clone(), body.target.clone());
    let known = blocking(move || find(&state2, &name)?.ok_or_else(|| not_found(&name))).await?;
    let config = known.config;
    if !config.enabled {
        return Err(AdminError::Conflict(format!(
            "target {:?} is disabled",
            config.name
        )));
    }
    if !config.users {
        return Err(AdminError::Conflict(format!(
            "target {:?} does not take users",
            config.name
        )));
    }
    let target = Target::from_config(&config)
        .map_err(|e| AdminError::Conflict(format!("the target cannot be used: {e}")))?;
    let (directory, user_id) = (state.directory.clone(), body.user_id.clone());
    blocking(
        move || match directory.get_user(&user_id, &Projection::default()) {
            Ok(_) => Ok(()),
            Err(IdentityError::NotFound(_)) => {
                Err(AdminError::NotFound(format!("no user {user_id:?}")))
            }
            Err(e) => Err(AdminError::Internal(e.to_string())),
        },
    )
    .await?;
    let owner = format!("on-demand:{}", uuid::Uuid::new_v4());
    let (db, name, user_id, lease_owner) = (
        state.db.clone(),
        config.name.clone(),
        body.user_id.clone(),
        owner.clone(),
    );
    let order = match blocking(move || {
        Ok(operator::start_on_demand(
            &db,
            &name,
            &user_id,
            &lease_owner,
            LEASE_MICROS,
        )?)
    })
    .await?
    {
        Started::Order(order) => *order,
        Started::Busy(open) => {
            let listed: Vec<String> = open
                .iter()
                .map(|o| format!("{} ({})", o.id, o.state.as_str()))
                .collect();
            return Err(AdminError::Conflict(format!(
                "user {:?} has open orders on {:?}: {}; they go out first, in order",
                body.user_id,
                config.name,
                listed.join(", ")
            )));
        }
    };
    let id = order.id;
    let trace = on_demand::run(&state.directory, target, order, &owner).await;
    let db = state.db.clone();
    let order = blocking(move || {
        operator::order(&db, id)?
            .ok_or_else(|| AdminError::Internal(format!("order {id} vanished")))
    })
    .await?;
    Ok(HttpResponse::Ok().json(json!({
        "order": order_json(&order),
        "trace": trace,
    })))
}
