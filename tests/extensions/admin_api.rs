//! `/admin/schemas`: extension schemas declared, changed and removed at run time, with their
//! refusals; on PostgreSQL another instance on the same database serves them too.

use reqwest::Method;
use serde_json::{json, Value};

use scimgate::auth::{api_token, Role};

use crate::harness::{id_of, scim_body, send, Backend, Resp, TestServer};
use crate::process::Instance;
use crate::{declaration, filtered, wait_for, CORE_USER};

const BADGES: &str = "urn:example:params:scim:schemas:extension:badges:2.0:User";
const SITE: &str = "urn:example:params:scim:schemas:extension:site:2.0:User";

/// An admin of one server.
struct Admin<'a> {
    server: &'a TestServer,
    token: String,
}

impl Admin<'_> {
    fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Resp {
        let url = self
            .server
            .base
            .replace("/scim/v2", &format!("/admin{path}"));
        let mut request = reqwest::blocking::Client::new()
            .request(method, url)
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        send(request)
    }
}

fn badges() -> Value {
    json!({
        "id": BADGES,
        "name": "Badges",
        "resourceTypes": [{"resourceType": "User"}],
        "attributes": [{"name": "badge", "type": "string", "indexed": true}]
    })
}

fn schema_ids(s: &TestServer) -> Vec<String> {
    let listed = s.get("/Schemas");
    listed.body["Resources"]
        .as_array()
        .expect("Resources")
        .iter()
        .filter_map(|r| r["id"].as_str().map(str::to_string))
        .collect()
}

fn refusals(admin: &Admin, s: &TestServer) {
    let bad = [
        json!({"id": "not-a-urn", "resourceTypes": [{"resourceType": "User"}],
               "attributes": [{"name": "a", "type": "string"}]}),
        json!({"id": "urn:x:1", "resourceTypes": [{"resourceType": "Device"}],
               "attributes": [{"name": "a", "type": "string"}]}),
        json!({"id": "urn:x:1", "resourceTypes": [{"resourceType": "User"}],
               "attributes": [{"name": "a", "type": "text"}]}),
        json!({"id": "urn:x:1", "resourceTypes": [{"resourceType": "User"}],
               "attributes": [{"name": "a", "type": "complex"}]}),
        json!({"id": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
               "resourceTypes": [{"resourceType": "User"}],
               "attributes": [{"name": "a", "type": "string"}]}),
        json!({"id": "urn:x:1", "resourceTypes": [{"resourceType": "User"}],
               "attributes": [{"name": "a", "type": "string"}], "colour": "blue"}),
    ];
    let reasons = [
        "URN",
        "not a resource type",
        "unknown variant",
        "needs subAttributes",
        "clashes",
        "unknown field",
    ];
    for (body, reason) in bad.into_iter().zip(reasons) {
        let r = admin.call(Method::POST, "/schemas", Some(&body));
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert!(
            r.body["error"].as_str().is_some_and(|e| e.contains(reason)),
            "{reason}: {}",
            r.body
        );
    }
    assert_eq!(schema_ids(s).len(), 4, "nothing refused is served");
    let listed = admin.call(Method::GET, "/schemas", None);
    assert_eq!(
        listed.body["schemas"].as_array().map(Vec::len),
        Some(1),
        "only the config file's: {}",
        listed.body
    );
}

