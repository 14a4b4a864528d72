//! Configuration: defaults, then a TOML file, then environment variables (env wins).
//!
//! Environment variables are `SCIMGATE_` + the key, nested keys joined by `__`
//! (`SCIMGATE_AUTH__JWT__ISSUER`); `DATABASE_URL` is honoured as well as
//! `SCIMGATE_DATABASE_URL`. Secrets may also come from files (`secret_file`).

use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

use crate::targets::{SettingsError, TargetConfig};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP server binds, e.g. `127.0.0.1:8080`.
    pub listen: String,
    /// `sqlite://PATH` (the embedded default) or `postgres://...`.
    pub database_url: String,
    pub pool_size: u32,
    /// How long a request waits for a database connection before it is answered `503` with
    /// `Retry-After` (the database is down or every connection is busy).
    pub db_wait_ms: u64,
    /// The key that seals secrets stored in the database (targets created through the admin
    /// API): a file holding 32 random bytes in base64. On SQLite it defaults to `DATABASE.key`
    /// beside the database, created on first start; on PostgreSQL secrets cannot be stored
    /// without one.
    pub secret_key_file: Option<PathBuf>,
    /// The externally visible SCIM base URL used in `meta.location` and `$ref`, e.g.
    /// `https://idm.example.com/scim/v2`. Defaults to `http://LISTEN/scim/v2`.
    pub base_url: Option<String>,
    /// Largest request body accepted, in bytes (larger ones get 413).
    pub max_payload_bytes: usize,
    /// Page size when a list request names no `count`.
    pub default_page_size: i64,
    /// Largest page served; larger `count` values are lowered to it.
    pub max_page_size: i64,
    /// Answer a successful PATCH with `204 No Content` (RFC 7644 §3.5.2 allows either) instead
    /// of `200` with the resource.
    pub patch_returns_no_content: bool,
    /// Most operations one `/Bulk` request may carry (announced as `bulk.maxOperations`).
    pub bulk_max_operations: i64,
    /// Largest `/Bulk` body in bytes (announced as `bulk.maxPayloadSize`).
    pub bulk_max_payload_bytes: i64,
    pub auth: AuthConfig,
    /// Outbound targets that accepted changes are provisioned to.
    pub targets: Vec<TargetConfig>,
    /// Extension schemas for users and groups beyond core and enterprise, in RFC 7643 §7 form
    /// (`[[schema_extensions]]`). More can be declared through `/admin/schemas`.
    pub schema_extensions: Vec<crate::scim::schema::declaration::ExtensionDeclaration>,
    pub worker: WorkerConfig,
    /// Events out: webhooks, RFC 9967 SETs, the change feed.
    pub events: crate::events::EventsConfig,
    /// `GET /metrics` in Prometheus text format.
    pub metrics: MetricsConfig,
    /// `text` (the default; colours only on a terminal) or `json` (one object per line). Read
    /// from `SCIMGATE_LOG_FORMAT` like every other key.
    pub log_format: LogFormat,
    /// One log line per request: method, route pattern, status, latency and who asked.
    pub access_log: bool,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// `GET /metrics`: on by default; with a token (inline or from `token_file`), scrapers must
/// send it as a bearer token.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    pub enabled: bool,
    pub token: Option<String>,
    pub token_file: Option<PathBuf>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enabled: true,
            token: None,
            token_file: None,
        }
    }
}

impl MetricsConfig {
    /// The bearer token scrapers must send, if any.
    pub fn bearer_token(&self) -> Result<Option<String>, ConfigError> {
        match (&self.token, &self.token_file) {
            (Some(token), _) => Ok(Some(token.clone())),
            (None, Some(path)) => std::fs::read_to_string(path)
                .map(|t| Some(t.trim().to_string()))
                .map_err(|e| ConfigError(format!("metrics.token_file {}: {e}", path.display()))),
            (None, None) => Ok(None),
        }
    }
}

