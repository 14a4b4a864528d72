//! RFC 7644 §4 discovery, checked against RFC 7643 §5-§7 and against what is served.

use serde_json::{json, Value};

use crate::harness::TestServer;
use crate::on_both_backends;

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn service_provider_config_tells_the_truth(s: &TestServer) {
    let r = s.get("/ServiceProviderConfig");
    assert_eq!(r.status, 200);
    let c = &r.body;
    assert_eq!(
        c["schemas"][0],
        "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
    );
    assert_eq!(c["etag"]["supported"], true);
    for feature in ["patch", "bulk", "filter", "changePassword", "sort"] {
        assert!(c[feature]["supported"].is_boolean(), "{feature}");
    }
    assert_eq!(c["filter"]["supported"], true);
    assert_eq!(c["filter"]["maxResults"], 1000);
    assert_eq!(c["sort"]["supported"], true);
    assert_eq!(c["authenticationSchemes"][0]["type"], "oauthbearertoken");
    assert_eq!(c["meta"]["resourceType"], "ServiceProviderConfig");
}

fn resource_types_name_their_schemas(s: &TestServer) {
    let r = s.get("/ResourceTypes");
    assert_eq!(r.status, 200);
    assert_eq!(r.body["totalResults"], 2);
    let user = s.get("/ResourceTypes/User").body;
    assert_eq!(user["endpoint"], "/Users");
    assert_eq!(user["schema"], "urn:ietf:params:scim:schemas:core:2.0:User");
    assert_eq!(
        user["schemaExtensions"],
        json!([{"schema": ENTERPRISE, "required": false}])
    );
    assert_eq!(s.get("/ResourceTypes/Group").body["endpoint"], "/Groups");
    s.get("/ResourceTypes/Printer").assert_scim_error(404, None);
}

fn attribute<'a>(defs: &'a Value, name: &str) -> Option<&'a Value> {
    defs.as_array()?.iter().find(|a| a["name"] == name)
}

/// Every attribute a resource carries is described, with all characteristics, so a generic
/// client can work from `/Schemas` alone.
fn schemas_describe_everything_served(s: &TestServer) {
    let list = s.get("/Schemas");
    assert_eq!(list.body["totalResults"], 3);
    let user_schema = s
        .get("/Schemas/urn:ietf:params:scim:schemas:core:2.0:User")
        .body;
    let group_schema = s
        .get("/Schemas/urn:ietf:params:scim:schemas:core:2.0:Group")
        .body;
    let ext_schema = s.get(&format!("/Schemas/{ENTERPRISE}")).body;
    s.get("/Schemas/urn:example:nope")
        .assert_scim_error(404, None);

    for schema in [&user_schema, &group_schema, &ext_schema] {
        for attr in schema["attributes"].as_array().expect("attributes") {
            for key in [
                "name",
                "type",
                "multiValued",
                "description",
                "required",
                "caseExact",
                "mutability",
                "returned",
                "uniqueness",
            ] {
                assert!(attr.get(key).is_some(), "{} lacks {key}", attr["name"]);
            }
            if attr["type"] == "complex" {
                assert!(
                    attr["subAttributes"]
                        .as_array()
                        .is_some_and(|a| !a.is_empty()),
                    "{}",
                    attr["name"]
                );
            }
        }
    }
    assert_eq!(
        attribute(&user_schema["attributes"], "userName").expect("userName")["uniqueness"],
        "server"
    );
    assert_eq!(
        attribute(&user_schema["attributes"], "password").expect("password")["returned"],
        "never"
    );
    assert_eq!(
        attribute(&user_schema["attributes"], "groups").expect("groups")["mutability"],
        "readOnly"
    );

    let user = s.create_user(&json!({
        "userName": "described",
        "name": {"givenName": "D", "familyName": "Escribed", "formatted": "D Escribed", "middleName": "M", "honorificPrefix": "Dr", "honorificSuffix": "Jr"},
        "displayName": "D", "nickName": "d", "profileUrl": "https://example.com/d", "title": "t", "userType": "u",
        "preferredLanguage": "en", "locale": "en-US", "timezone": "UTC", "active": true,
        "emails": [{"value": "d@example.com", "type": "work", "primary": true, "display": "d"}],
        "phoneNumbers": [{"value": "1", "type": "work", "primary": true, "display": "1"}],
        "ims": [{"value": "d", "type": "xmpp"}], "photos": [{"value": "https://example.com/p", "type": "photo"}],
        "addresses": [{"formatted": "f", "streetAddress": "s", "locality": "l", "region": "r", "postalCode": "p", "country": "c", "type": "work", "primary": true}],
        "entitlements": [{"value": "e", "type": "t"}], "roles": [{"value": "r", "type": "t"}],
        "x509Certificates": [{"value": "AAAA", "type": "t"}],
        ENTERPRISE: {"employeeNumber": "1", "costCenter": "2", "organization": "3", "division": "4", "department": "5", "manager": {"value": "m"}}
    }));
    s.create_group(&json!({"displayName": "DescribedGroup", "members": [{"value": user["id"]}]}));
    let user = s
        .get(&format!(
            "/Users/{}",
            user["id"].as_str().unwrap_or_default()
        ))
        .body;
    let group = s.get("/Groups").body["Resources"][0].clone();
    let common = ["schemas", "id", "externalId", "meta"];
    let check = |resource: &Value, defs: &Value, ext: Option<(&str, &Value)>| {
        for (name, value) in resource.as_object().expect("object") {
            if common.contains(&name.as_str()) {
                continue;
            }
            if let Some((urn, ext_defs)) = ext {
                if name == urn {
                    for (n, _) in value.as_object().expect("extension object") {
                        assert!(
                            attribute(ext_defs, n).is_some(),
                            "{urn}:{n} is not described"
                        );
                    }
                    continue;
                }
            }
            let def = attribute(defs, name)
                .unwrap_or_else(|| panic!("{name} is served but not described"));
            let subs: Vec<&Value> = match value {
                Value::Array(items) => items.iter().collect(),
                Value::Object(_) => vec![value],
                _ => vec![],
            };
            for sub in subs.iter().filter_map(|v| v.as_object()) {
                for (sub_name, _) in sub {
                    assert!(
                        attribute(&def["subAttributes"], sub_name).is_some(),
                        "{name}.{sub_name} not described"
                    );
                }
            }
        }
    };
    check(
        &user,
        &user_schema["attributes"],
        Some((ENTERPRISE, &ext_schema["attributes"])),
    );
    check(&group, &group_schema["attributes"], None);
}

on_both_backends!(
    service_provider_config_tells_the_truth,
    resource_types_name_their_schemas,
    schemas_describe_everything_served,
);
