//! Admin API errors, as JSON `{"status": .., "error": ..}`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use crate::storage::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Conflict(String),
    #[error("internal error")]
    Internal(String),
    #[error("the database is unavailable; try again shortly")]
    Unavailable(String),
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        if e.is_unavailable() {
            AdminError::Unavailable(e.to_string())
        } else {
            AdminError::Internal(e.to_string())
        }
    }
}

impl ResponseError for AdminError {
    fn status_code(&self) -> StatusCode {
        match self {
            AdminError::NotFound(_) => StatusCode::NOT_FOUND,
            AdminError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AdminError::Conflict(_) => StatusCode::CONFLICT,
            AdminError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            AdminError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        match self {
            AdminError::Internal(cause) => tracing::error!(%cause, "admin API internal error"),
            AdminError::Unavailable(cause) => {
                tracing::warn!(%cause, "admin API: database unavailable");
                response.insert_header(("Retry-After", "1"));
            }
            _ => {}
        }
        response.content_type("application/json").body(
            json!({"status": self.status_code().as_u16(), "error": self.to_string()}).to_string(),
        )
    }
}
