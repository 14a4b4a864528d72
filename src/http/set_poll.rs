//! `POST /events/{subscription}`: RFC 8936 poll delivery of SETs. The receiver authenticates
//! with its subscription's secret as a bearer token.

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use crate::events::poll::{self, PollError, PollRequest};
use crate::events::set::SetSigner;
use crate::storage::Db;

/// What the poll endpoint reads.
pub struct PollState {
    pub db: Db,
    pub signer: Option<Arc<SetSigner>>,
    pub long_poll: Duration,
}

pub async fn poll(
    state: web::Data<PollState>,
    req: HttpRequest,
    name: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|t| t.trim().to_string());
    let Some(signer) = state.signer.clone() else {
        return HttpResponse::NotFound().finish();
    };
    // RFC 8936 §2.5.1: a request that cannot be used is a 400 (its body is not defined).
    let request: PollRequest = if body.iter().all(u8::is_ascii_whitespace) {
        PollRequest::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(request) => request,
            Err(e) => return HttpResponse::BadRequest().body(format!("invalid poll request: {e}")),
        }
    };
    let db = state.db.clone();
    let name = name.into_inner();
    let authorized = web::block(move || poll::authorize(&db, &name, bearer.as_deref())).await;
    let subscription = match authorized {
        Ok(Ok(subscription)) => subscription,
        Ok(Err(PollError::Unauthorized)) => {
            return HttpResponse::Unauthorized()
                .insert_header((header::WWW_AUTHENTICATE, "Bearer"))
                .finish()
        }
        Ok(Err(error)) => return failure(error),
        Err(_) => return HttpResponse::ServiceUnavailable().finish(),
    };
    match poll::poll(&state.db, &signer, &subscription, request, state.long_poll).await {
        Ok(answer) => HttpResponse::Ok().json(answer),
        Err(error) => failure(error),
    }
}

fn failure(error: PollError) -> HttpResponse {
    match error {
        PollError::Unauthorized => HttpResponse::Unauthorized()
            .insert_header((header::WWW_AUTHENTICATE, "Bearer"))
            .finish(),
        PollError::Invalid(message) => HttpResponse::BadRequest().body(message),
        PollError::Events(error) => {
            tracing::warn!(%error, "SET poll failed");
            HttpResponse::ServiceUnavailable()
                .insert_header((header::RETRY_AFTER, "1"))
                .finish()
        }
    }
}
