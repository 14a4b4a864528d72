//! A configured target at run time: its settings and its connector.

use std::sync::Arc;
use std::time::Duration;

use super::mapping::Mapping;
use crate::config::ConfigError;
use crate::connectors::amqp::AmqpConnector;
use crate::connectors::ldap::LdapConnector;
use crate::connectors::publisher::Publisher;
use crate::connectors::scim::{Auth, ScimConnector};
use crate::connectors::Connector;
use crate::scim::filter::{self, Filter};
use crate::targets::{AuthKind, Deprovision, TargetAuth, TargetConfig, TargetKind};

pub struct Target {
    pub config: TargetConfig,
    pub users_filter: Option<Filter>,
    /// `review.filter`, parsed once: users matching it wait for approval.
    pub review_filter: Option<Filter>,
    pub mapping: Mapping,
    pub connector: Arc<dyn Connector>,
    /// A message broker's: orders are published, not carried out by calls.
    pub publisher: Option<Arc<dyn Publisher>>,
}

impl Target {
    pub fn from_config(config: &TargetConfig) -> Result<Target, ConfigError> {
        let review_filter = config
            .review
            .filter
            .as_deref()
            .map(filter::parse)
            .transpose()
            .map_err(|e| invalid(config, format!("review.filter: {}", e.detail)))?;
        let mut publisher = None;
        let (connector, mapping) = match config.kind {
            TargetKind::Amqp => {
                let broker = amqp_connector(config)?;
                publisher = Some(broker.clone() as Arc<dyn Publisher>);
                let mapping =
                    Mapping::from_rules(&config.mapping).map_err(|e| invalid(config, e))?;
                (broker as Arc<dyn Connector>, mapping)
            }
            TargetKind::Ldap => ldap_connector(config)?,
            TargetKind::Manual => (
                Arc::new(super::manual::NoConnector) as Arc<dyn Connector>,
                Mapping::from_rules(&config.mapping).map_err(|e| invalid(config, e))?,
            ),
            TargetKind::Scim => scim_connector(config)?,
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
            review_filter,
            mapping,
            connector,
            publisher,
        })
    }
}

fn invalid(config: &TargetConfig, why: impl std::fmt::Display) -> ConfigError {
    ConfigError::from_message(format!("target {:?}: {why}", config.name))
}