/// The delivery workers inside `scimgate serve` (and `scimgate worker`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkerConfig {
    pub enabled: bool,
    /// How often idle workers look for new work.
    pub poll_interval_ms: u64,
    /// How long a claimed order stays with its worker without word from it: a running worker
    /// renews its leases every third of this, so only a worker that died loses them.
    pub lease_seconds: u64,
    /// This instance's name, stable across its restarts and unique among the instances
    /// sharing one PostgreSQL database: a restart then gives back at once the orders its
    /// previous run held. Needless on SQLite (one instance: a restart gives back everything).
    pub instance: Option<String>,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            enabled: true,
            poll_interval_ms: 200,
            lease_seconds: 15,
            instance: None,
        }
    }
}

impl Config {
    /// Opens the configured database with `pool_size` connections, its connection wait and
    /// the key stored secrets are sealed with.
    pub fn open_database(
        &self,
        pool_size: u32,
    ) -> Result<crate::storage::Db, crate::storage::StoreError> {
        crate::storage::Db::open_configured(
            &self.database_url,
            pool_size,
            std::time::Duration::from_millis(self.db_wait_ms),
            self.secret_key_file.as_deref(),
        )
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Accept JWT bearer tokens from this issuer, besides API tokens.
    pub jwt: Option<JwtConfig>,
    /// How long a verified API token is remembered; a revoked token keeps working this long.
    /// 0 checks the database on every request.
    pub token_cache_seconds: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            jwt: None,
            token_cache_seconds: 5,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// `HS256`, `RS256` or `ES256`.
    pub algorithm: String,
    /// HS256 shared secret, or `secret_file` holding it.
    pub secret: Option<String>,
    pub secret_file: Option<PathBuf>,
    /// RS256/ES256 public key (PEM), inline or in `public_key_file`.
    pub public_key_pem: Option<String>,
    pub public_key_file: Option<PathBuf>,
    /// Required `iss` claim.
    pub issuer: String,
    /// Required `aud` claim.
    pub audience: String,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds.
    #[serde(default = "default_leeway")]
    pub leeway_seconds: u64,
}

fn default_leeway() -> u64 {
    30
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8080".into(),
            database_url: "sqlite://scimgate.db".into(),
            pool_size: 8,
            db_wait_ms: 2_000,
            secret_key_file: None,
            base_url: None,
            max_payload_bytes: 1024 * 1024,
            default_page_size: 100,
            max_page_size: 1000,
            patch_returns_no_content: false,
            bulk_max_operations: 1000,
            bulk_max_payload_bytes: 4 * 1024 * 1024,
            targets: Vec::new(),
            schema_extensions: Vec::new(),
            worker: WorkerConfig::default(),
            auth: AuthConfig::default(),
            events: Default::default(),
            metrics: MetricsConfig::default(),
            log_format: LogFormat::default(),
            access_log: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(String);

impl ConfigError {
    pub fn from_message(message: impl Into<String>) -> Self {
        ConfigError(message.into())
    }
}

impl From<SettingsError> for ConfigError {
    fn from(e: SettingsError) -> Self {
        ConfigError(e.0)
    }
}

impl Config {
    /// Loads configuration. `file` is read when given (and must exist); otherwise
    /// `scimgate.toml` in the working directory is read if present.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(path) if !path.exists() => {
                return Err(ConfigError(format!(
                    "config file {} does not exist",
                    path.display()
                )))
            }
            Some(path) => figment = figment.merge(Toml::file(path)),
            None => figment = figment.merge(Toml::file("scimgate.toml")),
        }
        figment = figment
            .merge(Env::raw().only(&["DATABASE_URL"]))
            .merge(Env::prefixed("SCIMGATE_").split("__").ignore(&["CONFIG"]));
        let config: Config = figment.extract().map_err(|e| ConfigError(e.to_string()))?;
        // Served from here on, so the targets' mappings may name the declared attributes.
        crate::scim::registry::install(config.schema_extensions.clone())
            .map_err(|e| ConfigError(format!("schema_extensions: {e}")))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks settings that deserialising cannot (the admin API checks a new target with it).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.default_page_size < 0 || self.max_page_size < 1 {
            return Err(ConfigError("page sizes must be positive".into()));
        }
        if let Some(jwt) = &self.auth.jwt {
            jwt.validate()?;
        }
        let mut names = std::collections::HashSet::new();
        for t in &self.targets {
            if !names.insert(t.name.as_str()) {
                return Err(ConfigError(format!(
                    "target name {:?} is used twice",
                    t.name
                )));
            }
            t.validate()?;
        }
        Ok(())
    }

    /// The base URL for `meta.location`, given the address actually bound.
    pub fn base_url_for(&self, bound: std::net::SocketAddr) -> String {
        match &self.base_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => format!("http://{bound}/scim/v2"),
        }
    }
}

