//! Search conditions over resources, rendered to SQL for either backend.
//!
//! The identity layer translates SCIM filters into a [`Cond`] naming columns, paths in the
//! stored JSON, and side tables; this module turns it into one SQL statement with bind
//! parameters, so filtering, counting, sorting and paging all happen in the database and
//! indexed columns are used where they exist.

use super::statement::{Bind, Statement};
use super::Backend;

/// Where a scalar value comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A column of the resource's own row.
    Column(&'static str),
    /// A path into the resource's stored JSON.
    Json(Vec<String>),
    /// A path into the stored JSON that an extension index keeps (`extension_indexes`):
    /// compared the index's way on PostgreSQL, a comparison reads `column`, which holds the
    /// value as the comparison would compute it; anything else reads the JSON.
    Kept {
        path: Vec<String>,
        compared: Compared,
        column: String,
    },
    /// When the resource last changed (`meta.lastModified`): its row's `last_modified`. On
    /// PostgreSQL no index is on that column, so an update that changes no indexed value
    /// stays on its page and leaves the indexes alone (a HOT update); a comparison that
    /// asks for recent changes finds them through the change log's index instead, since
    /// every change is logged at the time its row records.
    Modified(Table),
    /// Inside [`Cond::Any`] over a side table: one of its columns.
    ElementColumn(&'static str),
    /// Inside [`Cond::Any`] over a JSON array: a path into the element (empty: the element).
    ElementJson(Vec<String>),
}

/// The multi-valued things [`Cond::Any`] ranges over.
#[derive(Debug, Clone, PartialEq)]
pub enum Collection {
    /// A JSON array in the stored resource.
    JsonArray(Vec<String>),
    /// A user's indexed e-mail rows (`value_key`, `email_type`, `is_primary`).
    UserEmails,
    /// A group's membership rows (`member_id`, `member_type`).
    GroupMembers,
    /// The membership rows naming a user as member (`group_id`).
    UserMemberships,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
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
    Text(String),
    Bool(bool),
    Int(i64),
    Float(f64),
    Null,
    /// The text each search of a batch compares with its own value (see
    /// `search::first_pages`): the same statement answers them all.
    Probe,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    True,
    False,
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
    Not(Box<Cond>),
    /// True for most rows: a hint that keeps SQLite's planner, which has no statistics, from
    /// driving the query by this condition's index when the other conditions are selective.
    Likely(Box<Cond>),
    /// `fold_case`: compare case-insensitively (both sides lowered in SQL).
    Compare {
        expr: Expr,
        op: Op,
        value: Literal,
        fold_case: bool,
    },
    Present(Expr),
    Any {
        collection: Collection,
        cond: Box<Cond>,
    },
    /// Rows after this one in creation order (keyset pagination).
    After {
        created_at: i64,
        id: String,
    },
}

impl Cond {
    /// Takes the condition's one text value out, leaving a [`Literal::Probe`] in its place, so
    /// searches that differ only in it can run as one statement. `None` (and the condition
    /// unchanged) unless exactly one text value is compared.
    pub fn take_probe(&mut self) -> Option<String> {
        let mut texts = Vec::new();
        self.texts_mut(&mut texts);
        let [only] = texts.as_mut_slice() else {
            return None;
        };
        match std::mem::replace(&mut **only, Literal::Probe) {
            Literal::Text(value) => Some(value),
            other => {
                **only = other;
                None
            }
        }
    }

    /// The condition with its probe given `value` again: a search of its own.
    pub fn with_probe(&self, value: &str) -> Cond {
        let mut cond = self.clone();
        let mut texts = Vec::new();
        cond.texts_mut(&mut texts);
        for literal in texts {
            if *literal == Literal::Probe {
                *literal = Literal::Text(value.to_string());
            }
        }
        cond
    }

    /// The text values compared, probes included.
    fn texts_mut<'a>(&'a mut self, out: &mut Vec<&'a mut Literal>) {
        match self {
            Cond::And(a, b) | Cond::Or(a, b) => {
                a.texts_mut(out);
                b.texts_mut(out);
            }
            Cond::Not(inner) | Cond::Likely(inner) | Cond::Any { cond: inner, .. } => {
                inner.texts_mut(out)
            }
            Cond::Compare { value, .. } if matches!(value, Literal::Text(_) | Literal::Probe) => {
                out.push(value)
            }
            Cond::True
            | Cond::False
            | Cond::Compare { .. }
            | Cond::Present(_)
            | Cond::After { .. } => {}
        }
    }
}

