//! Passwords given with a write (RFC 7643 §4.1.1: writeOnly, never returned): taken out of
//! the document before it is stored, and hashed before the write transaction starts, since
//! Argon2id is slow by design and must not hold the writer.

use serde_json::{Map, Value};

use super::IdentityError;
use crate::scim::patch::PatchOp;
use crate::storage::passwords::NewPassword;
use crate::storage::secrets::SecretBox;

/// Removes the password from a canonical document, returning it.
pub(super) fn take(data: &mut Map<String, Value>) -> Option<String> {
    match data.remove("password") {
        Some(Value::String(clear)) => Some(clear),
        _ => None,
    }
}

/// The password to store with this write, if it carries one.
pub(super) fn prepare(
    secrets: &SecretBox,
    user_id: &str,
    clear: Option<&str>,
) -> Result<Option<NewPassword>, IdentityError> {
    clear
        .map(|clear| NewPassword::prepare(secrets, user_id, clear))
        .transpose()
        .map_err(IdentityError::from)
}

/// Passwords hashed ahead of a PATCH's transaction: the values its operations may set as the
/// password. The transaction uses the one that ends up in the document, or hashes it then if
/// the operations said it in a way this does not foresee.
pub(super) struct Prepared(Vec<(String, NewPassword)>);

impl Prepared {
    pub(super) fn for_patch(
        secrets: &SecretBox,
        user_id: &str,
        ops: &[PatchOp],
    ) -> Result<Prepared, IdentityError> {
        let mut out = Vec::new();
        for clear in candidates(ops) {
            if out.iter().all(|(seen, _)| seen != clear) {
                let password = NewPassword::prepare(secrets, user_id, clear)?;
                out.push((clear.to_string(), password));
            }
        }
        Ok(Prepared(out))
    }

    /// The stored form of `clear`.
    pub(super) fn resolve(
        &mut self,
        secrets: &SecretBox,
        user_id: &str,
        clear: Option<&str>,
    ) -> Result<Option<NewPassword>, IdentityError> {
        let Some(clear) = clear else {
            return Ok(None);
        };
        match self.0.iter().position(|(seen, _)| seen == clear) {
            Some(at) => Ok(Some(self.0.swap_remove(at).1)),
            None => prepare(secrets, user_id, Some(clear)),
        }
    }
}

/// Whether a body key or path names the password (`password`, or its URN-qualified form).
pub(super) fn is_password(name: &str) -> bool {
    let name = name.rsplit(':').next().unwrap_or(name);
    name.eq_ignore_ascii_case("password")
}

/// String values the operations would set as `password`: by path, or in a path-less value.
fn candidates(ops: &[PatchOp]) -> impl Iterator<Item = &str> {
    ops.iter().filter_map(|op| match (&op.path, &op.value) {
        (Some(path), Some(Value::String(clear))) if is_password(&path.attr.attribute) => {
            Some(clear.as_str())
        }
        (None, Some(Value::Object(fields))) => fields
            .iter()
            .find(|(key, _)| is_password(key))
            .and_then(|(_, value)| value.as_str()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::patch::parse_request;
    use serde_json::json;

    fn ops(body: Value) -> Vec<PatchOp> {
        let Value::Object(body) = body else {
            panic!("object")
        };
        parse_request(&body).expect("valid PATCH")
    }

    #[test]
    fn passwords_set_by_path_or_in_a_value_are_foreseen_and_nothing_else() {
        let found = ops(json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [
                {"op": "replace", "path": "password", "value": "one"},
                {"op": "Replace", "value": {"Password": "two", "displayName": "x"}},
                {"op": "replace", "path": "displayName", "value": "three"},
                {"op": "add", "path": "urn:ietf:params:scim:schemas:core:2.0:User:password", "value": "four"},
            ]
        }));
        let seen: Vec<&str> = candidates(&found).collect();
        assert_eq!(seen, ["one", "two", "four"]);
    }

    #[test]
    fn take_removes_the_password_from_the_document() {
        let mut data = json!({"userName": "a", "password": "p"})
            .as_object()
            .cloned()
            .expect("object");
        assert_eq!(take(&mut data).as_deref(), Some("p"));
        assert!(!data.contains_key("password"));
        assert_eq!(take(&mut data), None);
    }
}
