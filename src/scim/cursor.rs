//! Cursor-based pagination (RFC 9865): opaque cursors that stay stable while resources are
//! added, for large exports.
//!
//! A cursor is a position in creation order (`created`, `id`), or an offset when the client
//! asked for a sort order; either is base64url text the client must not interpret.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use super::error::{ScimError, ScimType};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CursorPosition {
    /// The first page (`cursor` sent empty).
    Start,
    /// After this resource, in creation order.
    After { created: i64, id: String },
    /// After this many resources, in the requested sort order.
    Offset(i64),
}

pub fn decode(cursor: &str) -> Result<CursorPosition, ScimError> {
    let cursor = cursor.trim();
    if cursor.is_empty() {
        return Ok(CursorPosition::Start);
    }
    let invalid = || {
        ScimError::bad_request(
            ScimType::InvalidCursor,
            format!("'{cursor}' is not a cursor this server issued"),
        )
    };
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes)
        .ok()
        .filter(|t| !super::text::has_forbidden_control(t))
        .ok_or_else(invalid)?;
    match text.split_once(':') {
        Some(("k", rest)) => {
            let (created, id) = rest.split_once(':').ok_or_else(invalid)?;
            let created = created.parse::<i64>().map_err(|_| invalid())?;
            Ok(CursorPosition::After {
                created,
                id: id.to_string(),
            })
        }
        Some(("o", offset)) => offset
            .parse::<i64>()
            .ok()
            .filter(|o| *o >= 0)
            .map(CursorPosition::Offset)
            .ok_or_else(invalid),
        _ => Err(invalid()),
    }
}

pub fn encode(position: &CursorPosition) -> String {
    let text = match position {
        CursorPosition::Start => return String::new(),
        CursorPosition::After { created, id } => format!("k:{created}:{id}"),
        CursorPosition::Offset(o) => format!("o:{o}"),
    };
    URL_SAFE_NO_PAD.encode(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_garbage() {
        for p in [
            CursorPosition::After {
                created: 1_700_000_000_000_000,
                id: "a-b:c".into(),
            },
            CursorPosition::Offset(200),
        ] {
            assert_eq!(decode(&encode(&p)).expect("decode"), p);
        }
        assert_eq!(decode("").expect("start"), CursorPosition::Start);
        for bad in ["!!", "eHl6", "azpub3RhbnVtYmVyOmlk"] {
            let e = decode(bad).expect_err(bad);
            assert_eq!(e.scim_type, Some(ScimType::InvalidCursor));
        }
    }
}
