//! An object as the target gets it on create and PUT: without the `null`s that mark managed
//! attributes with no value, nor the sub-objects left empty by their removal. Written straight
//! to JSON text: a delivery no longer copies the object first to leave them out.

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;

/// `object` as JSON text, its blank members left out at every level of objects (arrays are
/// sent as they are).
pub(super) fn to_json(object: &Value) -> String {
    // Writing a JSON value whose keys are strings into memory cannot fail; were it ever to,
    // the object as it is would still be a valid body.
    serde_json::to_string(&Sparse(object)).unwrap_or_else(|_| object.to_string())
}

struct Sparse<'a>(&'a Value);

/// A member that says nothing: `null`, or an object whose members all say nothing.
fn blank(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Object(fields) => fields.values().all(blank),
        _ => false,
    }
}

impl Serialize for Sparse<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Object(fields) => {
                let mut map = serializer.serialize_map(None)?;
                for (name, value) in fields.iter().filter(|(_, v)| !blank(v)) {
                    map.serialize_entry(name, &Sparse(value))?;
                }
                map.end()
            }
            other => other.serialize(serializer),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    #[test]
    fn nulls_and_the_objects_they_empty_are_left_out() {
        let object = json!({
            "userName": "bjensen",
            "title": null,
            "name": {"givenName": "Barbara", "middleName": null},
            "x509": {"issuer": null, "inner": {"a": null}},
            "empty": {},
            "emails": [{"value": "b@example.com", "type": null}],
            "active": false
        });
        let sent: Value = serde_json::from_str(&super::to_json(&object)).expect("JSON");
        assert_eq!(
            sent,
            json!({
                "userName": "bjensen",
                "name": {"givenName": "Barbara"},
                "emails": [{"value": "b@example.com", "type": null}],
                "active": false
            })
        );
        // Member order is kept, as the object has it.
        assert!(super::to_json(&object).starts_with(r#"{"userName":"bjensen","name":"#));
        assert_eq!(super::to_json(&json!({"a": null})), "{}");
    }
}