fn declared_changed_and_removed(backend: Backend) {
    let s = TestServer::start_with(backend, |c| {
        c.schema_extensions = vec![declaration(json!({
            "id": SITE,
            "resourceTypes": [{"resourceType": "User"}],
            "attributes": [{"name": "site", "type": "string"}]
        }))];
    });
    let admin = Admin {
        server: &s,
        token: api_token::issue_with_role(&s.db, "admin", Role::Admin).expect("token"),
    };
    refusals(&admin, &s);

    // A second instance on the same database (PostgreSQL deployments run several).
    let other = matches!(backend, Backend::Postgres).then(|| {
        let dir = tempfile::tempdir().expect("dir");
        let config = dir.path().join("scimgate.toml");
        let key = crate::harness::shared_secret_key().display().to_string();
        std::fs::write(
            &config,
            format!("secret_key_file = {key:?}\n[worker]\nenabled = false\n"),
        )
        .expect("config");
        let instance = Instance::start(
            &config,
            &s.database_url,
            crate::process::free_port(),
            "second",
        );
        (dir, instance)
    });

    let created = admin.call(Method::POST, "/schemas", Some(&badges()));
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["source"], "api");
    assert_eq!(created.body["version"], 1);
    assert!(
        schema_ids(&s).contains(&BADGES.to_string()),
        "served at once"
    );
    let again = admin.call(Method::POST, "/schemas", Some(&badges()));
    assert_eq!(again.status, 409, "{}", again.body);
    let config_one = admin.call(
        Method::PUT,
        &format!("/schemas/{SITE}"),
        Some(
            &json!({"id": SITE, "resourceTypes": [{"resourceType": "User"}],
                     "attributes": [{"name": "site", "type": "integer"}]}),
        ),
    );
    assert_eq!(config_one.status, 409, "config-file schemas are read-only");

    let user = s.create_user(&json!({
        "schemas": [CORE_USER, BADGES], "userName": "ann", BADGES: {"badge": "A-1"}
    }));
    assert_eq!(user[BADGES]["badge"], "A-1");
    let found = s.get(&filtered("/Users", &format!("{BADGES}:badge eq \"a-1\"")));
    assert_eq!(found.body["totalResults"], 1, "{}", found.body);

    if let Some((_, instance)) = &other {
        let token = api_token::issue(&s.db, "second").expect("token");
        let client = reqwest::blocking::Client::new();
        let schema_url = format!("{}/Schemas/{BADGES}", instance.scim());
        wait_for("the other instance serving the new schema", || {
            let r = client.get(&schema_url).bearer_auth(&token).send().ok()?;
            r.status().is_success().then_some(())
        });
        let created = send(scim_body(
            client
                .request(Method::POST, format!("{}/Users", instance.scim()))
                .bearer_auth(&token),
            &json!({"schemas": [CORE_USER, BADGES], "userName": "ben", BADGES: {"badge": "B-1"}}),
        ));
        assert_eq!(created.status, 201, "{}", created.body);
        assert_eq!(created.body[BADGES]["badge"], "B-1");
    }

    // Attributes may be added; a type change would reinterpret stored values.
    let mut more = badges();
    more["attributes"]
        .as_array_mut()
        .expect("attributes")
        .push(json!({"name": "floor", "type": "integer"}));
    let stale = send(
        reqwest::blocking::Client::new()
            .put(
                s.base
                    .replace("/scim/v2", &format!("/admin/schemas/{BADGES}")),
            )
            .bearer_auth(&admin.token)
            .header("if-match", "7")
            .header("content-type", "application/json")
            .body(more.to_string()),
    );
    assert_eq!(stale.status, 409, "a stale version: {}", stale.body);
    let replaced = admin.call(Method::PUT, &format!("/schemas/{BADGES}"), Some(&more));
    assert_eq!(replaced.status, 200, "{}", replaced.body);
    assert_eq!(replaced.body["version"], 2);
    let ann = s.get(&filtered("/Users", "userName eq \"ann\"")).body["Resources"][0].clone();
    let floor = send(scim_body(
        s.request(Method::PATCH, &format!("/Users/{}", id_of(&ann))),
        &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "add", "path": format!("{BADGES}:floor"), "value": 3}]}),
    ));
    assert_eq!(floor.status, 200, "{}", floor.body);
    assert_eq!(floor.body[BADGES], json!({"badge": "A-1", "floor": 3}));
    let mut retyped = more.clone();
    retyped["attributes"][1]["type"] = json!("string");
    let r = admin.call(Method::PUT, &format!("/schemas/{BADGES}"), Some(&retyped));
    assert_eq!(r.status, 409, "{}", r.body);

    // Removed only once no resource holds values of it.
    let in_use = admin.call(Method::DELETE, &format!("/schemas/{BADGES}"), None);
    assert_eq!(in_use.status, 409, "{}", in_use.body);
    for user in s.get("/Users").body["Resources"]
        .as_array()
        .expect("users")
        .clone()
    {
        assert_eq!(s.delete(&format!("/Users/{}", id_of(&user))).status, 204);
    }
    let removed = admin.call(Method::DELETE, &format!("/schemas/{BADGES}"), None);
    assert_eq!(removed.status, 204, "{}", removed.body);
    assert!(!schema_ids(&s).contains(&BADGES.to_string()));
    let indexes =
        s.db.read(scimgate::storage::extension_indexes::existing)
            .expect("indexes");
    assert!(indexes.is_empty(), "its index went with it: {indexes:?}");
    let unknown = s.post(
        "/Users",
        &json!({"schemas": [CORE_USER], "userName": "cy", BADGES: {"badge": "C-1"}}),
    );
    assert_eq!(unknown.status, 201);
    assert!(
        unknown.body.get(BADGES).is_none(),
        "an undeclared extension is not stored"
    );

    // Values that repeat while the attribute is not unique...
    let plain = admin.call(Method::POST, "/schemas", Some(&badges()));
    assert_eq!(plain.status, 201, "{}", plain.body);
    for name in ["fay", "gus"] {
        s.create_user(
            &json!({"schemas": [CORE_USER, BADGES], "userName": name, BADGES: {"badge": "same"}}),
        );
    }
    let mut unique = badges();
    unique["attributes"][0]["uniqueness"] = json!("server");
    // ...cannot become unique.
    let r = admin.call(Method::PUT, &format!("/schemas/{BADGES}"), Some(&unique));
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.text_contains("repeat"), "{}", r.body);
    let still = admin.call(Method::GET, &format!("/schemas/{BADGES}"), None);
    assert_eq!(
        still.body["attributes"][0].get("uniqueness"),
        Some(&json!("none"))
    );
    drop(other);
}

trait Text {
    fn text_contains(&self, needle: &str) -> bool;
}

impl Text for Resp {
    fn text_contains(&self, needle: &str) -> bool {
        self.body.to_string().contains(needle)
    }
}

crate::serially_on_each_backend!(declared_changed_and_removed);
