//! How targets appear in the admin API: a summary, the full settings with every secret
//! replaced by a marker, and where the target comes from. Secrets never appear.

use serde_json::{json, Value};

use super::time;
use crate::catalog::{masked_url, redacted};
use crate::targets::lookup::{Known, Source};
use crate::targets::TargetConfig;

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
