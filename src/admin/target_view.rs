//! How targets appear in the admin API: a summary, the full settings with every secret
//! replaced by a marker, and where the target comes from. Secrets never appear.

use serde_json::{json, Value};

use super::time;
use crate::targets::lookup::{Known, Source};
use crate::targets::TargetConfig;

/// Stands for a secret in responses; sent back in a `PUT`, it keeps the stored secret.
pub const REDACTED: &str = "********";

/// The secret fields of a target's `auth`.
pub const SECRET_FIELDS: [&str; 3] = ["token", "password", "client_secret"];

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
        for field in SECRET_FIELDS {
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

/// The target at a glance.
pub fn summary(t: &TargetConfig) -> Value {
    json!({
        "name": t.name,
        "kind": t.kind,
        "enabled": t.enabled,
        "url": masked_url(&t.url),
        "auth": t.auth.kind.map_or("none", |k| k.as_str()),
        "users": t.users,
        "usersFilter": t.users_filter,
        "groups": t.groups,
        "deprovision": t.deprovision,
        "maxAttempts": t.max_attempts,
        "concurrency": t.concurrency,
    })
}

/// The summary, where the target comes from, and its full (redacted) settings.
pub fn view(known: &Known) -> Value {
    let mut body = summary(&known.config);
    let extra = match &known.source {
        Source::File => json!({
            "source": "config",
            "readOnly": true,
            "version": null,
            "created": null,
            "lastModified": null,
        }),
        Source::Api(row) => json!({
            "source": "api",
            "readOnly": false,
            "version": row.version,
            "created": time(row.created_at),
            "lastModified": time(row.updated_at),
        }),
    };
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
        body.insert("config".into(), redacted(&known.config));
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::targets::TargetAuth;

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
        let text = redacted(&t).to_string() + &summary(&t).to_string();
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
