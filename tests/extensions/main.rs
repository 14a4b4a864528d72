//! Custom extension schemas, end to end: declared in the config file or through
//! `/admin/schemas`, served in discovery, validated, stored, filtered and sorted in SQL,
//! PATCHed, sent in the shapes Entra ID and Okta use, and mapped to targets.
//!
//! A separate test binary, run one test at a time: the schemas a server serves are its
//! process's (one server per process in production), so servers declaring different schemas
//! must not share a process at the same time.

#[path = "../support/interop.rs"]
#[allow(dead_code)]
mod interop_servers;
#[path = "../support/postgres.rs"]
mod postgres;
#[path = "../support/process.rs"]
#[allow(dead_code)]
mod process;
#[path = "../support/slapd.rs"]
mod slapd;

#[path = "../api/harness.rs"]
#[allow(dead_code, unused_macros)]
mod harness;

mod admin_api;
mod every_type;
mod hot_updates;
mod idp_shapes;
mod mapped;

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use scimgate::scim::schema::declaration::ExtensionDeclaration;

/// The acme extension for users, with an attribute of every type and characteristic.
pub const ACME: &str = "urn:ietf:params:scim:schemas:extension:acme:2.0:User";
/// The acme extension for groups.
pub const ACME_GROUP: &str = "urn:ietf:params:scim:schemas:extension:acme:2.0:Group";
pub const CORE_USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const CORE_GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// The acme user extension in RFC 7643 §7 form.
pub fn acme_users() -> Value {
    json!({
        "id": ACME,
        "name": "AcmeUser",
        "description": "Acme's own user attributes",
        "resourceTypes": [{"resourceType": "User", "required": false}],
        "attributes": [
            {"name": "badge", "type": "string", "uniqueness": "server",
             "description": "Badge number, unique in the company"},
            {"name": "costCentre", "type": "string", "canonicalValues": ["R&D", "Sales", "Ops"]},
            {"name": "remote", "type": "boolean"},
            {"name": "clearance", "type": "integer", "indexed": true},
            {"name": "rate", "type": "decimal"},
            {"name": "hired", "type": "dateTime"},
            {"name": "homepage", "type": "reference", "referenceTypes": ["external"], "caseExact": true},
            {"name": "photo", "type": "binary"},
            {"name": "office", "type": "complex", "subAttributes": [
                {"name": "building", "type": "string"},
                {"name": "floor", "type": "integer"}
            ]},
            {"name": "tags", "type": "string", "multiValued": true},
            {"name": "licences", "type": "complex", "multiValued": true, "subAttributes": [
                {"name": "value", "type": "string", "required": true},
                {"name": "seats", "type": "integer"}
            ]},
            {"name": "legacyId", "type": "string", "mutability": "immutable", "caseExact": true},
            {"name": "pin", "type": "string", "mutability": "writeOnly", "returned": "never"},
            {"name": "notes", "type": "string", "returned": "request"}
        ]
    })
}

/// The acme group extension: required on every group.
pub fn acme_groups() -> Value {
    json!({
        "id": ACME_GROUP,
        "resourceTypes": [{"resourceType": "Group", "required": true}],
        "attributes": [
            {"name": "costCentre", "type": "string", "required": true, "indexed": true}
        ]
    })
}

pub fn declaration(value: Value) -> ExtensionDeclaration {
    ExtensionDeclaration::from_json(value).expect("a declaration")
}

/// One test at a time in this binary (see the module docs).
pub fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

pub fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `filter` URL-encoded.
pub fn filtered(path: &str, filter: &str) -> String {
    let encoded: String = url::form_urlencoded::byte_serialize(filter.as_bytes()).collect();
    format!("{path}?filter={encoded}")
}

/// Declares each test function (taking the backend) on both backends, run one at a time.
#[macro_export]
macro_rules! serially_on_each_backend {
    ($($name:ident),* $(,)?) => {
        mod per_backend {
            $(
                pub mod $name {
                    #[test]
                    fn sqlite() {
                        let _one_at_a_time = $crate::serial();
                        super::super::$name($crate::harness::Backend::Sqlite);
                    }
                    #[test]
                    fn postgres() {
                        let _one_at_a_time = $crate::serial();
                        super::super::$name($crate::harness::Backend::Postgres);
                    }
                }
            )*
        }
    };
}