fn ldap_connector(config: &TargetConfig) -> Result<(Arc<dyn Connector>, Mapping), ConfigError> {
    let settings = config.ldap.clone().unwrap_or_default();
    let bind = match config.auth.kind {
        None | Some(AuthKind::None) => None,
        Some(AuthKind::Simple | AuthKind::Basic) => Some((
            config
                .auth
                .username
                .clone()
                .ok_or_else(|| invalid(config, "a simple bind needs username (the bind DN)"))?,
            config
                .auth
                .password()?
                .ok_or_else(|| invalid(config, "a simple bind needs password or password_file"))?,
        )),
        Some(other) => {
            return Err(invalid(
                config,
                format!(
                    "auth type {:?} does not apply to LDAP (simple or none)",
                    other.as_str()
                ),
            ))
        }
    };
    let deactivates = config.deprovision == Deprovision::Deactivate;
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

fn amqp_connector(config: &TargetConfig) -> Result<Arc<AmqpConnector>, ConfigError> {
    config
        .validate()
        .map_err(|e| ConfigError::from_message(e.0))?;
    let settings = config.amqp.clone().unwrap_or_default();
    let credentials = match config.auth.kind {
        None | Some(AuthKind::None) => None,
        Some(AuthKind::Basic) => Some((
            config
                .auth
                .username
                .clone()
                .ok_or_else(|| invalid(config, "basic auth needs username"))?,
            config
                .auth
                .password()?
                .ok_or_else(|| invalid(config, "basic auth needs password or password_file"))?,
        )),
        Some(other) => {
            return Err(invalid(
                config,
                format!(
                    "auth type {:?} does not apply to a broker (basic or none)",
                    other.as_str()
                ),
            ))
        }
    };
    let connector = AmqpConnector::new(
        &config.url,
        &settings,
        credentials,
        Duration::from_secs(config.timeout_seconds),
    )
    .map_err(|e| invalid(config, e))?;
    Ok(Arc::new(connector))
}

fn scim_connector(config: &TargetConfig) -> Result<(Arc<dyn Connector>, Mapping), ConfigError> {
    let auth = match config.auth.kind {
        None | Some(AuthKind::None) => Auth::None,
        Some(AuthKind::Bearer) => Auth::Bearer(
            TargetAuth::secret(&config.auth.token, &config.auth.token_file)?.ok_or_else(|| {
                ConfigError::from_message(format!(
                    "target {:?}: bearer auth needs token or token_file",
                    config.name
                ))
            })?,
        ),
        Some(AuthKind::OauthClientCredentials) => {
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
        Some(AuthKind::Basic | AuthKind::Simple) => Auth::Basic {
            username: config.auth.username.clone().unwrap_or_default(),
            password: config.auth.password()?.unwrap_or_default(),
        },
    };
    let update = config.update_method;
    let connector = ScimConnector::new(
        &config.url,
        auth,
        update,
        Duration::from_secs(config.timeout_seconds),
    )
    .map_err(|e| invalid(config, e))?
    .batching_lookups(config.batch_lookups)
    .with_capabilities(config.capabilities.clone());
    let mapping = Mapping::from_rules(&config.mapping).map_err(|e| invalid(config, e))?;
    Ok((Arc::new(connector), mapping))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::targets::ldap::LdapSettings;

    fn ldap_target(auth: TargetAuth) -> TargetConfig {
        let mut config = TargetConfig::scim("dir", "ldap://127.0.0.1:1");
        config.kind = TargetKind::Ldap;
        config.auth = auth;
        config.ldap = Some(LdapSettings {
            base_dn: "dc=example,dc=org".into(),
            ..LdapSettings::default()
        });
        config
    }

    #[test]
    fn the_bind_password_may_come_from_the_environment() {
        let variable = "SCIMGATE_TEST_BIND_PASSWORD_5F1C";
        let auth = TargetAuth {
            kind: Some(crate::targets::AuthKind::Simple),
            username: Some("cn=admin,dc=example,dc=org".into()),
            password_env: Some(variable.into()),
            ..TargetAuth::default()
        };
        let missing = Target::from_config(&ldap_target(auth.clone()))
            .err()
            .expect("unset variable");
        assert!(missing.to_string().contains(variable), "{missing}");
        // Only this test reads or writes the variable.
        std::env::set_var(variable, "from-the-environment");
        assert!(Target::from_config(&ldap_target(auth.clone())).is_ok());
        assert_eq!(
            auth.password().expect("read").as_deref(),
            Some("from-the-environment")
        );
        std::env::remove_var(variable);
    }

    #[test]
    fn review_rules_are_checked_with_the_target() {
        let mut config = TargetConfig::scim("app", "http://127.0.0.1:1/scim/v2");
        config.review.filter = Some("title eq".into());
        let refused = Target::from_config(&config)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(refused.contains("review.filter"), "{refused}");
    }

    #[test]
    fn ldap_targets_need_a_usable_layout() {
        let mut config = ldap_target(TargetAuth::default());
        config.deprovision = Deprovision::Deactivate;
        let refused = Target::from_config(&config)
            .err()
            .expect("no way to deactivate");
        assert!(
            refused.to_string().contains("disabled_container"),
            "{refused}"
        );
        let mut config = ldap_target(TargetAuth::default());
        config.url = "http://127.0.0.1:1".into();
        assert!(Target::from_config(&config).is_err(), "not an LDAP URL");
        let mut config = ldap_target(TargetAuth::default());
        config.ldap = None;
        assert!(Target::from_config(&config).is_err(), "base_dn is required");
    }
}
