//! Signing in and out, and who is signed in. An admin-API token is exchanged for a session:
//! a random cookie (HttpOnly, SameSite=Strict, Secure behind TLS) whose hash finds the session
//! in the database, so every instance knows it; forms carry the session's CSRF token.

use actix_web::cookie::{time::Duration as CookieAge, Cookie, SameSite};
use actix_web::error::InternalError;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use base64::Engine as _;
use rand::RngCore;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::admin::AdminState;
use crate::auth::{Authenticator, Role};
use crate::storage::console_sessions;

const SESSION_COOKIE: &str = "scimgate_session";
/// The sign-in form's own CSRF token (double submit: cookie and field must match).
const LOGIN_COOKIE: &str = "scimgate_login";
/// How long a sign-in lasts.
const SESSION_HOURS: i64 = 8;

/// The signed-in operator.
#[derive(Debug, Clone)]
pub struct Operator {
    pub actor: String,
    pub role: String,
    pub csrf: String,
}

impl Operator {
    /// Whether the operator's role may do what an operator does (retry, cancel, approve).
    pub fn may_act(&self) -> bool {
        self.may(Role::Operator)
    }

    /// Whether the operator's role allows what `needed` may do (changing targets: admin).
    pub fn may(&self, needed: Role) -> bool {
        Role::parse(&self.role).is_some_and(|r| r.allows(needed))
    }
}

#[derive(Template)]
#[template(path = "console/login.html")]
struct LoginPage {
    operator: Option<Operator>,
    flash: Option<String>,
    csrf: String,
    error: Option<String>,
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Whether two secrets match, compared by digest so the time taken tells nothing.
pub fn same_secret(a: &str, b: &str) -> bool {
    Sha256::digest(a.as_bytes()) == Sha256::digest(b.as_bytes())
}

fn secure(req: &HttpRequest) -> bool {
    req.connection_info().scheme() == "https"
}

fn cookie<'a>(req: &HttpRequest, name: &'a str, value: String, path: &'a str) -> Cookie<'a> {
    Cookie::build(name, value)
        .path(path)
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure(req))
        .finish()
}

pub fn redirect(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .finish()
}

pub fn html(page: impl Template) -> HttpResponse {
    match page.render() {
        Ok(body) => HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .body(body),
        Err(error) => {
            tracing::error!(%error, "a console page could not be rendered");
            HttpResponse::InternalServerError().body("the page could not be rendered")
        }
    }
}

fn login_page(req: &HttpRequest, error: Option<String>, status: u16) -> HttpResponse {
    let csrf = random_token();
    let page = LoginPage {
        operator: None,
        flash: None,
        csrf: csrf.clone(),
        error,
    };
    let mut response = html(page);
    *response.status_mut() =
        actix_web::http::StatusCode::from_u16(status).unwrap_or(actix_web::http::StatusCode::OK);
    let _ = response.add_cookie(&cookie(req, LOGIN_COOKIE, csrf, "/ui/login"));
    response
}

/// `GET /ui/login`
pub async fn login_form(req: HttpRequest) -> HttpResponse {
    login_page(&req, None, 200)
}

/// Missing fields are empty, so a form without its CSRF token is refused as such.
#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    csrf: String,
}

/// `POST /ui/login`: an admin-API token (viewer, operator or admin) starts a session.
pub async fn login(
    req: HttpRequest,
    form: web::Form<LoginForm>,
    authenticator: web::Data<Authenticator>,
    admin: web::Data<AdminState>,
) -> HttpResponse {
    let expected = req.cookie(LOGIN_COOKIE).map(|c| c.value().to_string());
    if !expected.is_some_and(|e| same_secret(&e, &form.csrf)) {
        return login_page(&req, Some("The form expired; sign in again.".into()), 403);
    }
    let token = form.token.trim().to_string();
    let verdict = web::block(move || authenticator.authenticate(&token)).await;
    let principal = match verdict {
        Ok(Ok(principal)) if principal.role != Role::Scim => principal,
        Ok(Ok(_)) => {
            let why = "This token is for the SCIM API; the console needs an admin-API token.";
            return login_page(&req, Some(why.into()), 403);
        }
        _ => return login_page(&req, Some("That token is not valid.".into()), 401),
    };
    let (session, csrf) = (random_token(), random_token());
    let db = admin.db.clone();
    let expires = db.clock().now_micros() + SESSION_HOURS * 3_600_000_000;
    let (value, actor, role) = (
        session.clone(),
        principal.actor.clone(),
        principal.role.as_str(),
    );
    let started =
        web::block(move || console_sessions::start(&db, &value, &actor, role, &csrf, expires))
            .await;
    if !matches!(started, Ok(Ok(()))) {
        return login_page(
            &req,
            Some("The database is unavailable; try again.".into()),
            503,
        );
    }
    tracing::info!(actor = %principal.actor, "console sign-in");
    let mut session_cookie = cookie(&req, SESSION_COOKIE, session, "/ui");
    session_cookie.set_max_age(CookieAge::hours(SESSION_HOURS));
    let mut spent = cookie(&req, LOGIN_COOKIE, String::new(), "/ui/login");
    spent.make_removal();
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/ui"))
        .cookie(session_cookie)
        .cookie(spent)
        .finish()
}

