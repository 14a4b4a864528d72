//! Reading a target's settings as JSON (the config file's vocabulary), checked as fully as a
//! config-file target (settings, then building the runtime target with its filter, mapping and
//! auth), plus rules of the catalogue's own: a plain name, secrets given inline (never read
//! from server files), no credentials in the URL.

use super::CatalogError;
use crate::config::Config;
use crate::provisioning::Target;
use crate::targets::{TargetAuth, TargetConfig};

/// Stands for a secret wherever settings are shown; sent back in a change, it keeps the
/// stored secret.
pub const REDACTED: &str = "********";

/// Parses JSON as a target's settings.
pub fn parse(body: &[u8]) -> Result<TargetConfig, CatalogError> {
    serde_json::from_slice(body)
        .map_err(|e| CatalogError::Invalid(format!("invalid target settings: {e}")))
}

fn secret_mut<'a>(auth: &'a mut TargetAuth, field: &str) -> Option<&'a mut Option<String>> {
    match field {
        "token" => Some(&mut auth.token),
        "password" => Some(&mut auth.password),
        "client_secret" => Some(&mut auth.client_secret),
        _ => None,
    }
}

fn is_marker(value: &Option<String>) -> bool {
    value.as_deref() == Some(REDACTED)
}

/// A new target must carry its secrets themselves, not the marker responses show.
pub fn refuse_markers(config: &TargetConfig) -> Result<(), CatalogError> {
    let auth = &config.auth;
    for (field, value) in [
        ("token", &auth.token),
        ("password", &auth.password),
        ("client_secret", &auth.client_secret),
    ] {
        if is_marker(value) {
            return Err(CatalogError::Invalid(format!(
                "auth.{field}: send the secret itself, not {REDACTED:?}"
            )));
        }
    }
    Ok(())
}

/// For a `PUT`: a secret left out or sent as the marker keeps the stored one, as long as the
/// auth type and where the secret goes (`url`, or `token_url` for a client secret) are
/// unchanged; otherwise a marker is refused (the secret must be sent again).
pub fn keep_secrets(new: &mut TargetConfig, stored: &TargetConfig) -> Result<(), CatalogError> {
    let same_type = new.auth.kind == stored.auth.kind;
    for field in TargetAuth::SECRET_FIELDS {
        let same_destination = if field == "client_secret" {
            new.auth.token_url == stored.auth.token_url
        } else {
            new.url == stored.url
        };
        let mut old_auth = stored.auth.clone();
        let (Some(value), Some(old)) = (
            secret_mut(&mut new.auth, field),
            secret_mut(&mut old_auth, field),
        ) else {
            continue;
        };
        if value.is_some() && !is_marker(value) {
            continue;
        }
        if same_type && same_destination {
            *value = old.take();
        } else if is_marker(value) {
            return Err(CatalogError::Invalid(format!(
                "auth.{field}: the auth type or the URL changed, so the stored secret is not kept; send it again"
            )));
        }
    }
    Ok(())
}

fn plain_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn has_credentials(url: &str) -> bool {
    url.split_once("://")
        .map(|(_, rest)| rest.split('/').next().unwrap_or_default().contains('@'))
        .unwrap_or(false)
}

/// Checks a target's settings completely; the message says what is wrong.
pub fn check(config: &TargetConfig) -> Result<(), CatalogError> {
    let bad = |why: String| Err(CatalogError::Invalid(why));
    if !plain_name(&config.name) {
        return bad(format!(
            "name {:?}: use 1 to 64 letters, digits, '-', '_' or '.'",
            config.name
        ));
    }
    let auth = &config.auth;
    for (field, file) in [
        ("token_file", &auth.token_file),
        ("password_file", &auth.password_file),
        ("client_secret_file", &auth.client_secret_file),
    ] {
        if file.is_some() {
            return bad(format!(
                "auth.{field}: targets created through the API take their secrets inline; files are for the config file"
            ));
        }
    }
    if auth.password_env.is_some() {
        return bad(
            "auth.password_env: targets created through the API take their secrets inline; \
             environment variables are for the config file"
                .into(),
        );
    }
    if has_credentials(&config.url) {
        return bad("url: put credentials in auth, not in the URL".into());
    }
    let alone = Config {
        targets: vec![config.clone()],
        ..Config::default()
    };
    alone
        .validate()
        .map_err(|e| CatalogError::Invalid(e.to_string()))?;
    crate::reconcile::check_settings(&config.reconcile)
        .map_err(|e| CatalogError::Invalid(format!("target {:?}: {e}", config.name)))?;
    Target::from_config(config)
        .map(|_| ())
        .map_err(|e| CatalogError::Invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bearer(url: &str, token: Option<&str>) -> TargetConfig {
        let mut t = TargetConfig::scim("t", url);
        t.auth = TargetAuth {
            kind: Some(crate::targets::AuthKind::Bearer),
            token: token.map(str::to_string),
            ..TargetAuth::default()
        };
        t
    }

    #[test]
    fn stored_secrets_are_kept_only_for_the_same_destination() {
        let stored = bearer("https://a/scim", Some("s3cret"));
        let mut left_out = bearer("https://a/scim", None);
        keep_secrets(&mut left_out, &stored).expect("kept");
        assert_eq!(left_out.auth.token.as_deref(), Some("s3cret"));
        let mut marker = bearer("https://a/scim", Some(REDACTED));
        keep_secrets(&mut marker, &stored).expect("kept");
        assert_eq!(marker.auth.token.as_deref(), Some("s3cret"));
        let mut replaced = bearer("https://a/scim", Some("new"));
        keep_secrets(&mut replaced, &stored).expect("replaced");
        assert_eq!(replaced.auth.token.as_deref(), Some("new"));
        let mut moved = bearer("https://elsewhere/scim", Some(REDACTED));
        assert!(keep_secrets(&mut moved, &stored).is_err());
        let mut moved_silently = bearer("https://elsewhere/scim", None);
        keep_secrets(&mut moved_silently, &stored).expect("nothing kept");
        assert_eq!(moved_silently.auth.token, None);
    }

    #[test]
    fn checks_name_files_and_url() {
        assert!(check(&bearer("https://a/scim", Some("x"))).is_ok());
        assert!(check(&TargetConfig::scim("bad name", "https://a")).is_err());
        assert!(check(&TargetConfig::scim("t", "https://u:p@a/scim")).is_err());
        let mut from_file = bearer("https://a/scim", None);
        from_file.auth.token_file = Some("/etc/shadow".into());
        assert!(check(&from_file).is_err());
        assert!(check(&bearer("https://a/scim", None)).is_err(), "no token");
        let mut filter = bearer("https://a/scim", Some("x"));
        filter.users_filter = Some("userName eq".into());
        assert!(check(&filter).is_err());
        assert!(refuse_markers(&bearer("https://a/scim", Some(REDACTED))).is_err());
    }
}
