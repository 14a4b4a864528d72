//! The filter language of RFC 7644 §3.4.2.2: a parser from text to [`Filter`].
//!
//! Precedence, loosest first: `or`, `and`, `not (...)` / grouping / value paths / comparisons.
//! Operators and attribute names are case-insensitive. Errors name the byte position.
//!
//! Input is bounded before anything recurses: groups, `not`s and value paths nest at most
//! [`MAX_DEPTH`] deep and a filter holds at most [`MAX_TERMS`] comparisons, so neither this
//! parser nor anything walking its result (SQL translation, evaluation, the database's own
//! expression parser) can be driven into a stack overflow.

use serde_json::Number;

use super::error::{ScimError, ScimType};
use super::registry;

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    Compare {
        path: AttrPath,
        op: CompareOp,
        value: Literal,
    },
    Present(AttrPath),
    /// `emails[type eq "work" and value co "@example.com"]`: some value of the multi-valued
    /// attribute matches the inner filter, whose paths are relative to that value.
    ValuePath {
        path: AttrPath,
        filter: Box<Filter>,
    },
}

/// `[schema URN ":"] attribute ["." sub-attribute]`, names as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrPath {
    pub schema: Option<String>,
    pub attribute: String,
    pub sub_attribute: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    String(String),
    Number(Number),
    Bool(bool),
    Null,
}

/// Deepest nesting of groups, `not`s and value paths.
pub const MAX_DEPTH: usize = 32;
/// Most comparisons (and presence tests) in one filter.
pub const MAX_TERMS: usize = 256;

pub fn parse(text: &str) -> Result<Filter, ScimError> {
    let mut parser = Parser {
        text,
        pos: 0,
        depth: 0,
        terms: 0,
    };
    let filter = parser.or_expr()?;
    parser.skip_ws();
    if parser.pos < text.len() {
        return Err(parser.error("unexpected text after the end of the filter"));
    }
    Ok(filter)
}

impl AttrPath {
    /// Parses an attribute path on its own (for `sortBy`, `attributes`, PATCH paths).
    pub fn parse(text: &str) -> Result<AttrPath, ScimError> {
        let trimmed = text.trim();
        split_path(trimmed).ok_or_else(|| {
            ScimError::bad_request(
                ScimType::InvalidPath,
                format!("'{trimmed}' is not an attribute path"),
            )
        })
    }
}

/// Splits `urn:...:User:name.givenName` using the schemas the server knows, so the dots inside
/// a URN's version (`2.0`) are not taken for sub-attribute separators.
fn split_path(text: &str) -> Option<AttrPath> {
    if text.is_empty() {
        return None;
    }
    let (schema, rest) = match registry::schemas().iter().find(|s| {
        // `get` rather than indexing: the schema's length may fall inside a character.
        text.get(..s.id.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(s.id))
            && text.as_bytes().get(s.id.len()) == Some(&b':')
    }) {
        Some(s) => (Some(s.id.to_string()), &text[s.id.len() + 1..]),
        None if text.to_ascii_lowercase().starts_with("urn:") => {
            // An unknown schema: everything up to the last ':' is the URN.
            let colon = text.rfind(':')?;
            (Some(text[..colon].to_string()), &text[colon + 1..])
        }
        None => (None, text),
    };
    let (attribute, sub_attribute) = match rest.split_once('.') {
        Some((a, s)) => (a, Some(s.to_string())),
        None => (rest, None),
    };
    let valid = |s: &str| {
        let mut chars = s.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '$')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '$')
    };
    if !valid(attribute) || sub_attribute.as_deref().is_some_and(|s| !valid(s)) {
        return None;
    }
    Some(AttrPath {
        schema,
        attribute: attribute.to_string(),
        sub_attribute,
    })
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
    /// Groups, `not`s and value paths open at `pos`.
    depth: usize,
    /// Comparisons read so far.
    terms: usize,
}

