//! Evaluating a filter against one value of a multi-valued attribute, in memory: used by PATCH
//! paths such as `emails[type eq "work"]`, where the values are already loaded.

use serde_json::Value;

use super::filter::{CompareOp, Filter, Literal};
use super::schema::{AttrType, AttributeDef};

/// Does `element` (one value of the multi-valued `parent`) match `filter`? Paths in the filter
/// name sub-attributes of the value.
pub fn matches(filter: &Filter, element: &Value, parent: &AttributeDef) -> bool {
    match filter {
        Filter::And(a, b) => matches(a, element, parent) && matches(b, element, parent),
        Filter::Or(a, b) => matches(a, element, parent) || matches(b, element, parent),
        Filter::Not(inner) => !matches(inner, element, parent),
        Filter::ValuePath { .. } => false,
        Filter::Present(path) => field(element, parent, &path.attribute)
            .is_some_and(|(v, _)| !v.is_null() && v != &Value::String(String::new())),
        Filter::Compare { path, op, value } => match field(element, parent, &path.attribute) {
            Some((actual, def)) => compare(actual, def, *op, value),
            None => matches!((op, value), (CompareOp::Eq, Literal::Null)),
        },
    }
}

fn field<'a>(
    element: &'a Value,
    parent: &AttributeDef,
    name: &str,
) -> Option<(&'a Value, Option<&'static AttributeDef>)> {
    let sub = parent.sub_attribute(name);
    match element {
        Value::Object(fields) => fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| (v, sub)),
        // A simple multi-valued attribute: its values are the `value`.
        other if name.eq_ignore_ascii_case("value") => Some((other, None)),
        _ => None,
    }
}

fn compare(actual: &Value, def: Option<&AttributeDef>, op: CompareOp, expected: &Literal) -> bool {
    let case_exact = def.is_some_and(|d| d.case_exact);
    match (actual, expected) {
        (Value::Null, Literal::Null) => op == CompareOp::Eq,
        (_, Literal::Null) => op == CompareOp::Ne,
        (Value::Bool(a), Literal::Bool(b)) => match op {
            CompareOp::Eq => a == b,
            CompareOp::Ne => a != b,
            _ => false,
        },
        // IdPs send booleans as strings; compare them as booleans.
        (Value::String(a), Literal::Bool(b))
            if def.is_some_and(|d| d.kind == AttrType::Boolean) =>
        {
            let a = a.eq_ignore_ascii_case("true");
            match op {
                CompareOp::Eq => a == *b,
                CompareOp::Ne => a != *b,
                _ => false,
            }
        }
        (Value::Number(a), Literal::Number(b)) => {
            let (a, b) = (
                a.as_f64().unwrap_or(f64::NAN),
                b.as_f64().unwrap_or(f64::NAN),
            );
            match op {
                CompareOp::Eq => a == b,
                CompareOp::Ne => a != b,
                CompareOp::Gt => a > b,
                CompareOp::Ge => a >= b,
                CompareOp::Lt => a < b,
                CompareOp::Le => a <= b,
                _ => false,
            }
        }
        (Value::String(a), Literal::String(b)) => {
            let (a, b) = if case_exact {
                (a.clone(), b.clone())
            } else {
                (a.to_lowercase(), b.to_lowercase())
            };
            match op {
                CompareOp::Eq => a == b,
                CompareOp::Ne => a != b,
                CompareOp::Co => a.contains(&b),
                CompareOp::Sw => a.starts_with(&b),
                CompareOp::Ew => a.ends_with(&b),
                CompareOp::Gt => a > b,
                CompareOp::Ge => a >= b,
                CompareOp::Lt => a < b,
                CompareOp::Le => a <= b,
            }
        }
        _ => op == CompareOp::Ne,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::filter::parse;
    use crate::scim::schema::USER;
    use serde_json::json;

    #[test]
    fn matches_values_of_multi_valued_attributes() {
        let emails = USER.attribute("emails").expect("emails");
        let work = json!({"value": "A@Example.com", "type": "work", "primary": true});
        let f = |s: &str| parse(s).expect("filter");
        assert!(matches(&f("type eq \"WORK\""), &work, emails));
        assert!(matches(
            &f("value ew \"@example.com\" and primary eq true"),
            &work,
            emails
        ));
        assert!(!matches(
            &f("type eq \"home\" or not (primary eq true)"),
            &work,
            emails
        ));
        assert!(matches(&f("display eq null"), &work, emails));
        assert!(matches(&f("type pr"), &work, emails));
    }
}
