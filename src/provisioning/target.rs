//! A configured target at run time: its settings and its connector.

use std::sync::Arc;
use std::time::Duration;

use super::mapping::Mapping;
use crate::config::{ConfigError, TargetAuth, TargetConfig};
use crate::connectors::ldap::LdapConnector;
use crate::connectors::scim::{Auth, ScimConnector, UpdateMethod};
use crate::connectors::Connector;
use crate::scim::filter::{self, Filter};

pub struct Target {
    pub config: TargetConfig,
    pub users_filter: Option<Filter>,
    pub mapping: Mapping,
    pub connector: Arc<dyn Connector>,
}

impl Target {
    pub fn from_config(config: &TargetConfig) -> Result<Target, ConfigError> {
        let (connector, mapping) = match config.kind.as_str() {
            "ldap" => ldap_connector(config)?,
            _ => scim_connector(config)?,
        };
        let users_filter = config
            .users_filter
            .as_deref()
            .map(filter::parse)
            .transpose()
            .map_err(|e| {
                ConfigError::from_message(format!(
                    "target {:?}: users_filter: {}",
                    config.name, e.detail
                ))
            })?;
        Ok(Target {
            config: config.clone(),
            users_filter,
            mapping,
            connector,
        })
    }
}

fn invalid(config: &TargetConfig, why: impl std::fmt::Display) -> ConfigError {
    ConfigError::from_message(format!("target {:?}: {why}", config.name))
}

fn ldap_connector(config: &TargetConfig) -> Result<(Arc<dyn Connector>, Mapping), ConfigError> {
    let settings = config.ldap.clone().unwrap_or_default();
    let bind = match config.auth.kind.as_deref() {
        None | Some("none") => None,
        Some("simple" | "basic") => Some((
            config
                .auth
                .username
                .clone()
                .ok_or_else(|| invalid(config, "a simple bind needs username (the bind DN)"))?,
            TargetAuth::secret(&config.auth.password, &config.auth.password_file)?
                .ok_or_else(|| invalid(config, "a simple bind needs password or password_file"))?,
        )),
        Some(other) => {
            return Err(invalid(
                config,
                format!("auth type {other:?} does not apply to LDAP (simple or none)"),
            ))
        }
    };
    let deactivates = config.deprovision == "deactivate";
    if deactivates && settings.disabled_container.is_none() && settings.disable_mark().is_none() {
        return Err(invalid(
            config,
            "deprovision = \"deactivate\" needs ldap.disabled_container or ldap.disable_attribute",
        ));
    }
    let encrypted = config.url.starts_with("ldaps://") || settings.starttls;
    let rules = if config.mapping.is_empty() {
        settings.default_mapping(encrypted)
    } else {
        config.mapping.clone()
    };
    let mapping = Mapping::for_directory(&rules).map_err(|e| invalid(config, e))?;
    if !encrypted && !mapping.secret_targets().is_empty() {
        return Err(invalid(
            config,
            "passwords are only sent over an encrypted connection: use ldaps:// or ldap.starttls",
        ));
    }
    let connector = LdapConnector::new(
        &config.url,
        &settings,
        bind,
        Duration::from_secs(config.timeout_seconds),
    )
    .map_err(|e| invalid(config, e))?;
    Ok((Arc::new(connector), mapping))
}

fn scim_connector(config: &TargetConfig) -> Result<(Arc<dyn Connector>, Mapping), ConfigError> {
    let auth = match config.auth.kind.as_deref() {
        None | Some("none") => Auth::None,
        Some("bearer") => Auth::Bearer(
            TargetAuth::secret(&config.auth.token, &config.auth.token_file)?.ok_or_else(|| {
                ConfigError::from_message(format!(
                    "target {:?}: bearer auth needs token or token_file",
                    config.name
                ))
            })?,
        ),
        Some("oauth_client_credentials") => {
            let missing = |what: &str| {
                ConfigError::from_message(format!(
                    "target {:?}: OAuth client credentials need {what}",
                    config.name
                ))
            };
            Auth::ClientCredentials {
                token_url: config
                    .auth
                    .token_url
                    .clone()
                    .ok_or_else(|| missing("token_url"))?,
                client_id: config
                    .auth
                    .client_id
                    .clone()
                    .ok_or_else(|| missing("client_id"))?,
                client_secret: TargetAuth::secret(
                    &config.auth.client_secret,
                    &config.auth.client_secret_file,
                )?
                .ok_or_else(|| missing("client_secret or client_secret_file"))?,
                scope: config.auth.scope.clone(),
            }
        }
        Some(_) => Auth::Basic {
            username: config.auth.username.clone().unwrap_or_default(),
            password: TargetAuth::secret(&config.auth.password, &config.auth.password_file)?
                .unwrap_or_default(),
        },
    };
    let update = if config.update_method == "put" {
        UpdateMethod::Put
    } else {
        UpdateMethod::Patch
    };
    let connector = ScimConnector::new(
        &config.url,
        auth,
        update,
        Duration::from_secs(config.timeout_seconds),
    )
    .map_err(|e| invalid(config, e))?
    .batching_lookups(config.batch_lookups);
    let mapping = Mapping::from_rules(&config.mapping).map_err(|e| invalid(config, e))?;
    Ok((Arc::new(connector), mapping))
}
