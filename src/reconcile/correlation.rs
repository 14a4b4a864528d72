//! Correlation: which identity a target account stands for. Rules (`userName = uid`) are
//! tried in order; an account matching exactly one identity that has no other account is
//! correlated; several matches are ambiguous and never guessed.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use crate::storage::accounts::situation;

/// A path into a JSON object: `attr`, `attr.sub`, `attr[primary].sub`, `attr[work].sub`
/// (a `type` value), or an extension attribute `urn:...:User:employeeNumber`.
#[derive(Debug, Clone, PartialEq)]
struct Path {
    extension: Option<String>,
    attribute: String,
    selector: Option<Selector>,
    sub: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
enum Selector {
    Primary,
    Type(String),
}

impl Path {
    fn parse(text: &str) -> Result<Path, String> {
        let text = text.trim();
        let (extension, rest) = match text.rfind(':') {
            Some(at) if text.to_ascii_lowercase().starts_with("urn:") => {
                (Some(text[..at].to_string()), &text[at + 1..])
            }
            _ => (None, text),
        };
        let (head, sub) = match rest.rsplit_once("].") {
            Some((head, sub)) => (format!("{head}]"), Some(sub.to_string())),
            None => match rest.split_once('.') {
                Some((head, sub)) if !rest.contains('[') => {
                    (head.to_string(), Some(sub.to_string()))
                }
                _ => (rest.to_string(), None),
            },
        };
        let (attribute, selector) = match head.split_once('[') {
            Some((attribute, selector)) => {
                let inner = selector
                    .strip_suffix(']')
                    .ok_or_else(|| format!("{text:?}: unclosed '['"))?
                    .trim();
                let selector = if inner.eq_ignore_ascii_case("primary") {
                    Selector::Primary
                } else {
                    Selector::Type(inner.trim_matches('"').to_string())
                };
                (attribute.to_string(), Some(selector))
            }
            None => (head, None),
        };
        let valid = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        };
        if !valid(&attribute) || sub.as_deref().is_some_and(|s| !valid(s)) {
            return Err(format!("{text:?} is not an attribute path"));
        }
        Ok(Path {
            extension,
            attribute,
            selector,
            sub,
        })
    }

    /// The path's values in `object`, normalised for comparison (trimmed, lower case):
    /// identifiers like userName, uid and mail compare without case on both sides.
    fn values(&self, object: &Value) -> Vec<String> {
        let container = match &self.extension {
            Some(urn) => field(object, urn),
            None => Some(object),
        };
        let Some(found) = container.and_then(|c| field(c, &self.attribute)) else {
            return Vec::new();
        };
        let items: Vec<&Value> = match found {
            Value::Array(list) => list.iter().collect(),
            other => vec![other],
        };
        let selected = items.into_iter().filter(|item| match &self.selector {
            None => true,
            Some(Selector::Primary) => field(item, "primary")
                .is_some_and(|p| p == &Value::Bool(true) || p.as_str() == Some("true")),
            Some(Selector::Type(t)) => field(item, "type")
                .and_then(Value::as_str)
                .is_some_and(|v| v.eq_ignore_ascii_case(t)),
        });
        let mut out = Vec::new();
        for item in selected {
            let value = match &self.sub {
                Some(sub) => field(item, sub),
                None if item.is_object() => field(item, "value"),
                None => Some(item),
            };
            match value {
                Some(Value::String(s)) => out.extend(normalised(s)),
                Some(Value::Array(list)) => {
                    out.extend(list.iter().filter_map(Value::as_str).filter_map(normalised))
                }
                Some(Value::Number(n)) => out.push(n.to_string()),
                Some(Value::Bool(b)) => out.push(b.to_string()),
                _ => {}
            }
        }
        out
    }
}

/// A value as correlation compares it: trimmed and lower case; blank values match nothing.
fn normalised(value: &str) -> Option<String> {
    let trimmed = value.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_lowercase())
}

