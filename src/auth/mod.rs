//! Who is calling: bearer tokens checked against API tokens in the database or a JWT issuer.
//! The resulting [`Principal`] names the actor recorded with every change.

pub mod api_token;
mod jwt;

pub use jwt::JwtVerifier;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::clock::{Clock, Micros};

use crate::config::{AuthConfig, ConfigError};
use crate::storage::{connections, tokens, Db, StoreError};

/// What a token may be used for: identity providers' SCIM traffic, or the admin API at one of
/// three levels, each allowing what the one before it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Scim,
    /// Reads the admin API.
    Viewer,
    /// Also acts on orders: retry, cancel, approve, decline, work items, on-demand, sync.
    Operator,
    /// Also changes targets (and everything else).
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Scim, Role::Viewer, Role::Operator, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Scim => "scim",
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == text)
    }

    /// Whether a token of this role may use the admin API at the `needed` level.
    pub fn allows(self, needed: Role) -> bool {
        self != Role::Scim && self >= needed
    }
}

/// An authenticated client.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    /// `token:NAME` for API tokens, `jwt:SUBJECT` for JWTs: the change log's actor.
    pub actor: String,
    pub role: Role,
    /// The connection an identity provider's token serves (JWTs: the default one); admin
    /// tokens serve none.
    pub connection: Option<String>,
    /// That connection's own settings, read with the token.
    pub settings: crate::connections::ConnectionSettings,
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

/// How often a token's last use is written, at most (per instance).
const LAST_USE_EVERY: Micros = 60_000_000;

#[derive(Clone)]
pub struct Authenticator {
    db: Db,
    jwt: Option<JwtVerifier>,
    cache: std::sync::Arc<TokenCache>,
}

/// Recently verified API tokens, by hash, so a busy IdP does not cost a database read per
/// request. A revoked token keeps working until its entry expires (`token_cache_seconds`); an
/// expiring token's entry never outlives the token.
struct TokenCache {
    ttl: Micros,
    /// The database handle's clock: entries expire as the rest of the process sees time.
    clock: Clock,
    entries: Mutex<HashMap<String, (Principal, Micros)>>,
}

impl TokenCache {
    const MAX_ENTRIES: usize = 10_000;

    fn get(&self, hash: &str) -> Option<Principal> {
        let entries = self.entries.lock().ok()?;
        let now = self.clock.now_micros();
        entries
            .get(hash)
            .filter(|(_, expires)| *expires > now)
            .map(|(p, _)| p.clone())
    }

    fn put(&self, hash: String, principal: Principal, token_expires_at: Option<Micros>) {
        if self.ttl == 0 {
            return;
        }
        if let Ok(mut entries) = self.entries.lock() {
            let now = self.clock.now_micros();
            if entries.len() >= Self::MAX_ENTRIES {
                entries.retain(|_, (_, expires)| *expires > now);
            }
            if entries.len() < Self::MAX_ENTRIES {
                let until = token_expires_at.map_or(now + self.ttl, |at| at.min(now + self.ttl));
                entries.insert(hash, (principal, until));
            }
        }
    }
}

impl Authenticator {
    pub fn new(db: Db, config: &AuthConfig) -> Result<Authenticator, ConfigError> {
        let jwt = config.jwt.as_ref().map(JwtVerifier::new).transpose()?;
        let ttl = Duration::from_secs(config.token_cache_seconds).as_micros();
        let cache = std::sync::Arc::new(TokenCache {
            ttl: Micros::try_from(ttl).unwrap_or(Micros::MAX),
            clock: db.clock().clone(),
            entries: Mutex::new(HashMap::new()),
        });
        Ok(Authenticator { db, jwt, cache })
    }

    /// Checks a bearer token without I/O when it can: JWTs are verified in memory and recently
    /// seen API tokens come from the cache. `None` means the database must be asked
    /// ([`Authenticator::authenticate`]).
    pub fn authenticate_in_memory(&self, token: &str) -> Option<Result<Principal, AuthError>> {
        if let Some(verifier) = &self.jwt {
            if jwt::looks_like_jwt(token) {
                return Some(verifier.verify(token).map(|subject| Principal {
                    actor: format!("jwt:{subject}"),
                    role: Role::Scim,
                    connection: Some(crate::identity::DEFAULT_CONNECTION.to_string()),
                    settings: Default::default(),
                }));
            }
        }
        self.cache.get(&api_token::hash(token)).map(Ok)
    }

    /// Checks a bearer token. Blocking: it may read the database.
    pub fn authenticate(&self, token: &str) -> Result<Principal, AuthError> {
        if let Some(verdict) = self.authenticate_in_memory(token) {
            return verdict;
        }
        let hash = api_token::hash(token);
        let now = self.db.clock().now_micros();
        let row = self
            .db
            .read(|conn| tokens::find_active_by_hash(conn, &hash, now))?
            .ok_or(AuthError::InvalidToken)?;
        let role = Role::parse(&row.role).unwrap_or(Role::Scim);
        // An identity provider's token works while its connection exists and is enabled.
        let (connection, settings) = match (role, row.connection) {
            (Role::Scim, connection) => {
                let name =
                    connection.unwrap_or_else(|| crate::identity::DEFAULT_CONNECTION.to_string());
                let Some(found) = self
                    .db
                    .read(|conn| connections::find(conn, &name))?
                    .filter(|c| c.enabled)
                else {
                    return Err(AuthError::InvalidToken);
                };
                // Settings are checked when written; unreadable ones fall back to the server's.
                let settings = crate::connections::ConnectionSettings::parse(&found.settings)
                    .unwrap_or_default();
                (Some(name), settings)
            }
            (_, _) => (None, Default::default()),
        };
        let principal = Principal {
            actor: format!("token:{}", row.name),
            // A role this release does not know grants nothing beyond SCIM.
            role,
            connection,
            settings,
        };
        if row.last_used_at.is_none_or(|at| now - at >= LAST_USE_EVERY) {
            // Knowing when a token was last used is worth a write a minute, not a failed call.
            if let Err(error) = self.db.write(|tx| tokens::used(tx, &row.id)) {
                tracing::warn!(%error, token = %row.name, "the token's last use was not recorded");
            }
        }
        self.cache.put(hash, principal.clone(), row.expires_at);
        Ok(principal)
    }
}
