//! Creating and editing a target in a form. The common settings have fields of their own;
//! every other setting is JSON in the config file's vocabulary. The form becomes the same
//! settings document the admin API takes, and goes through the same catalogue and checks.
//! A refused form comes back filled in, with what is wrong.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::session::{acting_as, html, redirect_saying, Operator};
use crate::admin::AdminState;
use crate::auth::Role;
use crate::catalog::{self, redacted, CatalogError};
use crate::targets::{AuthKind, TargetConfig};

/// The settings with fields of their own on the form; the "other settings" JSON may not
/// repeat them.
const OWN_FIELDS: [&str; 9] = [
    "name",
    "kind",
    "url",
    "enabled",
    "users",
    "users_filter",
    "groups",
    "deprovision",
    "auth",
];

/// The form as posted. Missing fields are empty (an unchecked box is absent), so a form
/// without its CSRF token is refused as such.
#[derive(Deserialize, Default, Clone)]
#[serde(default)]
pub struct TargetForm {
    csrf: String,
    /// The version the edit form was read at; empty when creating.
    version: String,
    name: String,
    kind: String,
    url: String,
    enabled: Option<String>,
    users: Option<String>,
    users_filter: String,
    groups: Option<String>,
    deprovision: String,
    auth_type: String,
    username: String,
    /// The token, password or client secret, by `auth_type`; empty keeps the stored one.
    secret: String,
    token_url: String,
    client_id: String,
    scope: String,
    /// Every other setting, as a JSON object.
    other: String,
}

/// A field's text, unless it is empty.
fn given(text: &str) -> Option<&str> {
    Some(text.trim()).filter(|t| !t.is_empty())
}

impl TargetForm {
    /// The form of a new target: a SCIM target with bearer auth, users and groups.
    fn blank() -> TargetForm {
        TargetForm {
            kind: "scim".into(),
            auth_type: "bearer".into(),
            enabled: Some("on".into()),
            users: Some("on".into()),
            groups: Some("on".into()),
            deprovision: "delete".into(),
            other: "{}".into(),
            ..TargetForm::default()
        }
    }

    /// The form of a stored target: its settings, secrets left out.
    fn of(config: &TargetConfig, version: i64) -> TargetForm {
        let mut other = match redacted(config) {
            Value::Object(settings) => settings,
            _ => Map::new(),
        };
        for key in OWN_FIELDS {
            other.remove(key);
        }
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        let checked = |on: bool| on.then(|| "on".to_string());
        let auth = &config.auth;
        TargetForm {
            csrf: String::new(),
            version: version.to_string(),
            name: config.name.clone(),
            kind: config.kind.as_str().into(),
            url: config.url.clone(),
            enabled: checked(config.enabled),
            users: checked(config.users),
            users_filter: text(&config.users_filter),
            groups: checked(config.groups),
            deprovision: config.deprovision.as_str().into(),
            auth_type: auth.kind.map_or("none", AuthKind::as_str).into(),
            username: text(&auth.username),
            secret: String::new(),
            token_url: text(&auth.token_url),
            client_id: text(&auth.client_id),
            scope: text(&auth.scope),
            other: serde_json::to_string_pretty(&other).unwrap_or_else(|_| "{}".into()),
        }
    }