/// A field by name, ignoring case (SCIM attribute names and LDAP attribute types are both
/// case-insensitive).
fn field<'a>(object: &'a Value, name: &str) -> Option<&'a Value> {
    let fields = object.as_object()?;
    fields.get(name).or_else(|| {
        fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

/// One correlation rule: an identity path equals an account path.
#[derive(Debug, Clone)]
pub struct Rule {
    identity: Path,
    account: Path,
}

impl Rule {
    pub fn parse(text: &str) -> Result<Rule, String> {
        let (identity, account) = text
            .split_once('=')
            .ok_or_else(|| format!("correlation rule {text:?}: expected IDENTITY = ACCOUNT"))?;
        Ok(Rule {
            identity: Path::parse(identity).map_err(|e| format!("correlation rule: {e}"))?,
            account: Path::parse(account).map_err(|e| format!("correlation rule: {e}"))?,
        })
    }

    /// The account attribute the rule reads (its top-level name).
    pub fn account_attribute(&self) -> &str {
        &self.account.attribute
    }

    /// Whether the identity side is a user's `userName` or `externalId` as such: values the
    /// store keeps in columns, so indexing needs no identity's full document.
    pub fn reads_user_name_columns(&self) -> bool {
        self.name_column().is_some()
    }

    fn name_column(&self) -> Option<NameColumn> {
        let path = &self.identity;
        if path.extension.is_some() || path.selector.is_some() || path.sub.is_some() {
            return None;
        }
        if path.attribute.eq_ignore_ascii_case("userName") {
            Some(NameColumn::UserName)
        } else if path.attribute.eq_ignore_ascii_case("externalId") {
            Some(NameColumn::ExternalId)
        } else {
            None
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum NameColumn {
    UserName,
    ExternalId,
}

/// How an account was placed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub situation: &'static str,
    pub identity_id: Option<String>,
    /// Ambiguous: the identities that matched.
    pub candidates: Vec<String>,
}

/// Identities of one kind indexed by each correlation rule's values. Built apart from the
/// [`Correlator`] so it can be read from the database while the target is being read.
#[derive(Debug, Clone)]
pub struct IdentityIndex {
    rules: Vec<Rule>,
    /// Per rule: normalised value → identity ids.
    by_value: Vec<HashMap<String, Vec<String>>>,
}

impl IdentityIndex {
    pub fn new(rules: Vec<Rule>) -> IdentityIndex {
        IdentityIndex {
            by_value: vec![HashMap::new(); rules.len()],
            rules,
        }
    }

    /// Adds one identity.
    pub fn add(&mut self, id: &str, identity: &Value) {
        for (rule, index) in self.rules.iter().zip(self.by_value.iter_mut()) {
            for value in rule.identity.values(identity) {
                add_to(index, value, id);
            }
        }
    }

    /// Adds one user known only by its userName and externalId, when every rule reads
    /// those ([`Rule::reads_user_name_columns`]): no document is built for it.
    pub fn add_user_names(&mut self, id: &str, user_name: &str, external_id: Option<&str>) {
        for (rule, index) in self.rules.iter().zip(self.by_value.iter_mut()) {
            let value = match rule.name_column() {
                Some(NameColumn::UserName) => Some(user_name),
                Some(NameColumn::ExternalId) => external_id,
                None => None,
            };
            if let Some(value) = value.and_then(normalised) {
                add_to(index, value, id);
            }
        }
    }
}

fn add_to(index: &mut HashMap<String, Vec<String>>, value: String, id: &str) {
    let ids = index.entry(value).or_default();
    if !ids.iter().any(|known| known == id) {
        ids.push(id.to_string());
    }
}

/// Correlates accounts of one kind on one target: by the links already recorded, then by the
/// rules against the identity index.
pub struct Correlator {
    index: IdentityIndex,
    /// Linked remote id (as stored, and lower case for DNs) → identity.
    linked: HashMap<String, String>,
    /// Identities already standing for an account (linked, or correlated in this run).
    taken: HashSet<String>,
}

impl Correlator {
    /// `links`: identity id → remote id, as provisioning recorded them. The index starts
    /// empty ([`Correlator::use_index`]).
    pub fn new(rules: Vec<Rule>, links: &HashMap<String, String>) -> Correlator {
        let mut linked = HashMap::with_capacity(links.len() * 2);
        for (identity, remote) in links {
            linked.insert(remote.clone(), identity.clone());
            linked.insert(remote.to_lowercase(), identity.clone());
        }
        Correlator {
            index: IdentityIndex::new(rules),
            linked,
            taken: links.keys().cloned().collect(),
        }
    }

    /// Correlates by this index of every identity from now on.
    pub fn use_index(&mut self, index: IdentityIndex) {
        self.index = index;
    }

    /// Whether a link explains this account.
    pub fn is_linked(&self, remote_id: &str) -> bool {
        self.link_of(remote_id).is_some()
    }

    /// The identity linked to this remote id (DNs compare without case).
    fn link_of(&self, remote_id: &str) -> Option<&String> {
        if self.linked.is_empty() {
            return None;
        }
        self.linked
            .get(remote_id)
            .or_else(|| self.linked.get(&remote_id.to_lowercase()))
    }

    /// Places one account: linked, correlated (and from now on taken), ambiguous, or an
    /// orphan.
    pub fn place(&mut self, remote_id: &str, account: &Value) -> Placement {
        let linked = self.link_of(remote_id);
        if let Some(identity) = linked {
            return Placement {
                situation: situation::LINKED,
                identity_id: Some(identity.clone()),
                candidates: Vec::new(),
            };
        }
        for (rule, index) in self.index.rules.iter().zip(&self.index.by_value) {
            let mut matches: Vec<String> = Vec::new();
            for value in rule.account.values(account) {
                for id in index.get(&value).into_iter().flatten() {
                    if !matches.contains(id) {
                        matches.push(id.clone());
                    }
                }
            }
            match matches.len() {
                0 => continue,
                1 if !self.taken.contains(&matches[0]) => {
                    self.taken.insert(matches[0].clone());
                    return Placement {
                        situation: situation::CORRELATED,
                        identity_id: matches.pop(),
                        candidates: Vec::new(),
                    };
                }
                _ => {
                    return Placement {
                        situation: situation::AMBIGUOUS,
                        identity_id: None,
                        candidates: matches,
                    }
                }
            }
        }
        Placement {
            situation: situation::UNCORRELATED,
            identity_id: None,
            candidates: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn correlator(rules: &[&str], links: &[(&str, &str)]) -> Correlator {
        let rules: Vec<Rule> = rules
            .iter()
            .map(|r| Rule::parse(r).expect("rule"))
            .collect();
        let links = links
            .iter()
            .map(|(i, r)| (i.to_string(), r.to_string()))
            .collect();
        let mut index = IdentityIndex::new(rules.clone());
        index.add(
            "u1",
            &json!({"userName": "BJensen", "emails": [{"value": "b@x.org", "primary": true}, {"value": "old@x.org", "type": "home"}], "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "701"}}),
        );
        index.add(
            "u2",
            &json!({"userName": "jsmith", "emails": [{"value": "shared@x.org", "primary": true}]}),
        );
        index.add(
            "u3",
            &json!({"userName": "jsmith2", "emails": [{"value": "shared@x.org", "primary": true}]}),
        );
        let mut c = Correlator::new(rules, &links);
        c.use_index(index);
        c
    }

    #[test]
    fn rules_are_tried_in_order_and_never_guess() {
        let mut c = correlator(
            &[
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber = employeeNumber",
                "userName = uid",
                "emails[primary].value = mail",
            ],
            &[("u9", "uid=linked,dc=x")],
        );
        let by_number = c.place(
            "uid=a,dc=x",
            &json!({"employeeNumber": ["701"], "uid": ["zzz"]}),
        );
        assert_eq!(by_number.situation, situation::CORRELATED);
        assert_eq!(by_number.identity_id.as_deref(), Some("u1"));
        // u1 stands for an account now: a second match is not guessed.
        let again = c.place("uid=b,dc=x", &json!({"uid": ["bjensen"]}));
        assert_eq!(again.situation, situation::AMBIGUOUS);
        let shared = c.place("uid=c,dc=x", &json!({"mail": ["SHARED@x.org"]}));
        assert_eq!(shared.situation, situation::AMBIGUOUS);
        assert_eq!(shared.candidates.len(), 2);
        let by_name = c.place("uid=d,dc=x", &json!({"UID": ["JSmith"]}));
        assert_eq!(by_name.identity_id.as_deref(), Some("u2"));
        let orphan = c.place("uid=e,dc=x", &json!({"uid": ["nobody"]}));
        assert_eq!(orphan.situation, situation::UNCORRELATED);
        let linked = c.place("UID=LINKED,DC=X", &json!({}));
        assert_eq!(linked.situation, situation::LINKED);
        assert_eq!(linked.identity_id.as_deref(), Some("u9"));
    }

    #[test]
    fn users_indexed_by_their_name_columns_correlate_as_by_their_documents() {
        let rules: Vec<Rule> = ["externalId = employeeNumber", "userName = uid"]
            .iter()
            .map(|r| Rule::parse(r).expect("rule"))
            .collect();
        assert!(rules.iter().all(Rule::reads_user_name_columns));
        assert!(!Rule::parse("emails[primary].value = mail")
            .expect("rule")
            .reads_user_name_columns());
        let mut from_columns = IdentityIndex::new(rules.clone());
        from_columns.add_user_names("u1", " BJensen ", Some("701"));
        from_columns.add_user_names("u2", "jsmith", None);
        from_columns.add_user_names("u3", "blank", Some("  "));
        let mut from_documents = IdentityIndex::new(rules.clone());
        from_documents.add("u1", &json!({"userName": " BJensen ", "externalId": "701"}));
        from_documents.add("u2", &json!({"userName": "jsmith"}));
        from_documents.add("u3", &json!({"userName": "blank", "externalId": "  "}));
        let accounts = [
            json!({"employeeNumber": ["701"]}),
            json!({"uid": ["JSMITH"]}),
            json!({"uid": ["blank"], "employeeNumber": [""]}),
            json!({"uid": ["nobody"]}),
        ];
        let place_all = |index: IdentityIndex| {
            let mut correlator = Correlator::new(rules.clone(), &HashMap::new());
            correlator.use_index(index);
            accounts
                .iter()
                .enumerate()
                .map(|(i, a)| correlator.place(&format!("uid={i},dc=x"), a))
                .collect::<Vec<_>>()
        };
        let placed = place_all(from_columns);
        assert_eq!(placed, place_all(from_documents));
        let ids: Vec<Option<&str>> = placed.iter().map(|p| p.identity_id.as_deref()).collect();
        assert_eq!(ids, vec![Some("u1"), Some("u2"), Some("u3"), None]);
    }

    #[test]
    fn paths_select_primary_and_typed_values() {
        let user = json!({"emails": [{"value": "a@x", "type": "work"}, {"value": "b@x", "type": "home", "primary": true}], "name": {"givenName": "Ann"}});
        let values = |p: &str| Path::parse(p).expect("path").values(&user);
        assert_eq!(values("emails[primary].value"), vec!["b@x"]);
        assert_eq!(values("emails[work].value"), vec!["a@x"]);
        assert_eq!(values("emails"), vec!["a@x", "b@x"]);
        assert_eq!(values("name.givenName"), vec!["ann"]);
        assert!(Rule::parse("userName uid").is_err());
        assert!(Rule::parse("user name = uid").is_err());
    }
}
