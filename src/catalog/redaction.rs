//! How a target's settings are shown anywhere (admin API, console): every secret replaced by
//! a marker, and the password of a URL's `user:password@` masked.

use serde_json::{json, Value};

use super::REDACTED;
use crate::targets::{TargetAuth, TargetConfig};

/// A URL with the password of any `user:password@` part masked.
pub fn masked_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let authority_end = url[scheme_end..]
        .find('/')
        .map_or(url.len(), |i| scheme_end + i);
    let authority = &url[scheme_end..authority_end];
    match authority.rfind('@').map(|at| &authority[..at]) {
        Some(userinfo) => match userinfo.split_once(':') {
            Some((user, _)) => format!(
                "{}{user}:{REDACTED}{}",
                &url[..scheme_end],
                &url[scheme_end + userinfo.len()..]
            ),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// The target's settings in the config file's vocabulary, secrets masked.
pub fn redacted(config: &TargetConfig) -> Value {
    let mut value = serde_json::to_value(config).unwrap_or(Value::Null);
    if let Some(auth) = value.get_mut("auth").and_then(Value::as_object_mut) {
        for field in TargetAuth::SECRET_FIELDS {
            if auth.get(field).is_some_and(|v| !v.is_null()) {
                auth.insert(field.to_string(), json!(REDACTED));
            }
        }
    }
    if let Some(url) = value.get_mut("url") {
        *url = json!(masked_url(&config.url));
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked() {
        let mut t = TargetConfig::scim("t", "https://u:pw@app.example/scim/v2");
        t.auth = TargetAuth {
            kind: Some(crate::targets::AuthKind::OauthClientCredentials),
            client_secret: Some("cs".into()),
            password: Some("pw".into()),
            token: None,
            ..TargetAuth::default()
        };
        let text = redacted(&t).to_string();
        assert!(!text.contains("cs\"") && !text.contains("pw"), "{text}");
        assert!(text.contains(REDACTED));
        assert_eq!(
            masked_url("https://u:pw@h/x"),
            format!("https://u:{REDACTED}@h/x")
        );
        assert_eq!(masked_url("https://h/x@y"), "https://h/x@y");
        assert_eq!(masked_url("https://user@h"), "https://user@h");
    }
}
