//! Discovery documents (RFC 7644 §4, RFC 7643 §5-§7): what the server supports, its resource
//! types, and the full definition of every schema it serves.

use serde_json::{json, Map, Value};

use super::registry;
use super::resource_type::ResourceType;
use super::schema::{AttributeDef, SchemaDef};

pub const SERVICE_PROVIDER_CONFIG_SCHEMA: &str =
    "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
pub const RESOURCE_TYPE_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
pub const SCHEMA_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";

/// The capabilities announced in `/ServiceProviderConfig`.
#[derive(Debug, Clone)]
pub struct Capabilities {
    pub patch: bool,
    pub bulk: Option<BulkLimits>,
    pub filter_max_results: Option<i64>,
    pub change_password: bool,
    pub sort: bool,
    pub etag: bool,
    pub documentation_uri: Option<String>,
    pub default_page_size: i64,
    pub max_page_size: i64,
    /// RFC 9967 event URIs delivered as SETs; none when SETs are not configured.
    pub security_events: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy)]
pub struct BulkLimits {
    pub max_operations: i64,
    pub max_payload_size: i64,
}

pub fn service_provider_config(caps: &Capabilities, base_url: &str) -> Value {
    let bulk = match caps.bulk {
        Some(b) => {
            json!({"supported": true, "maxOperations": b.max_operations, "maxPayloadSize": b.max_payload_size})
        }
        None => json!({"supported": false, "maxOperations": 0, "maxPayloadSize": 0}),
    };
    let filter = match caps.filter_max_results {
        Some(max) => json!({"supported": true, "maxResults": max}),
        None => json!({"supported": false, "maxResults": 0}),
    };
    let mut config = json!({
        "schemas": [SERVICE_PROVIDER_CONFIG_SCHEMA],
        "patch": {"supported": caps.patch},
        "bulk": bulk,
        "filter": filter,
        "changePassword": {"supported": caps.change_password},
        "sort": {"supported": caps.sort},
        "etag": {"supported": caps.etag},
        // RFC 9865 §4: both index and cursor paging; cursors do not expire.
        "pagination": {
            "cursor": true,
            "index": true,
            "defaultPaginationMethod": "index",
            "defaultPageSize": caps.default_page_size,
            "maxPageSize": caps.max_page_size,
        },
        "authenticationSchemes": [
            {
                "type": "oauthbearertoken",
                "name": "OAuth Bearer Token",
                "description": "Authentication with a bearer token: an API token issued by 'scimgate token create', or a JWT signed by a configured issuer.",
                "specUri": "https://www.rfc-editor.org/info/rfc6750",
                "primary": true
            }
        ],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": format!("{base_url}/ServiceProviderConfig"),
        }
    });
    if let Some(uri) = &caps.documentation_uri {
        config["documentationUri"] = Value::String(uri.clone());
    }
    // RFC 9967 §4: the events the server can deliver as SETs; requests are never asynchronous.
    if let Some(uris) = &caps.security_events {
        config["securityEvents"] = json!({"asyncRequest": "none", "eventUris": uris});
    }
    config
}

pub fn resource_type(rt: &ResourceType, base_url: &str) -> Value {
    let extensions: Vec<Value> = rt
        .extensions
        .iter()
        .map(|ext| json!({"schema": ext.id, "required": rt.requires(ext.id)}))
        .collect();
    let mut doc = json!({
        "schemas": [RESOURCE_TYPE_SCHEMA],
        "id": rt.name,
        "name": rt.name,
        "endpoint": rt.endpoint,
        "description": rt.description,
        "schema": rt.core.id,
        "meta": {
            "resourceType": "ResourceType",
            "location": format!("{base_url}/ResourceTypes/{}", rt.name),
        }
    });
    if !extensions.is_empty() {
        doc["schemaExtensions"] = Value::Array(extensions);
    }
    doc
}

pub fn resource_types(base_url: &str) -> Vec<Value> {
    registry::resource_types()
        .into_iter()
        .map(|rt| resource_type(rt, base_url))
        .collect()
}

pub fn schema(def: &SchemaDef, base_url: &str) -> Value {
    json!({
        "schemas": [SCHEMA_SCHEMA],
        "id": def.id,
        "name": def.name,
        "description": def.description,
        "attributes": def.attributes.iter().map(attribute).collect::<Vec<_>>(),
        "meta": {
            "resourceType": "Schema",
            "location": format!("{base_url}/Schemas/{}", def.id),
        }
    })
}

pub fn schemas(base_url: &str) -> Vec<Value> {
    registry::schemas()
        .iter()
        .map(|s| schema(s, base_url))
        .collect()
}

fn attribute(def: &AttributeDef) -> Value {
    let mut out = Map::new();
    out.insert("name".into(), json!(def.name));
    out.insert("type".into(), json!(def.kind));
    out.insert("multiValued".into(), json!(def.multi_valued));
    out.insert("description".into(), json!(def.description));
    out.insert("required".into(), json!(def.required));
    if !def.sub_attributes.is_empty() {
        out.insert(
            "subAttributes".into(),
            Value::Array(def.sub_attributes.iter().map(attribute).collect()),
        );
    }
    if !def.canonical_values.is_empty() {
        out.insert("canonicalValues".into(), json!(def.canonical_values));
    }
    out.insert("caseExact".into(), json!(def.case_exact));
    out.insert("mutability".into(), json!(def.mutability));
    out.insert("returned".into(), json!(def.returned));
    out.insert("uniqueness".into(), json!(def.uniqueness));
    if !def.reference_types.is_empty() {
        out.insert("referenceTypes".into(), json!(def.reference_types));
    }
    Value::Object(out)
}