/// The resource table a search runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    Users,
    Groups,
}

impl Table {
    /// The SCIM resource type its rows are.
    pub fn resource_type(self) -> &'static str {
        match self {
            Table::Users => "User",
            Table::Groups => "Group",
        }
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Table::Users => "scim_users",
            Table::Groups => "scim_groups",
        }
    }

    /// The column holding the resource's name: userName or displayName.
    pub(super) fn name_column(self) -> &'static str {
        match self {
            Table::Users => "user_name",
            Table::Groups => "display_name",
        }
    }
}

/// The value at `path` inside the JSON in `column` (`element`: a JSON array element, which
/// PostgreSQL already holds as `jsonb`).
fn json_value(backend: Backend, column: &str, path: &[String], element: bool) -> String {
    match backend {
        Backend::Sqlite => {
            let mut p = String::from("$");
            for seg in path {
                p.push_str(&format!(
                    ".\"{}\"",
                    seg.replace('"', "").replace('\'', "''")
                ));
            }
            format!("json_extract({column}, '{p}')")
        }
        Backend::Postgres => {
            let segs: Vec<String> = path
                .iter()
                .map(|s| format!("\"{}\"", s.replace(['"', '\'', '\\'], "")))
                .collect();
            let source = if element {
                column.to_string()
            } else {
                format!("{column}::jsonb")
            };
            format!("({source} #>> '{{{}}}')", segs.join(","))
        }
    }
}

/// How comparisons read a value an index is kept on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compared {
    /// Text, lowered on both sides when `fold_case`.
    Text { fold_case: bool },
    /// Numbers, which PostgreSQL reads from JSON text as `double precision`.
    Number,
    /// Anything compared as it is stored (booleans, date-times, references).
    AsStored,
}

impl Compared {
    /// Whether a comparison with `value` on PostgreSQL computes the value this way: numbers
    /// are cast, text lowered when case is folded, and anything else read as it is stored.
    fn reads(self, value: &Literal, fold_case: bool) -> bool {
        let as_compared = match value {
            Literal::Int(_) | Literal::Float(_) => Compared::Number,
            Literal::Text(_) | Literal::Probe if fold_case => Compared::Text { fold_case: true },
            Literal::Text(_) | Literal::Probe | Literal::Bool(_) => Compared::AsStored,
            Literal::Null => return false,
        };
        let plain = |c: Compared| match c {
            Compared::Text { fold_case: false } => Compared::AsStored,
            other => other,
        };
        plain(self) == as_compared
    }
}

/// The expression an index on the stored JSON at `path` keeps: spelt exactly as comparisons
/// render it (without the row alias), so both planners match it.
pub fn indexed_json_expression(backend: Backend, path: &[String], compared: Compared) -> String {
    let e = json_value(backend, "data", path, false);
    match (compared, backend) {
        (Compared::Text { fold_case: true }, _) => format!("lower({e})"),
        (Compared::Number, Backend::Postgres) => format!("CAST({e} AS double precision)"),
        _ => e,
    }
}

/// Sort key: an expression, optionally lowered, and a direction.
#[derive(Debug, Clone, PartialEq)]
pub struct Sort {
    pub expr: Expr,
    pub fold_case: bool,
    pub descending: bool,
}

/// What a comparison compares with: a bound value, or each probe of a batch.
enum Rhs {
    Bind(Bind),
    Probe,
}

/// A statement being built, with the backend it is for.
pub(super) struct Sql {
    pub(super) backend: Backend,
    pub(super) statement: Statement,
}

pub(super) const ROW: &str = "r";
/// The row of probe values a batch of searches runs over (see [`Literal::Probe`]).
pub(super) const PROBE: &str = "probe";
const ELEMENT: &str = "e";

impl Sql {
    pub(super) fn new(backend: Backend) -> Sql {
        Sql {
            backend,
            statement: Statement::default(),
        }
    }

    pub(super) fn push(&mut self, s: &str) {
        self.statement.push(s);
    }

    pub(super) fn bind(&mut self, value: Bind) {
        self.statement.bind(value);
    }

    /// A JSON path as the backend spells it; names come from the schema, quotes doubled anyway.
    fn json_path(&self, base: &str, path: &[String], element: bool) -> String {
        match (self.backend, element) {
            (Backend::Sqlite, true) if path.is_empty() => format!("{base}.value"),
            (_, true) => json_value(self.backend, &format!("{base}.value"), path, true),
            (_, false) => json_value(self.backend, &format!("{base}.data"), path, false),
        }
    }

