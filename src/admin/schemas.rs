//! `/admin/schemas`: custom extension schemas for users and groups, declared in RFC 7643 §7
//! form. List, read, declare, replace (attributes keep their type) and remove (once no
//! resource holds values of it). The config file's declarations are listed, read-only.
//! Other instances serve a change within `extensions::REFRESH_EVERY`.

use actix_web::http::header::{IF_MATCH, LOCATION};
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::{blocking, time, AdminError, AdminState};
use crate::extensions::{self, Declared, ExtensionError};
use crate::scim::schema::declaration::ExtensionDeclaration;

impl From<ExtensionError> for AdminError {
    fn from(error: ExtensionError) -> Self {
        match error {
            ExtensionError::Invalid(why) => AdminError::BadRequest(why),
            ExtensionError::NotFound(why) => AdminError::NotFound(why),
            ExtensionError::Conflict(why) => AdminError::Conflict(why),
            ExtensionError::Storage(e) => AdminError::from(e),
        }
    }
}

fn view(declared: &Declared) -> Value {
    let mut doc = serde_json::to_value(&declared.declaration).unwrap_or(Value::Null);
    let source = match &declared.stored {
        Some(row) => json!({
            "source": "api",
            "version": row.version,
            "created": time(row.created_at),
            "lastModified": time(row.updated_at),
        }),
        None => json!({"source": "config"}),
    };
    if let (Value::Object(doc), Value::Object(source)) = (&mut doc, source) {
        doc.extend(source);
    }
    doc
}

fn parse(body: &[u8]) -> Result<ExtensionDeclaration, AdminError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| AdminError::BadRequest(format!("the body is not JSON: {e}")))?;
    let declaration = ExtensionDeclaration::from_json(value)
        .map_err(|e| AdminError::BadRequest(format!("invalid extension schema: {e}")))?;
    declaration.check().map_err(AdminError::BadRequest)?;
    Ok(declaration)
}

/// `If-Match: 3` (or `"3"`): replace only version 3.
fn expected_version(req: &HttpRequest) -> Result<Option<i64>, AdminError> {
    let Some(header) = req.headers().get(IF_MATCH) else {
        return Ok(None);
    };
    header
        .to_str()
        .ok()
        .map(|v| v.trim().trim_start_matches("W/").trim_matches('"'))
        .and_then(|v| v.parse().ok())
        .map(Some)
        .ok_or_else(|| AdminError::BadRequest("If-Match must carry the schema's version".into()))
}

/// `GET /admin/schemas`
pub async fn list(state: web::Data<AdminState>) -> Result<HttpResponse, AdminError> {
    let all = blocking(move || Ok(extensions::list(&state.db, &state.schema_extensions)?)).await?;
    Ok(HttpResponse::Ok().json(json!({ "schemas": all.iter().map(view).collect::<Vec<_>>() })))
}

/// `GET /admin/schemas/{urn}`
pub async fn get(
    state: web::Data<AdminState>,
    urn: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let urn = urn.into_inner();
    let all = blocking(move || Ok(extensions::list(&state.db, &state.schema_extensions)?)).await?;
    let found = all
        .iter()
        .find(|d| d.declaration.id.eq_ignore_ascii_case(&urn))
        .ok_or_else(|| AdminError::NotFound(format!("no extension schema {urn:?}")))?;
    Ok(HttpResponse::Ok().json(view(found)))
}

/// `POST /admin/schemas`: the schema in RFC 7643 §7 form, with `resourceTypes`.
pub async fn create(
    state: web::Data<AdminState>,
    body: web::Bytes,
) -> Result<HttpResponse, AdminError> {
    let declaration = parse(&body)?;
    let declared = blocking(move || {
        Ok(extensions::declare(
            &state.db,
            &state.schema_extensions,
            declaration,
        )?)
    })
    .await?;
    Ok(HttpResponse::Created()
        .insert_header((
            LOCATION,
            format!("/admin/schemas/{}", declared.declaration.id),
        ))
        .json(view(&declared)))
}

/// `PUT /admin/schemas/{urn}`
pub async fn replace(
    state: web::Data<AdminState>,
    req: HttpRequest,
    urn: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AdminError> {
    let declaration = parse(&body)?;
    let version = expected_version(&req)?;
    let urn = urn.into_inner();
    let declared = blocking(move || {
        Ok(extensions::replace(
            &state.db,
            &state.schema_extensions,
            &urn,
            version,
            declaration,
        )?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(view(&declared)))
}

/// `DELETE /admin/schemas/{urn}`
pub async fn delete(
    state: web::Data<AdminState>,
    urn: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let urn = urn.into_inner();
    blocking(move || {
        Ok(extensions::remove(
            &state.db,
            &state.schema_extensions,
            &urn,
        )?)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
