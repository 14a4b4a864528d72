//! SCIM comparisons as storage conditions: each attribute kind and operator as the condition
//! on an indexed column, a side table or a path in the stored JSON.

use crate::scim::filter::{CompareOp, Literal};
use crate::scim::schema::{AttrType, AttributeDef};
use crate::scim::{ScimError, ScimType};
use crate::storage::query::{Collection, Cond, Expr, Literal as SqlLiteral, Op};

/// Resolves a sub-attribute name (or the default `value`) inside a multi-valued attribute.
pub(super) type ElementResolver = dyn Fn(Option<&str>) -> Option<Target>;

/// A resolved attribute: where its value lives and how it compares.
pub(super) enum Target {
    /// Stored in a lower-cased key column: lower the literal in Rust, compare directly (indexed).
    Key(Expr),
    Scalar {
        expr: Expr,
        def: &'static AttributeDef,
    },
    Timestamp(Expr),
    Constant(&'static str),
    Multi {
        collection: Collection,
        element: Box<ElementResolver>,
    },
    /// Not an attribute of this resource type: matches nothing (RFC 7644 leaves it to us).
    Unknown,
}

pub(super) fn is_indexed_email_field(s: &str) -> bool {
    ["value", "type", "primary"]
        .iter()
        .any(|f| f.eq_ignore_ascii_case(s))
}

/// A multi-valued attribute; with a sub-attribute named, `emails.value eq x` means some
/// value's `value` is x.
pub(super) fn multi(
    collection: Collection,
    element: impl Fn(Option<&str>) -> Option<Target> + 'static,
    sub: Option<&str>,
) -> Target {
    match sub {
        None => Target::Multi {
            collection,
            element: Box::new(element),
        },
        Some(s) => {
            let s = s.to_string();
            Target::Multi {
                collection,
                element: Box::new(move |_| element(Some(&s))),
            }
        }
    }
}

pub(super) fn json_target(
    mut path: Vec<String>,
    def: &'static AttributeDef,
    sub: Option<&str>,
) -> Target {
    if def.multi_valued {
        let element = move |s: Option<&str>| -> Option<Target> {
            if def.sub_attributes.is_empty() {
                return Some(Target::Scalar {
                    expr: Expr::ElementJson(vec![]),
                    def,
                });
            }
            // Complex multi-valued attributes compare on `value` when no sub-attribute is named.
            let sub_def = def.sub_attribute(s.unwrap_or("value"))?;
            Some(Target::Scalar {
                expr: Expr::ElementJson(vec![sub_def.name.to_string()]),
                def: sub_def,
            })
        };
        return multi(Collection::JsonArray(path), element, sub);
    }
    match sub {
        None => Target::Scalar {
            expr: Expr::Json(path),
            def,
        },
        Some(s) => match def.sub_attribute(s) {
            Some(sub_def) => {
                path.push(sub_def.name.to_string());
                Target::Scalar {
                    expr: Expr::Json(path),
                    def: sub_def,
                }
            }
            None => Target::Unknown,
        },
    }
}

pub(super) fn present(target: Target) -> Cond {
    match target {
        Target::Key(expr) | Target::Timestamp(expr) | Target::Scalar { expr, .. } => {
            Cond::Present(expr)
        }
        Target::Constant(_) => Cond::True,
        Target::Multi {
            collection,
            element,
        } => match element(None) {
            Some(inner) => Cond::Any {
                collection,
                cond: Box::new(present(inner)),
            },
            None => Cond::False,
        },
        Target::Unknown => Cond::False,
    }
}

pub(super) fn op_of(op: CompareOp) -> Op {
    match op {
        CompareOp::Eq => Op::Eq,
        CompareOp::Ne => Op::Ne,
        CompareOp::Co => Op::Co,
        CompareOp::Sw => Op::Sw,
        CompareOp::Ew => Op::Ew,
        CompareOp::Gt => Op::Gt,
        CompareOp::Ge => Op::Ge,
        CompareOp::Lt => Op::Lt,
        CompareOp::Le => Op::Le,
    }
}

pub(super) fn compare(target: Target, op: CompareOp, value: &Literal) -> Result<Cond, ScimError> {
    let sql_op = op_of(op);
    Ok(match target {
        Target::Unknown => Cond::False,
        Target::Key(expr) => match value {
            Literal::String(s) => Cond::Compare {
                expr,
                op: sql_op,
                value: SqlLiteral::Text(s.to_lowercase()),
                fold_case: false,
            },
            Literal::Null => Cond::Compare {
                expr,
                op: sql_op,
                value: SqlLiteral::Null,
                fold_case: false,
            },
            Literal::Number(n) => Cond::Compare {
                expr,
                op: sql_op,
                value: SqlLiteral::Text(n.to_string()),
                fold_case: false,
            },
            Literal::Bool(_) => Cond::False,
        },
        Target::Timestamp(expr) => match value {
            Literal::String(s) => {
                let t = chrono::DateTime::parse_from_rfc3339(s).map_err(|_| {
                    ScimError::bad_request(
                        ScimType::InvalidFilter,
                        format!("'{s}' is not an xsd:dateTime such as 2026-01-01T00:00:00Z"),
                    )
                })?;
                Cond::Compare {
                    expr,
                    op: sql_op,
                    value: SqlLiteral::Int(t.timestamp_micros()),
                    fold_case: false,
                }
            }
            Literal::Null => Cond::Compare {
                expr,
                op: sql_op,
                value: SqlLiteral::Null,
                fold_case: false,
            },
            _ => Cond::False,
        },
        Target::Constant(c) => {
            let equal = matches!(value, Literal::String(s) if s.eq_ignore_ascii_case(c));
            match op {
                CompareOp::Eq if equal => Cond::True,
                CompareOp::Ne if !equal => Cond::True,
                _ => Cond::False,
            }
        }
        Target::Scalar { expr, def } => scalar_compare(expr, def, sql_op, value),
        Target::Multi {
            collection,
            element,
        } => match element(None) {
            Some(inner) => Cond::Any {
                collection,
                cond: Box::new(compare(inner, op, value)?),
            },
            None => Cond::False,
        },
    })
}

pub(super) fn scalar_compare(expr: Expr, def: &AttributeDef, op: Op, value: &Literal) -> Cond {
    let fold_case = def.kind == AttrType::String && !def.case_exact;
    let literal = match (def.kind, value) {
        (_, Literal::Null) => SqlLiteral::Null,
        (AttrType::Boolean, Literal::Bool(b)) => SqlLiteral::Bool(*b),
        (AttrType::Boolean, Literal::String(s)) if s.eq_ignore_ascii_case("true") => {
            SqlLiteral::Bool(true)
        }
        (AttrType::Boolean, Literal::String(s)) if s.eq_ignore_ascii_case("false") => {
            SqlLiteral::Bool(false)
        }
        (AttrType::Boolean, _) => return Cond::False,
        (AttrType::Integer | AttrType::Decimal, Literal::Number(n)) => match n.as_i64() {
            Some(i) => SqlLiteral::Int(i),
            None => SqlLiteral::Float(n.as_f64().unwrap_or(0.0)),
        },
        (AttrType::Integer | AttrType::Decimal, _) => return Cond::False,
        (_, Literal::String(s)) => SqlLiteral::Text(s.clone()),
        (_, Literal::Number(n)) => SqlLiteral::Text(n.to_string()),
        (_, Literal::Bool(b)) => SqlLiteral::Text(b.to_string()),
    };
    Cond::Compare {
        expr,
        op,
        value: literal,
        fold_case,
    }
}