    pub(super) fn expr(&self, expr: &Expr) -> String {
        match expr {
            Expr::Column(c) => format!("{ROW}.{c}"),
            Expr::Modified(_) => format!("{ROW}.last_modified"),
            Expr::ElementColumn(c) => format!("{ELEMENT}.{c}"),
            Expr::Json(path) | Expr::Kept { path, .. } => self.json_path(ROW, path, false),
            Expr::ElementJson(path) => self.json_path(ELEMENT, path, true),
        }
    }

    pub(super) fn cond(&mut self, cond: &Cond) {
        match cond {
            Cond::True => self.push("1=1"),
            Cond::False => self.push("1=0"),
            Cond::And(a, b) | Cond::Or(a, b) => {
                self.push("(");
                self.cond(a);
                self.push(if matches!(cond, Cond::And(..)) {
                    " AND "
                } else {
                    " OR "
                });
                self.cond(b);
                self.push(")");
            }
            Cond::Likely(inner) => match self.backend {
                Backend::Sqlite => {
                    self.push("likely(");
                    self.cond(inner);
                    self.push(")");
                }
                Backend::Postgres => self.cond(inner),
            },
            Cond::Not(inner) => {
                // NULL-safe: a comparison on a missing value is false, so its negation is true.
                self.push("NOT COALESCE((");
                self.cond(inner);
                self.push("), 1=0)");
            }
            Cond::Present(expr) => {
                let e = self.expr(expr);
                self.push(&format!("({e} IS NOT NULL AND CAST({e} AS TEXT) <> '')"));
            }
            Cond::Any { collection, cond } => {
                // Side tables: `id IN (SELECT ...)`, which both planners drive from the side
                // table's index (SQLite would run a correlated EXISTS once per resource row).
                let side = match collection {
                    Collection::UserEmails => Some(("user_id", "scim_user_emails")),
                    Collection::GroupMembers => Some(("group_id", "scim_group_members")),
                    Collection::UserMemberships => Some(("member_id", "scim_group_members")),
                    Collection::JsonArray(_) => None,
                };
                if let Some((key, table)) = side {
                    self.push(&format!(
                        "{ROW}.id IN (SELECT {ELEMENT}.{key} FROM {table} {ELEMENT} WHERE "
                    ));
                    self.cond(cond);
                    self.push(")");
                    return;
                }
                let Collection::JsonArray(path) = collection else {
                    return;
                };
                let from = match self.backend {
                    Backend::Sqlite => {
                        let mut p = String::from("$");
                        for seg in path {
                            p.push_str(&format!(".\"{}\"", seg.replace(['"', '\''], "")));
                        }
                        format!("json_each({ROW}.data, '{p}') {ELEMENT}")
                    }
                    Backend::Postgres => {
                        let segs: Vec<String> = path
                            .iter()
                            .map(|s| format!("\"{}\"", s.replace(['"', '\'', '\\'], "")))
                            .collect();
                        format!(
                            "jsonb_array_elements(CASE WHEN jsonb_typeof({ROW}.data::jsonb #> '{{{0}}}') = 'array' THEN {ROW}.data::jsonb #> '{{{0}}}' ELSE '[]'::jsonb END) AS {ELEMENT}(value)",
                            segs.join(",")
                        )
                    }
                };
                self.push(&format!("EXISTS (SELECT 1 FROM {from} WHERE "));
                self.cond(cond);
                self.push(")");
            }
            Cond::Compare {
                expr,
                op,
                value,
                fold_case,
            } => self.compare(expr, *op, value, *fold_case),
            Cond::After { created_at, id } => {
                self.push(&format!("({ROW}.created_at > "));
                self.bind(Bind::Int(*created_at));
                self.push(&format!(" OR ({ROW}.created_at = "));
                self.bind(Bind::Int(*created_at));
                self.push(&format!(" AND {ROW}.id > "));
                self.bind(Bind::Text(id.clone()));
                self.push("))");
            }
        }
    }