    /// The settings document the form stands for, read as the admin API reads its body.
    fn settings(&self) -> Result<TargetConfig, CatalogError> {
        let invalid = |why: String| CatalogError::Invalid(why);
        let mut settings = match self.other.trim() {
            "" => Map::new(),
            other => match serde_json::from_str::<Value>(other) {
                Ok(Value::Object(settings)) => settings,
                Ok(_) => return Err(invalid("Other settings: write a JSON object, {…}".into())),
                Err(e) => return Err(invalid(format!("Other settings are not valid JSON: {e}"))),
            },
        };
        if let Some(key) = OWN_FIELDS.iter().find(|k| settings.contains_key(**k)) {
            return Err(invalid(format!(
                "Other settings: set {key:?} with its own field above"
            )));
        }
        settings.insert("name".into(), json!(self.name.trim()));
        settings.insert("kind".into(), json!(self.kind));
        settings.insert("enabled".into(), json!(self.enabled.is_some()));
        settings.insert("users".into(), json!(self.users.is_some()));
        settings.insert("groups".into(), json!(self.groups.is_some()));
        settings.insert("deprovision".into(), json!(self.deprovision));
        if let Some(url) = given(&self.url) {
            settings.insert("url".into(), json!(url));
        }
        if let Some(filter) = given(&self.users_filter) {
            settings.insert("users_filter".into(), json!(filter));
        }
        let mut auth = Map::new();
        auth.insert("type".into(), json!(self.auth_type));
        let secret_field = match self.auth_type.as_str() {
            "bearer" => Some("token"),
            "basic" | "simple" => Some("password"),
            "oauth_client_credentials" => Some("client_secret"),
            _ => None,
        };
        if let (Some(field), Some(secret)) = (secret_field, given(&self.secret)) {
            auth.insert(field.into(), json!(secret));
        }
        for (field, value) in [
            ("username", &self.username),
            ("token_url", &self.token_url),
            ("client_id", &self.client_id),
            ("scope", &self.scope),
        ] {
            if let Some(value) = given(value) {
                auth.insert(field.into(), json!(value));
            }
        }
        settings.insert("auth".into(), Value::Object(auth));
        let body = serde_json::to_vec(&Value::Object(settings))
            .map_err(|e| CatalogError::Internal(e.to_string()))?;
        catalog::parse(&body)
    }
}

#[derive(Template)]
#[template(path = "console/target_form.html")]
struct TargetFormPage {
    operator: Option<Operator>,
    flash: Option<String>,
    /// Editing a stored target (the name is fixed), not creating one.
    editing: bool,
    form: TargetForm,
    error: Option<String>,
    csrf: String,
}

fn form_page(operator: Operator, editing: bool, mut form: TargetForm) -> TargetFormPage {
    // A secret typed in is never sent back in a page.
    form.secret.clear();
    TargetFormPage {
        csrf: operator.csrf.clone(),
        operator: Some(operator),
        flash: None,
        editing,
        form,
        error: None,
    }
}

