//! Who is calling: bearer tokens checked against API tokens in the database or a JWT issuer.
//! The resulting [`Principal`] names the actor recorded with every change.

pub mod api_token;
mod jwt;

pub use jwt::JwtVerifier;

use crate::config::{AuthConfig, ConfigError};
use crate::storage::{tokens, Db, StoreError};

/// An authenticated client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// `token:NAME` for API tokens, `jwt:SUBJECT` for JWTs: the change log's actor.
    pub actor: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("the bearer token is not valid")]
    InvalidToken,
    #[error("the JWT was rejected: {0}")]
    InvalidJwt(String),
    #[error(transparent)]
    Storage(#[from] StoreError),
}

#[derive(Clone)]
pub struct Authenticator {
    db: Db,
    jwt: Option<JwtVerifier>,
}

impl Authenticator {
    pub fn new(db: Db, config: &AuthConfig) -> Result<Authenticator, ConfigError> {
        let jwt = config.jwt.as_ref().map(JwtVerifier::new).transpose()?;
        Ok(Authenticator { db, jwt })
    }

    /// Checks a bearer token. Blocking: it may read the database.
    pub fn authenticate(&self, token: &str) -> Result<Principal, AuthError> {
        if let Some(verifier) = &self.jwt {
            if jwt::looks_like_jwt(token) {
                let subject = verifier.verify(token)?;
                return Ok(Principal {
                    actor: format!("jwt:{subject}"),
                });
            }
        }
        let hash = api_token::hash(token);
        let row = self
            .db
            .read(|conn| tokens::find_active_by_hash(conn, &hash))?
            .ok_or(AuthError::InvalidToken)?;
        Ok(Principal {
            actor: format!("token:{}", row.name),
        })
    }
}