    fn compare(&mut self, expr: &Expr, op: Op, value: &Literal, fold_case: bool) {
        let is_json = matches!(
            expr,
            Expr::Json(_) | Expr::Kept { .. } | Expr::ElementJson(_)
        );
        let e = self.expr(expr);
        if let Literal::Null = value {
            self.push(&match op {
                Op::Eq => format!("{e} IS NULL"),
                Op::Ne => format!("{e} IS NOT NULL"),
                _ => "1=0".to_string(),
            });
            return;
        }
        // Booleans and numbers inside JSON: SQLite's json_extract yields 1/0 and numbers;
        // PostgreSQL's #>> yields text.
        let (lhs, rhs) = match (value, self.backend, is_json) {
            (Literal::Bool(b), Backend::Postgres, true) => {
                (e, Rhs::Bind(Bind::Text(b.to_string())))
            }
            (Literal::Bool(b), _, _) => (e, Rhs::Bind(Bind::Bool(*b))),
            (Literal::Int(i), Backend::Postgres, true) => (
                format!("CAST({e} AS double precision)"),
                Rhs::Bind(Bind::Float(*i as f64)),
            ),
            (Literal::Float(f), Backend::Postgres, true) => (
                format!("CAST({e} AS double precision)"),
                Rhs::Bind(Bind::Float(*f)),
            ),
            (Literal::Int(i), _, _) => (e, Rhs::Bind(Bind::Int(*i))),
            (Literal::Float(f), _, _) => (e, Rhs::Bind(Bind::Float(*f))),
            (Literal::Text(t), _, _) => {
                let lhs = if fold_case { format!("lower({e})") } else { e };
                (lhs, Rhs::Bind(Bind::Text(t.clone())))
            }
            (Literal::Probe, _, _) => {
                let lhs = if fold_case { format!("lower({e})") } else { e };
                (lhs, Rhs::Probe)
            }
            (Literal::Null, _, _) => return,
        };
        let lhs = match expr {
            Expr::Kept {
                compared, column, ..
            } if self.backend == Backend::Postgres && compared.reads(value, fold_case) => {
                format!("{ROW}.{column}")
            }
            _ => lhs,
        };
        let text_bind = matches!(rhs, Rhs::Bind(Bind::Text(_)) | Rhs::Probe);
        let fold = fold_case && text_bind;
        let rhs = |sql: &mut Sql| {
            if fold {
                sql.push("lower(");
            }
            match &rhs {
                Rhs::Bind(bind) => sql.bind(bind.clone()),
                Rhs::Probe => sql.push(&format!("{PROBE}.v")),
            }
            if fold {
                sql.push(")");
            }
        };
        let substring_ops = matches!(op, Op::Co | Op::Sw | Op::Ew);
        if substring_ops && !text_bind {
            // co/sw/ew are defined on strings only.
            self.push("1=0");
            return;
        }
        let logged_since = match (expr, op, value, self.backend) {
            (
                Expr::Modified(table),
                Op::Eq | Op::Gt | Op::Ge,
                Literal::Int(_),
                Backend::Postgres,
            ) => Some(*table),
            _ => None,
        };
        self.push("(");
        if let Some(table) = logged_since {
            // Every row the comparison selects has a change logged at its `last_modified`, so
            // this finds them without narrowing the result; the row's own comparison decides,
            // which keeps `not` exact.
            self.push(&format!(
                "{ROW}.id IN (SELECT resource_id FROM change_log WHERE resource_type = '{}' \
                 AND occurred_at {} ",
                table.resource_type(),
                if op == Op::Gt { ">" } else { ">=" }
            ));
            rhs(self);
            self.push(") AND ");
        }
        match op {
            Op::Eq | Op::Gt | Op::Ge | Op::Lt | Op::Le => {
                let sym = match op {
                    Op::Eq => "=",
                    Op::Gt => ">",
                    Op::Ge => ">=",
                    Op::Lt => "<",
                    _ => "<=",
                };
                self.push(&format!("{lhs} {sym} "));
                rhs(self);
            }
            Op::Ne => {
                self.push(&format!("{lhs} IS NULL OR {lhs} <> "));
                rhs(self);
            }
            Op::Co => match self.backend {
                Backend::Sqlite => {
                    self.push(&format!("instr({lhs}, "));
                    rhs(self);
                    self.push(") > 0");
                }
                Backend::Postgres => {
                    self.push(&format!("strpos({lhs}, "));
                    rhs(self);
                    self.push(") > 0");
                }
            },
            Op::Sw => {
                self.push(&format!("substr({lhs}, 1, length("));
                rhs(self);
                self.push(")) = ");
                rhs(self);
            }
            Op::Ew => {
                self.push(&format!("length({lhs}) >= length("));
                rhs(self);
                self.push(") AND ");
                match self.backend {
                    Backend::Sqlite => self.push(&format!("substr({lhs}, -length(")),
                    Backend::Postgres => self.push(&format!("right({lhs}, length(")),
                }
                rhs(self);
                self.push(")) = ");
                rhs(self);
            }
        }
        self.push(")");
    }