/// A form that only carries the session's CSRF token (missing: empty, and refused).
#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

/// `POST /ui/logout`
pub async fn logout(
    req: HttpRequest,
    form: web::Form<CsrfForm>,
    admin: web::Data<AdminState>,
) -> HttpResponse {
    let operator = match signed_in(&req, &admin).await {
        Ok(operator) => operator,
        Err(response) => return response,
    };
    if !same_secret(&operator.csrf, &form.csrf) {
        return forbidden("the form's CSRF token is missing or wrong");
    }
    if let Some(value) = req.cookie(SESSION_COOKIE).map(|c| c.value().to_string()) {
        let db = admin.db.clone();
        let _ = web::block(move || console_sessions::end(&db, &value)).await;
    }
    tracing::info!(actor = %operator.actor, "console sign-out");
    let mut gone = cookie(&req, SESSION_COOKIE, String::new(), "/ui");
    gone.make_removal();
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/ui/login"))
        .cookie(gone)
        .finish()
}

pub fn forbidden(why: &str) -> HttpResponse {
    HttpResponse::Forbidden()
        .content_type("text/plain; charset=utf-8")
        .body(format!("refused: {why}"))
}

/// The operator of a form that changes something: signed in, with the session's CSRF token,
/// and a role that may act (operator or admin); otherwise the response that refuses it.
pub async fn acting(
    req: &HttpRequest,
    admin: &AdminState,
    csrf: &str,
) -> Result<Operator, HttpResponse> {
    acting_as(req, admin, csrf, Role::Operator).await
}

/// As [`acting`], for a form that needs the role `needed` (the admin API's role for the same
/// action).
pub async fn acting_as(
    req: &HttpRequest,
    admin: &AdminState,
    csrf: &str,
    needed: Role,
) -> Result<Operator, HttpResponse> {
    let operator = signed_in(req, admin).await?;
    if !same_secret(&operator.csrf, csrf) {
        return Err(forbidden("the form's CSRF token is missing or wrong"));
    }
    if !operator.may(needed) {
        return Err(forbidden(&format!(
            "this needs the {} role; a {} may not do it",
            needed.as_str(),
            operator.role
        )));
    }
    Ok(operator)
}

/// A redirect to `path` whose page shows `said` (the `done` query parameter).
pub fn redirect_saying(path: &str, said: &str) -> HttpResponse {
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("done", said)
        .finish();
    redirect(&format!("{path}?{query}"))
}

/// What the previous action came to, shown at the top of the page it redirected to.
#[derive(Deserialize)]
pub struct Flash {
    pub done: Option<String>,
}

/// A page handler takes the signed-in operator as an argument; a request without a live
/// session gets the response [`signed_in`] gives instead (to the sign-in page, or 503).
impl actix_web::FromRequest for Operator {
    type Error = actix_web::Error;
    type Future = futures_util::future::LocalBoxFuture<'static, Result<Operator, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let refused = |response| InternalError::from_response("not signed in", response);
            let Some(admin) = req.app_data::<web::Data<AdminState>>().cloned() else {
                return Err(refused(HttpResponse::InternalServerError().finish()).into());
            };
            signed_in(&req, &admin)
                .await
                .map_err(|response| refused(response).into())
        })
    }
}

/// The operator of the request's session, or the response that sends the browser to sign in.
pub async fn signed_in(req: &HttpRequest, admin: &AdminState) -> Result<Operator, HttpResponse> {
    let Some(value) = req.cookie(SESSION_COOKIE).map(|c| c.value().to_string()) else {
        return Err(redirect("/ui/login"));
    };
    let db = admin.db.clone();
    let now = db.clock().now_micros();
    let found = web::block(move || db.read(|c| console_sessions::find(c, &value, now))).await;
    match found {
        Ok(Ok(Some(session))) => Ok(Operator {
            actor: session.actor,
            role: session.role,
            csrf: session.csrf,
        }),
        Ok(Ok(None)) => Err(redirect("/ui/login")),
        _ => Err(HttpResponse::ServiceUnavailable().body("the database is unavailable")),
    }
}