impl Parser<'_> {
    fn error(&self, what: &str) -> ScimError {
        ScimError::bad_request(
            ScimType::InvalidFilter,
            format!("invalid filter at position {}: {what}", self.pos),
        )
    }

    fn skip_ws(&mut self) {
        while self.text[self.pos..].starts_with([' ', '\t', '\n', '\r']) {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }

    /// The next bare word (attribute path, operator or keyword), not consumed.
    fn word(&self) -> &str {
        let rest = &self.text[self.pos..];
        let end = rest
            .find(|c: char| c.is_whitespace() || matches!(c, '(' | ')' | '[' | ']' | '"'))
            .unwrap_or(rest.len());
        &rest[..end]
    }

    fn keyword(&mut self, kw: &str) -> bool {
        self.skip_ws();
        if self.word().eq_ignore_ascii_case(kw) {
            self.pos += kw.len();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: char) -> Result<(), ScimError> {
        self.skip_ws();
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(&format!("expected '{c}'")))
        }
    }

    /// Enters a group, `not` or value path: refused past [`MAX_DEPTH`].
    fn nest(&mut self) -> Result<(), ScimError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(&format!("nested deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    /// Counts a comparison: refused past [`MAX_TERMS`].
    fn term(&mut self) -> Result<(), ScimError> {
        self.terms += 1;
        if self.terms > MAX_TERMS {
            return Err(self.error(&format!("more than {MAX_TERMS} comparisons")));
        }
        Ok(())
    }

    fn or_expr(&mut self) -> Result<Filter, ScimError> {
        let mut left = self.and_expr()?;
        while self.keyword("or") {
            let right = self.and_expr()?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and_expr(&mut self) -> Result<Filter, ScimError> {
        let mut left = self.unary()?;
        while self.keyword("and") {
            let right = self.unary()?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Filter, ScimError> {
        self.skip_ws();
        if self.peek() == Some('(') {
            self.pos += 1;
            self.nest()?;
            let inner = self.or_expr()?;
            self.expect(')')?;
            self.depth -= 1;
            return Ok(inner);
        }
        let start = self.pos;
        if self.keyword("not") {
            self.skip_ws();
            if self.peek() == Some('(') {
                self.pos += 1;
                self.nest()?;
                let inner = self.or_expr()?;
                self.expect(')')?;
                self.depth -= 1;
                return Ok(Filter::Not(Box::new(inner)));
            }
            // An attribute that happens to be called "not".
            self.pos = start;
        }
        self.comparison()
    }

    fn attr_path(&mut self) -> Result<AttrPath, ScimError> {
        self.skip_ws();
        let word = self.word();
        if word.is_empty() {
            return Err(self.error("expected an attribute path"));
        }
        let path = split_path(word)
            .ok_or_else(|| self.error(&format!("'{word}' is not an attribute path")))?;
        self.pos += word.len();
        Ok(path)
    }

    fn comparison(&mut self) -> Result<Filter, ScimError> {
        let path = self.attr_path()?;
        if self.peek() == Some('[') {
            self.pos += 1;
            self.nest()?;
            let inner = self.or_expr()?;
            self.expect(']')?;
            self.depth -= 1;
            let filter = match self.sub_attribute_after_value_path()? {
                // `emails[type eq "work"].value eq "x"` (as Entra ID sends it): some value of
                // type work whose `value` is "x", i.e. both conditions on one value.
                Some(sub) => {
                    let condition = self.condition_on(sub)?;
                    Filter::And(Box::new(inner), Box::new(condition))
                }
                None => inner,
            };
            return Ok(Filter::ValuePath {
                path,
                filter: Box::new(filter),
            });
        }
        self.condition_on(path)
    }

    /// `.subAttr` right after a value path's `]`, if there is one.
    fn sub_attribute_after_value_path(&mut self) -> Result<Option<AttrPath>, ScimError> {
        if self.peek() != Some('.') {
            return Ok(None);
        }
        self.pos += 1;
        let word = self.word();
        let valid = !word.is_empty()
            && !word.contains(['.', ':'])
            && split_path(word).is_some_and(|p| p.schema.is_none() && p.sub_attribute.is_none());
        if !valid {
            return Err(self.error("expected a sub-attribute name after '].'"));
        }
        let path = AttrPath {
            schema: None,
            attribute: word.to_string(),
            sub_attribute: None,
        };
        self.pos += word.len();
        Ok(Some(path))
    }

    /// The operator and value that follow an attribute path: `pr`, or `op value`.
    fn condition_on(&mut self, path: AttrPath) -> Result<Filter, ScimError> {
        self.term()?;
        self.skip_ws();
        let op_word = self.word().to_ascii_lowercase();
        let op = match op_word.as_str() {
            "pr" => {
                self.pos += 2;
                return Ok(Filter::Present(path));
            }
            "eq" => CompareOp::Eq,
            "ne" => CompareOp::Ne,
            "co" => CompareOp::Co,
            "sw" => CompareOp::Sw,
            "ew" => CompareOp::Ew,
            "gt" => CompareOp::Gt,
            "ge" => CompareOp::Ge,
            "lt" => CompareOp::Lt,
            "le" => CompareOp::Le,
            "" => return Err(self.error("expected an operator")),
            other => return Err(self.error(&format!("unknown operator '{other}'"))),
        };
        self.pos += 2;
        let value = self.literal()?;
        Ok(Filter::Compare { path, op, value })
    }

    fn literal(&mut self) -> Result<Literal, ScimError> {
        self.skip_ws();
        if self.peek() == Some('"') {
            let rest = &self.text[self.pos..];
            let mut escaped = false;
            let mut end = None;
            for (i, c) in rest.char_indices().skip(1) {
                match c {
                    _ if escaped => escaped = false,
                    '\\' => escaped = true,
                    '"' => {
                        end = Some(i);
                        break;
                    }
                    _ => {}
                }
            }
            let end = end.ok_or_else(|| self.error("unterminated string"))?;
            let value: String = serde_json::from_str(&rest[..=end])
                .map_err(|_| self.error("invalid string escape"))?;
            if super::text::has_forbidden_control(&value) {
                return Err(self.error("control characters are not allowed in a value"));
            }
            self.pos += end + 1;
            return Ok(Literal::String(value));
        }
        let word = self.word().to_string();
        let literal = match word.to_ascii_lowercase().as_str() {
            "true" => Literal::Bool(true),
            "false" => Literal::Bool(false),
            "null" => Literal::Null,
            "" => return Err(self.error("expected a value")),
            _ => match serde_json::from_str::<Number>(&word) {
                Ok(n) => Literal::Number(n),
                Err(_) => {
                    return Err(self.error(&format!(
                        "'{word}' is not a value; strings need double quotes"
                    )))
                }
            },
        };
        self.pos += word.len();
        Ok(literal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(a: &str) -> AttrPath {
        AttrPath {
            schema: None,
            attribute: a.into(),
            sub_attribute: None,
        }
    }

    fn eq(a: &str, v: &str) -> Filter {
        Filter::Compare {
            path: path(a),
            op: CompareOp::Eq,
            value: Literal::String(v.into()),
        }
    }

    #[test]
    fn simple_comparisons_and_literals() {
        assert_eq!(
            parse("userName eq \"bjensen\"").expect("parse"),
            eq("userName", "bjensen")
        );
        assert_eq!(
            parse("userName EQ \"b\\\"j\"").expect("parse"),
            eq("userName", "b\"j")
        );
        assert_eq!(
            parse("active eq TRUE").expect("parse"),
            Filter::Compare {
                path: path("active"),
                op: CompareOp::Eq,
                value: Literal::Bool(true)
            }
        );
        assert_eq!(
            parse("x gt 10.5").expect("parse"),
            Filter::Compare {
                path: path("x"),
                op: CompareOp::Gt,
                value: Literal::Number(Number::from_f64(10.5).expect("n"))
            }
        );
        assert_eq!(
            parse("manager eq null").expect("parse"),
            Filter::Compare {
                path: path("manager"),
                op: CompareOp::Eq,
                value: Literal::Null
            }
        );
        assert_eq!(
            parse("title pr").expect("parse"),
            Filter::Present(path("title"))
        );
    }

    #[test]
    fn precedence_and_grouping() {
        // a or b and c == a or (b and c)
        let f = parse("a eq \"1\" or b eq \"2\" and c eq \"3\"").expect("parse");
        assert_eq!(
            f,
            Filter::Or(
                Box::new(eq("a", "1")),
                Box::new(Filter::And(Box::new(eq("b", "2")), Box::new(eq("c", "3"))))
            )
        );
        let f = parse("(a eq \"1\" or b eq \"2\") and not (c eq \"3\")").expect("parse");
        assert_eq!(
            f,
            Filter::And(
                Box::new(Filter::Or(Box::new(eq("a", "1")), Box::new(eq("b", "2")))),
                Box::new(Filter::Not(Box::new(eq("c", "3"))))
            )
        );
    }

    #[test]
    fn value_paths_and_qualified_names() {
        let f = parse("emails[type eq \"work\" and value co \"@example.com\"]").expect("parse");
        match f {
            Filter::ValuePath { path, filter } => {
                assert_eq!(path.attribute, "emails");
                assert!(matches!(*filter, Filter::And(..)));
            }
            other => panic!("{other:?}"),
        }
        let f = parse(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq \"7\"",
        )
        .expect("parse");
        match f {
            Filter::Compare { path, .. } => {
                assert_eq!(
                    path.schema.as_deref(),
                    Some(crate::scim::schema::ENTERPRISE_USER_SCHEMA)
                );
                assert_eq!(path.attribute, "employeeNumber");
            }
            other => panic!("{other:?}"),
        }
        let f = parse("urn:ietf:params:scim:schemas:core:2.0:User:name.familyName sw \"J\"")
            .expect("parse");
        match f {
            Filter::Compare { path, .. } => {
                assert_eq!(path.attribute, "name");
                assert_eq!(path.sub_attribute.as_deref(), Some("familyName"));
            }
            other => panic!("{other:?}"),
        }
        assert!(parse("meta.lastModified gt \"2026-01-01T00:00:00Z\"").is_ok());
    }

    #[test]
    fn a_value_path_followed_by_a_sub_attribute_is_a_condition_on_one_value() {
        let f = parse("emails[type eq \"work\"].value eq \"ann@contoso.com\"").expect("parse");
        assert_eq!(
            f,
            Filter::ValuePath {
                path: path("emails"),
                filter: Box::new(Filter::And(
                    Box::new(eq("type", "work")),
                    Box::new(eq("value", "ann@contoso.com"))
                )),
            }
        );
        let f = parse("emails[type eq \"work\"].value pr and active eq true").expect("parse");
        assert!(matches!(f, Filter::And(..)), "{f:?}");
        for bad in [
            "emails[type eq \"work\"]. eq \"x\"",
            "emails[type eq \"work\"].value.x eq \"x\"",
            "emails[type eq \"work\"].value",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn nesting_and_size_are_bounded_before_anything_recurses() {
        let deep = |open: &str, close: &str, n: usize| {
            format!("{}userName eq \"x\"{}", open.repeat(n), close.repeat(n))
        };
        assert!(parse(&deep("(", ")", MAX_DEPTH)).is_ok());
        assert!(parse(&deep("not(", ")", MAX_DEPTH)).is_ok());
        for hostile in [
            deep("(", ")", MAX_DEPTH + 1),
            deep("not(", ")", 100_000),
            deep("((", "))", 50_000),
            format!("{}x eq 1{}", "emails[".repeat(10_000), "]".repeat(10_000)),
            vec!["userName eq \"a\""; MAX_TERMS + 1].join(" or "),
            vec!["userName eq \"a\""; 100_000].join(" and "),
        ] {
            let err = parse(&hostile).expect_err("refused");
            assert_eq!(err.scim_type, Some(ScimType::InvalidFilter));
        }
        assert!(parse(&vec!["userName eq \"a\""; MAX_TERMS].join(" or ")).is_ok());
    }

    #[test]
    fn paths_with_wide_characters_where_a_schema_urn_ends_are_refused_not_panicked_on() {
        // Found by the filter fuzz target: byte 42 fell inside a two-byte character.
        for text in [
            "urn:ietf:params:scim:schemas:core:2.0:UseĪ eq 1",
            "urn:ietf:params:scim:schemas:core:2.0:Useƌ",
            "urn:ietf:params:scim:schemas:core:2.0:User😀name eq \"x\"",
        ] {
            assert!(parse(text).is_err(), "{text}");
            assert!(AttrPath::parse(text).is_err(), "{text}");
        }
    }

    #[test]
    fn control_characters_are_refused_in_literals() {
        for bad in ["userName eq \"a\\u0000b\"", "userName eq \"\\u001b[31m\""] {
            let err = parse(bad).expect_err(bad);
            assert_eq!(err.scim_type, Some(ScimType::InvalidFilter), "{bad}");
        }
        assert!(parse("title eq \"a\\tb\"").is_ok());
    }

    #[test]
    fn errors_name_the_position() {
        for (text, position) in [
            ("userName eq", 11),
            ("userName xx \"a\"", 9),
            ("userName eq \"a", 12),
            ("(userName eq \"a\"", 16),
            ("userName eq \"a\" garbage", 16),
            ("userName eq bjensen", 12),
            ("", 0),
        ] {
            let err = parse(text).expect_err(text);
            assert_eq!(err.scim_type, Some(ScimType::InvalidFilter), "{text}");
            assert!(
                err.detail.contains(&format!("position {position}")),
                "{text}: {}",
                err.detail
            );
        }
    }
}