    /// ORDER BY the sort key, then creation and id: a total order, so pages never overlap.
    pub(super) fn order(&mut self, sort: Option<&Sort>) {
        self.push(" ORDER BY ");
        if let Some(sort) = sort {
            self.sort(sort);
        }
        self.push(&format!("{ROW}.created_at ASC, {ROW}.id ASC"));
    }

    pub(super) fn sort(&mut self, sort: &Sort) {
        let e = self.expr(&sort.expr);
        let e = if sort.fold_case {
            format!("lower({e})")
        } else {
            e
        };
        // Missing values sort last in both directions on both backends (RFC 7644 §3.4.2.3).
        self.push(&format!(
            "CASE WHEN {e} IS NULL THEN 1 ELSE 0 END, {e} {}, ",
            if sort.descending { "DESC" } else { "ASC" }
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(backend: Backend, cond: &Cond) -> String {
        let mut sql = Sql::new(backend);
        sql.cond(cond);
        sql.statement.text().to_string()
    }

    fn kept(compared: Compared) -> Expr {
        Expr::Kept {
            path: vec!["urn:example:acme".into(), "badge".into()],
            compared,
            column: "scim_users_ext_0123".into(),
        }
    }

    fn compare(expr: Expr, value: Literal, fold_case: bool) -> Cond {
        Cond::Compare {
            expr,
            op: Op::Eq,
            value,
            fold_case,
        }
    }

    #[test]
    fn comparisons_the_index_way_read_the_column_postgres_keeps_the_value_in() {
        let folded = Compared::Text { fold_case: true };
        let reads_column = [
            compare(kept(folded), Literal::Text("B-1".into()), true),
            compare(kept(folded), Literal::Probe, true),
            compare(kept(Compared::Number), Literal::Int(3), false),
            compare(kept(Compared::Number), Literal::Float(2.5), false),
            compare(kept(Compared::AsStored), Literal::Bool(true), false),
            compare(
                kept(Compared::Text { fold_case: false }),
                Literal::Text("x".into()),
                false,
            ),
        ];
        for cond in &reads_column {
            let pg = rendered(Backend::Postgres, cond);
            assert!(pg.contains("r.scim_users_ext_0123 = "), "{pg}");
            assert!(!pg.contains("#>>"), "{pg}");
            let sqlite = rendered(Backend::Sqlite, cond);
            assert!(sqlite.contains("json_extract(r.data"), "{sqlite}");
        }
        // Computed another way than the column holds it: from the document.
        let reads_document = [
            compare(kept(folded), Literal::Text("B-1".into()), false),
            compare(kept(Compared::Number), Literal::Text("3".into()), false),
            compare(kept(Compared::AsStored), Literal::Int(3), false),
            Cond::Present(kept(folded)),
        ];
        for cond in &reads_document {
            let pg = rendered(Backend::Postgres, cond);
            assert!(!pg.contains("scim_users_ext_0123"), "{pg}");
            assert!(pg.contains("r.data::jsonb #>>"), "{pg}");
        }
    }

    #[test]
    fn recent_changes_are_found_through_the_change_log_on_postgres() {
        let since = |op| Cond::Compare {
            expr: Expr::Modified(Table::Groups),
            op,
            value: Literal::Int(1_700_000_000_000_000),
            fold_case: false,
        };
        for op in [Op::Gt, Op::Ge, Op::Eq] {
            let pg = rendered(Backend::Postgres, &since(op));
            assert!(
                pg.contains("r.id IN (SELECT resource_id FROM change_log WHERE resource_type = 'Group' AND occurred_at"),
                "{pg}"
            );
            assert!(pg.contains("r.last_modified"), "{pg}");
            let sqlite = rendered(Backend::Sqlite, &since(op));
            assert!(!sqlite.contains("change_log"), "{sqlite}");
        }
        for op in [Op::Lt, Op::Le, Op::Ne] {
            let pg = rendered(Backend::Postgres, &since(op));
            assert!(
                !pg.contains("change_log"),
                "older changes are most rows: {pg}"
            );
        }
    }
}