/// The form again, filled in as posted, saying why it was refused.
fn refused(
    operator: Operator,
    editing: bool,
    form: TargetForm,
    error: CatalogError,
) -> HttpResponse {
    let status = match &error {
        CatalogError::Invalid(_) => StatusCode::BAD_REQUEST,
        CatalogError::NotFound(_) => StatusCode::NOT_FOUND,
        CatalogError::Conflict(_) => StatusCode::CONFLICT,
        CatalogError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        CatalogError::Internal(why) => {
            tracing::error!(cause = %why, "a console target change failed");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    let mut page = form_page(operator, editing, form);
    page.error = Some(error.to_string());
    let mut response = html(page);
    if response.status() == StatusCode::OK {
        *response.status_mut() = status;
    }
    response
}

fn interrupted(error: actix_web::error::BlockingError) -> CatalogError {
    CatalogError::Internal(error.to_string())
}

/// The response that refuses a form to anyone but an admin.
fn unless_admin(operator: &Operator) -> Option<HttpResponse> {
    (!operator.may(Role::Admin))
        .then(|| super::session::forbidden("changing targets needs the admin role"))
}

/// `GET /ui/targets/new`
pub async fn new_form(operator: Operator) -> HttpResponse {
    match unless_admin(&operator) {
        Some(refused) => refused,
        None => html(form_page(operator, false, TargetForm::blank())),
    }
}

/// `GET /ui/targets/{name}/edit`
pub async fn edit_form(
    admin: web::Data<AdminState>,
    name: web::Path<String>,
    operator: Operator,
) -> HttpResponse {
    if let Some(refused) = unless_admin(&operator) {
        return refused;
    }
    let name = name.into_inner();
    let state = admin.clone();
    let n = name.clone();
    match web::block(move || catalog::stored(&state.db, &state.targets, &n)).await {
        Ok(Ok((config, row))) => html(form_page(
            operator,
            true,
            TargetForm::of(&config, row.version),
        )),
        Ok(Err(CatalogError::NotFound(why))) => HttpResponse::NotFound().body(why),
        Ok(Err(CatalogError::Conflict(why))) => HttpResponse::Conflict().body(why),
        _ => HttpResponse::ServiceUnavailable().body("the database is unavailable; try again"),
    }
}

/// `POST /ui/targets`: creates the target the form describes.
pub async fn create(
    req: HttpRequest,
    admin: web::Data<AdminState>,
    form: web::Form<TargetForm>,
) -> HttpResponse {
    let form = form.into_inner();
    let operator = match acting_as(&req, &admin, &form.csrf, Role::Admin).await {
        Ok(operator) => operator,
        Err(response) => return response,
    };
    let config = match form.settings() {
        Ok(config) => config,
        Err(error) => return refused(operator, false, form, error),
    };
    let name = config.name.clone();
    let state = admin.clone();
    match web::block(move || catalog::create(&state.db, &state.targets, &config)).await {
        Ok(Ok(_)) => {
            tracing::info!(actor = %operator.actor, target = %name, "console created a target");
            redirect_saying("/ui/targets", &format!("{name} created"))
        }
        Ok(Err(error)) => refused(operator, false, form, error),
        Err(error) => refused(operator, false, form, interrupted(error)),
    }
}

/// `POST /ui/targets/{name}`: replaces the target's settings with the form's, unless it was
/// changed since the form was read.
pub async fn save(
    req: HttpRequest,
    admin: web::Data<AdminState>,
    name: web::Path<String>,
    form: web::Form<TargetForm>,
) -> HttpResponse {
    let mut form = form.into_inner();
    let operator = match acting_as(&req, &admin, &form.csrf, Role::Admin).await {
        Ok(operator) => operator,
        Err(response) => return response,
    };
    let name = name.into_inner();
    // The name is the URL's: a target is not renamed.
    form.name = name.clone();
    let Ok(version) = form.version.trim().parse::<i64>() else {
        let why = "the form has no version; open it again".to_string();
        return refused(operator, true, form, CatalogError::Invalid(why));
    };
    let config = match form.settings() {
        Ok(config) => config,
        Err(error) => return refused(operator, true, form, error),
    };
    let state = admin.clone();
    let n = name.clone();
    let saved =
        web::block(move || catalog::replace(&state.db, &state.targets, &n, config, Some(version)))
            .await;
    match saved {
        Ok(Ok(_)) => {
            tracing::info!(actor = %operator.actor, target = %name, "console changed a target");
            redirect_saying("/ui/targets", &format!("{name} saved"))
        }
        Ok(Err(error)) => refused(operator, true, form, error),
        Err(error) => refused(operator, true, form, interrupted(error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::targets::TargetAuth;

    fn ldap() -> TargetConfig {
        let mut config = TargetConfig::scim("dir", "ldap://127.0.0.1:389");
        config.kind = crate::targets::TargetKind::Ldap;
        config.users_filter = Some("active eq true".into());
        config.groups = false;
        config.max_attempts = 7;
        config.auth = TargetAuth {
            kind: Some(AuthKind::Simple),
            username: Some("cn=admin,dc=example,dc=org".into()),
            password: Some("secret".into()),
            ..TargetAuth::default()
        };
        config
    }

    #[test]
    fn a_stored_target_reads_back_from_its_form_but_for_the_secret() {
        let config = ldap();
        let form = TargetForm::of(&config, 3);
        assert!(!form.other.contains("secret") && !form.other.contains("\"auth\""));
        assert_eq!(form.version, "3");
        let read = form.settings().expect("settings");
        let mut expected = config.clone();
        expected.auth.password = None;
        assert_eq!(
            serde_json::to_value(&read).expect("json"),
            serde_json::to_value(&expected).expect("json")
        );
        let mut typed = form.clone();
        typed.secret = "new".into();
        assert_eq!(
            typed.settings().expect("settings").auth.password.as_deref(),
            Some("new")
        );
    }

    #[test]
    fn other_settings_must_be_an_object_without_the_fields_above() {
        let mut form = TargetForm::blank();
        form.name = "t".into();
        for (other, why) in [
            ("[1]", "JSON object"),
            ("{", "not valid JSON"),
            ("{\"url\": \"https://x\"}", "its own field"),
        ] {
            form.other = other.into();
            let error = form.settings().expect_err(other).to_string();
            assert!(error.contains(why), "{other}: {error}");
        }
        form.other = "  ".into();
        assert!(form.settings().is_ok(), "empty is no other settings");
    }
}