impl JwtConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        match self.algorithm.as_str() {
            "HS256" if self.secret.is_none() && self.secret_file.is_none() => Err(ConfigError(
                "auth.jwt: HS256 needs secret or secret_file".into(),
            )),
            "RS256" | "ES256"
                if self.public_key_pem.is_none() && self.public_key_file.is_none() =>
            {
                Err(ConfigError(
                    "auth.jwt: RS256/ES256 need public_key_pem or public_key_file".into(),
                ))
            }
            "HS256" | "RS256" | "ES256" => Ok(()),
            other => Err(ConfigError(format!(
                "auth.jwt.algorithm {other:?} is not one of HS256, RS256, ES256"
            ))),
        }
    }

    /// The key material, read from the file when one is named.
    pub fn key_material(&self) -> Result<Vec<u8>, ConfigError> {
        let (inline, file) = match self.algorithm.as_str() {
            "HS256" => (&self.secret, &self.secret_file),
            _ => (&self.public_key_pem, &self.public_key_file),
        };
        if let Some(path) = file {
            let bytes = std::fs::read(path)
                .map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?;
            // Secret files usually end in a newline that is not part of the secret.
            return Ok(String::from_utf8_lossy(&bytes)
                .trim_end()
                .as_bytes()
                .to_vec());
        }
        Ok(inline.clone().unwrap_or_default().into_bytes())
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment's Jail API returns its own large error type
mod tests {
    use super::*;
    use figment::Jail;

    #[test]
    fn file_then_environment_with_env_winning() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "scimgate.toml",
                r#"
                    listen = "0.0.0.0:9000"
                    database_url = "sqlite://from-file.db"
                    pool_size = 3
                    [auth.jwt]
                    algorithm = "HS256"
                    secret = "from-file"
                    issuer = "https://issuer"
                    audience = "scimgate"
                "#,
            )?;
            let config = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(config.listen, "0.0.0.0:9000");
            assert_eq!(config.pool_size, 3);
            assert_eq!(config.max_page_size, 1000, "defaults fill the rest");

            jail.set_env("SCIMGATE_LISTEN", "127.0.0.1:7000");
            jail.set_env("DATABASE_URL", "postgres://db/scim");
            jail.set_env("SCIMGATE_AUTH__JWT__AUDIENCE", "from-env");
            let config = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(config.listen, "127.0.0.1:7000");
            assert_eq!(config.database_url, "postgres://db/scim");
            let jwt = config.auth.jwt.ok_or("jwt settings")?;
            assert_eq!(jwt.audience, "from-env");
            assert_eq!(jwt.secret.as_deref(), Some("from-file"));

            jail.set_env("SCIMGATE_DATABASE_URL", "sqlite://explicit.db");
            let config = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(
                config.database_url, "sqlite://explicit.db",
                "the prefixed variable wins"
            );
            Ok(())
        });
    }

    #[test]
    fn invalid_settings_are_reported() {
        Jail::expect_with(|jail| {
            jail.create_file("scimgate.toml", "lisen = \"typo\"")?;
            assert!(Config::load(None).is_err(), "unknown keys are errors");
            jail.create_file(
                "scimgate.toml",
                "[auth.jwt]\nalgorithm = \"HS512\"\nissuer = \"i\"\naudience = \"a\"",
            )?;
            let err = Config::load(None).expect_err("unsupported algorithm");
            assert!(err.to_string().contains("HS512"));
            Ok(())
        });
    }
}
