//! Listing and searching (RFC 7644 §3.4.2-3): SCIM filters and sort keys translated to
//! storage conditions on indexed columns, side tables or stored JSON paths.

use crate::scim::cursor::{self, CursorPosition};
use crate::scim::filter::{self, AttrPath, Filter};
use crate::scim::list::Paging;
use crate::scim::projection::Projection;
use crate::scim::resource_type::ResourceType;
use crate::scim::schema::{AttrType, AttributeDef, Returned, COMMON_ATTRIBUTES};
use crate::scim::{ScimError, ScimType};
use crate::storage::query::{Collection, Compared, Cond, Expr, Literal, Op, Sort, Table};
use crate::storage::search::{self, Fetch, FoundRow, PageQuery};
use crate::storage::user_reads::FirstPage;
use crate::storage::DbConnection;

use super::conditions::{
    compare, is_indexed_email_field, json_target, multi, present, ElementResolver, Target,
};

/// A list or `.search` request, parsed.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub filter: Option<Filter>,
    /// Cursor paging (RFC 9865) instead of `startIndex` when set.
    pub cursor: Option<CursorPosition>,
    pub sort_by: Option<AttrPath>,
    pub descending: bool,
    pub paging: Option<Paging>,
    pub projection: Projection,
}

impl Query {
    /// Parses the raw parameters. `sortOrder` is `ascending` (default) or `descending`.
    pub fn parse(
        filter: Option<&str>,
        sort_by: Option<&str>,
        sort_order: Option<&str>,
        paging: Paging,
        projection: Projection,
    ) -> Result<Query, ScimError> {
        let filter = filter
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .map(filter::parse)
            .transpose()?;
        let sort_by = sort_by
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(AttrPath::parse)
            .transpose()?;
        let descending = match sort_order.map(|s| s.trim().to_ascii_lowercase()) {
            None => false,
            Some(s) if s == "ascending" || s.is_empty() => false,
            Some(s) if s == "descending" => true,
            Some(other) => {
                return Err(ScimError::invalid_value(format!(
                    "sortOrder must be 'ascending' or 'descending', got '{other}'"
                )))
            }
        };
        Ok(Query {
            filter,
            cursor: None,
            sort_by,
            descending,
            paging: Some(paging),
            projection,
        })
    }
}

/// How one resource type's attributes are stored, for translation.
/// The connection a resource belongs to, as operators and target filters name it.
static CONNECTION_ATTRIBUTE: AttributeDef = AttributeDef::string("connection")
    .case_exact()
    .read_only()
    .describe("The connection (upstream identity provider) the resource belongs to.");

pub(super) struct Layout {
    pub table: Table,
    pub rt: &'static ResourceType,
    /// Only this connection's resources, when set.
    pub scope: Option<std::sync::Arc<str>>,
}

/// The ids a query selects, the total it matches, and the cursor to the next page.
pub(super) struct Selection {
    pub total: i64,
    /// The page's rows in order, with their stored records when the query fetched them.
    pub rows: Vec<FoundRow>,
    pub next_cursor: Option<String>,
}

impl Selection {
    pub fn ids(&self) -> Vec<String> {
        self.rows.iter().map(|r| r.id.clone()).collect()
    }
}

impl Layout {
    /// Evaluates a query in the database: filter, sort, then index or cursor paging.
    pub(super) fn select(
        &self,
        conn: &mut DbConnection,
        query: &Query,
        fetch: Fetch,
    ) -> Result<Selection, super::IdentityError> {
        let cond = self.scoped(self.filter_cond(query)?);
        if let Some(path) = &query.sort_by {
            self.check_readable(path, "sort by")?;
        }
        let sort = query
            .sort_by
            .as_ref()
            .and_then(|p| self.sort(p, query.descending));
        let count = query.paging.map(|p| p.count).unwrap_or(i64::MAX);
        let Some(position) = &query.cursor else {
            let offset = query.paging.map(|p| p.offset()).unwrap_or(0);
            let page = search::search(
                conn,
                &PageQuery {
                    table: self.table,
                    cond: &cond,
                    after: None,
                    sort: sort.as_ref(),
                    offset,
                    limit: count,
                    fetch,
                },
            )?;
            return Ok(Selection {
                total: page.total,
                rows: page.rows,
                next_cursor: None,
            });
        };
        // One row more than asked tells whether another page follows.
        let (after, offset) = match position {
            CursorPosition::After { created, id } => (
                Some(Cond::After {
                    created_at: *created,
                    id: id.clone(),
                }),
                0,
            ),
            CursorPosition::Offset(o) => (None, *o),
            CursorPosition::Start => (None, 0),
        };
        let mut page = search::search(
            conn,
            &PageQuery {
                table: self.table,
                cond: &cond,
                after: after.as_ref(),
                sort: sort.as_ref(),
                offset,
                limit: count.saturating_add(1),
                fetch,
            },
        )?;
        let more = page.rows.len() as i64 > count;
        page.rows.truncate(count.max(0) as usize);
        let next_cursor = match (more, page.rows.last()) {
            (true, Some(last)) if sort.is_none() => Some(cursor::encode(&CursorPosition::After {
                created: last.created_at,
                id: last.id.clone(),
            })),
            (true, Some(_)) => Some(cursor::encode(&CursorPosition::Offset(offset + count))),
            _ => None,
        };
        Ok(Selection {
            total: page.total,
            rows: page.rows,
            next_cursor,
        })
    }

    /// The query's filter as a condition, before scoping.
    fn filter_cond(&self, query: &Query) -> Result<Cond, ScimError> {
        Ok(query
            .filter
            .as_ref()
            .map(|f| self.translate(f))
            .transpose()?
            .unwrap_or(Cond::True))
    }

    /// `cond` narrowed to the layout's connection, when it has one.
    fn scoped(&self, cond: Cond) -> Cond {
        let Some(connection) = &self.scope else {
            return cond;
        };
        let scope = Cond::Compare {
            expr: Expr::Column("connection"),
            op: Op::Eq,
            value: crate::storage::query::Literal::Text(connection.to_string()),
            fold_case: false,
        };
        // A filter names what few resources it wants; the connection index serves only
        // plain listings (a filter through it would walk the whole connection).
        let scope = match cond {
            Cond::True => scope,
            _ => Cond::Likely(Box::new(scope)),
        };
        Cond::And(Box::new(scope), Box::new(cond))
    }

    /// The query as the first page of a search whose filter compares one text (its probe)
    /// for equality through an index, which the store reads together with the other searches
    /// of its shape: unsorted, without a cursor, from the first result, with room for one.
    /// `None` for any other query: one reader makes a batch's searches in turn, so a search
    /// that walks the table would hold up every read queued behind it.
    pub(super) fn first_page(
        &self,
        query: &Query,
        with_groups: bool,
    ) -> Result<Option<FirstPage>, ScimError> {
        if query.cursor.is_some() || query.sort_by.is_some() || query.filter.is_none() {
            return Ok(None);
        }
        let Some(paging) = query.paging.filter(|p| p.offset() == 0 && p.count >= 1) else {
            return Ok(None);
        };
        let mut cond = self.filter_cond(query)?;
        let Some(probe) = cond.take_probe() else {
            return Ok(None);
        };
        if !self.seeks_by_probe(&cond) {
            return Ok(None);
        }
        Ok(Some(FirstPage {
            cond: self.scoped(cond),
            probe,
            limit: paging.count,
            with_groups,
        }))
    }

    /// Whether the rows `cond` selects are found by an index seek on its probe: the probe is
    /// compared for equality with an indexed key, and every other condition only narrows
    /// what the seek finds (joined by `and`).
    fn seeks_by_probe(&self, cond: &Cond) -> bool {
        match cond {
            Cond::And(a, b) => self.seeks_by_probe(a) || self.seeks_by_probe(b),
            Cond::Compare {
                expr,
                op: Op::Eq,
                value: Literal::Probe,
                fold_case,
            } => match expr {
                // Keys are stored folded; displayName is indexed lowered, the others as they are.
                Expr::Column(column) => match (self.table, *column) {
                    (Table::Users, "display_name") => *fold_case,
                    (Table::Users, "user_name_key") | (Table::Groups, "display_name_key") => true,
                    (_, "id" | "external_id") => !*fold_case,
                    _ => false,
                },
                Expr::Kept { compared, .. } => {
                    *compared
                        == Compared::Text {
                            fold_case: *fold_case,
                        }
                }
                Expr::Json(_)
                | Expr::Modified(_)
                | Expr::ElementColumn(_)
                | Expr::ElementJson(_) => false,
            },
            Cond::Any {
                collection: Collection::UserEmails,
                cond,
            } => matches!(
                cond.as_ref(),
                Cond::Compare {
                    expr: Expr::ElementColumn("value_key"),
                    op: Op::Eq,
                    value: Literal::Probe,
                    ..
                }
            ),
            _ => false,
        }
    }

    pub fn translate(&self, filter: &Filter) -> Result<Cond, ScimError> {
        self.translate_in(filter, None)
    }

    fn translate_in(
        &self,
        filter: &Filter,
        element: Option<&ElementResolver>,
    ) -> Result<Cond, ScimError> {
        Ok(match filter {
            Filter::And(a, b) => Cond::And(
                Box::new(self.translate_in(a, element)?),
                Box::new(self.translate_in(b, element)?),
            ),
            Filter::Or(a, b) => Cond::Or(
                Box::new(self.translate_in(a, element)?),
                Box::new(self.translate_in(b, element)?),
            ),
            Filter::Not(inner) => Cond::Not(Box::new(self.translate_in(inner, element)?)),
            Filter::Present(path) => {
                self.check_readable_in(path, element)?;
                let target = self.target(path, element);
                present(target)
            }
            Filter::Compare { path, op, value } => {
                self.check_readable_in(path, element)?;
                let target = self.target(path, element);
                compare(target, *op, value)?
            }
            Filter::ValuePath { path, filter } => {
                if element.is_some() {
                    return Err(ScimError::bad_request(
                        ScimType::InvalidFilter,
                        "value paths cannot be nested",
                    ));
                }
                match self.target(path, None) {
                    Target::Multi {
                        collection,
                        element,
                    } => {
                        let inner = self.translate_in(filter, Some(element.as_ref()))?;
                        Cond::Any {
                            collection,
                            cond: Box::new(inner),
                        }
                    }
                    _ => Cond::False,
                }
            }
        })
    }

    fn target(&self, path: &AttrPath, element: Option<&ElementResolver>) -> Target {
        if let Some(element) = element {
            // Inside a value path, names are sub-attributes of the value.
            if path.sub_attribute.is_some() || path.schema.is_some() {
                return Target::Unknown;
            }
            return element(Some(&path.attribute)).unwrap_or(Target::Unknown);
        }
        self.resolve(path)
    }

    /// Attributes never returned (`password`) cannot be filtered or sorted on either: each
    /// answer would tell something of their value, and enough answers would give it away.
    fn check_readable(&self, path: &AttrPath, use_: &str) -> Result<(), ScimError> {
        let core = path
            .schema
            .as_deref()
            .is_none_or(|s| s.eq_ignore_ascii_case(self.rt.core.id));
        let def = if core {
            self.rt.core.attribute(&path.attribute)
        } else {
            path.schema
                .as_deref()
                .and_then(|s| self.rt.extension(s))
                .and_then(|ext| ext.attribute(&path.attribute))
        };
        match def {
            Some(def) if def.returned == Returned::Never => Err(ScimError::bad_request(
                ScimType::InvalidFilter,
                format!(
                    "'{}' is never returned and cannot be used to {use_}",
                    def.name
                ),
            )),
            _ => Ok(()),
        }
    }

    /// [`Layout::check_readable`] for a filter's path (outside value paths; their
    /// sub-attributes are never write-only).
    fn check_readable_in(
        &self,
        path: &AttrPath,
        element: Option<&ElementResolver>,
    ) -> Result<(), ScimError> {
        match element {
            Some(_) => Ok(()),
            None => self.check_readable(path, "filter"),
        }
    }

    pub(super) fn sort(&self, path: &AttrPath, descending: bool) -> Option<Sort> {
        match self.resolve(path) {
            Target::Key(expr) => Some(Sort {
                expr,
                fold_case: false,
                descending,
            }),
            Target::Timestamp(expr) => Some(Sort {
                expr,
                fold_case: false,
                descending,
            }),
            Target::Scalar { expr, def } => Some(Sort {
                expr,
                fold_case: def.kind == AttrType::String && !def.case_exact,
                descending,
            }),
            _ => None,
        }
    }

    fn resolve(&self, path: &AttrPath) -> Target {
        let rt = self.rt;
        let name = path.attribute.as_str();
        let sub = path.sub_attribute.as_deref();
        let schema = path.schema.as_deref();
        let in_core = schema.is_none_or(|s| s.eq_ignore_ascii_case(rt.core.id));

        // Operators and targets (`users_filter`) may ask which connection a resource belongs
        // to; a connection's own endpoint has nothing else to see.
        if in_core
            && self.scope.is_none()
            && sub.is_none()
            && name.eq_ignore_ascii_case("connection")
        {
            return Target::Scalar {
                expr: Expr::Column("connection"),
                def: &CONNECTION_ATTRIBUTE,
            };
        }
        if in_core {
            if let Some(common) = COMMON_ATTRIBUTES
                .iter()
                .find(|a| a.name.eq_ignore_ascii_case(name))
            {
                return match (common.name, sub.map(str::to_ascii_lowercase).as_deref()) {
                    ("id", None) => Target::Scalar {
                        expr: Expr::Column("id"),
                        def: common,
                    },
                    ("externalId", None) => Target::Scalar {
                        expr: Expr::Column("external_id"),
                        def: common,
                    },
                    ("meta", Some("created")) => Target::Timestamp(Expr::Column("created_at")),
                    ("meta", Some("lastmodified")) => Target::Timestamp(Expr::Modified(self.table)),
                    ("meta", Some("resourcetype")) => Target::Constant(rt.name),
                    _ => Target::Unknown,
                };
            }
            let Some(def) = rt.core.attribute(name) else {
                return Target::Unknown;
            };
            if let Some(t) = self.indexed(def, sub) {
                return t;
            }
            return json_target(vec![def.name.to_string()], def, sub);
        }
        let Some(ext) = schema.and_then(|s| rt.extension(s)) else {
            return Target::Unknown;
        };
        let Some(def) = ext.attribute(name) else {
            return Target::Unknown;
        };
        if sub.is_none() {
            if let Some(kept) = self.kept_extension(ext.id, def) {
                return Target::Scalar { expr: kept, def };
            }
        }
        json_target(vec![ext.id.to_string(), def.name.to_string()], def, sub)
    }

    /// A declared extension attribute an index keeps: where the index's column is.
    fn kept_extension(&self, schema: &str, def: &'static AttributeDef) -> Option<Expr> {
        let indexed = crate::scim::registry::current()
            .indexed()
            .iter()
            .find(|i| {
                i.resource_type == self.table.resource_type()
                    && i.schema == schema
                    && i.attribute.name == def.name
            })?;
        let spec = crate::extensions::index_spec(indexed);
        Some(Expr::Kept {
            column: spec.column(),
            path: spec.path,
            compared: spec.compared,
        })
    }

    /// Attributes with their own columns or tables.
    fn indexed(&self, def: &'static AttributeDef, sub: Option<&str>) -> Option<Target> {
        match (self.table, def.name, sub) {
            (Table::Users, "userName", None) => Some(Target::Key(Expr::Column("user_name_key"))),
            (Table::Users, "displayName", None) => Some(Target::Scalar {
                expr: Expr::Column("display_name"),
                def,
            }),
            (Table::Users, "active", None) => Some(Target::Scalar {
                expr: Expr::Column("active"),
                def,
            }),
            (Table::Groups, "displayName", None) => {
                Some(Target::Key(Expr::Column("display_name_key")))
            }
            (Table::Users, "emails", sub) if sub.is_none_or(is_indexed_email_field) => {
                let element = move |s: Option<&str>| -> Option<Target> {
                    let s = s.unwrap_or("value");
                    let sub_def = def.sub_attribute(s)?;
                    Some(match sub_def.name {
                        "value" => Target::Key(Expr::ElementColumn("value_key")),
                        "type" => Target::Scalar {
                            expr: Expr::ElementColumn("email_type"),
                            def: sub_def,
                        },
                        "primary" => Target::Scalar {
                            expr: Expr::ElementColumn("is_primary"),
                            def: sub_def,
                        },
                        _ => return None,
                    })
                };
                Some(multi(Collection::UserEmails, element, sub))
            }
            (Table::Users, "groups", sub) => {
                let element = move |s: Option<&str>| -> Option<Target> {
                    let sub_def = def.sub_attribute(s.unwrap_or("value"))?;
                    (sub_def.name == "value").then_some(Target::Scalar {
                        expr: Expr::ElementColumn("group_id"),
                        def: sub_def,
                    })
                };
                Some(multi(Collection::UserMemberships, element, sub))
            }
            (Table::Groups, "members", sub) => {
                let element = move |s: Option<&str>| -> Option<Target> {
                    let sub_def = def.sub_attribute(s.unwrap_or("value"))?;
                    Some(match sub_def.name {
                        "value" => Target::Scalar {
                            expr: Expr::ElementColumn("member_id"),
                            def: sub_def,
                        },
                        "type" => Target::Scalar {
                            expr: Expr::ElementColumn("member_type"),
                            def: sub_def,
                        },
                        _ => return None,
                    })
                };
                Some(multi(Collection::GroupMembers, element, sub))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Users as the `okta` connection's endpoint sees them.
    fn okta_users() -> Layout {
        Layout {
            table: Table::Users,
            rt: crate::scim::registry::user(),
            scope: Some("okta".into()),
        }
    }

    fn query(filter: &str, start_index: i64, count: i64) -> Query {
        let paging = Paging { start_index, count };
        Query::parse(Some(filter), None, None, paging, Projection::default())
            .unwrap_or_else(|e| panic!("{filter}: {e:?}"))
    }

    fn first_page(filter: &str, start_index: i64, count: i64) -> Option<FirstPage> {
        okta_users()
            .first_page(&query(filter, start_index, count), false)
            .unwrap_or_else(|e| panic!("{filter}: {e:?}"))
    }

    #[test]
    fn equality_on_an_indexed_key_is_read_as_a_first_page_with_its_probe() {
        for (filter, probe) in [
            (r#"userName eq "BJensen""#, "bjensen"),
            (r#"externalId eq "E-1""#, "E-1"),
            (r#"id eq "2819c223""#, "2819c223"),
            (r#"displayName eq "Babs""#, "Babs"),
            (r#"emails[value eq "B@Example.com"]"#, "b@example.com"),
            (r#"emails.value eq "b@example.com""#, "b@example.com"),
            (r#"userName eq "bjensen" and active eq true"#, "bjensen"),
            (r#"title pr and (externalId eq "E-1")"#, "E-1"),
        ] {
            let page = first_page(filter, 1, 10).unwrap_or_else(|| panic!("{filter}"));
            assert_eq!(page.probe, probe, "{filter}");
            assert_eq!(page.limit, 10);
            // The connection's scope stays in the condition, bound as it is.
            let users = okta_users();
            let searched = users.scoped(
                users
                    .filter_cond(&query(filter, 1, 10))
                    .unwrap_or_else(|e| panic!("{e:?}")),
            );
            assert_eq!(page.cond.with_probe(probe), searched, "{filter}");
        }
    }

    #[test]
    fn searches_that_walk_the_table_or_page_on_are_searched_alone() {
        for filter in [
            // Not an indexed key, or not an equality: a walk of the table.
            r#"title eq "Tour Guide""#,
            r#"userName sw "bj""#,
            r#"userName co "jen""#,
            r#"not (userName eq "bjensen")"#,
            r#"userName eq "bjensen" or active eq true"#,
            r#"emails[type eq "work"]"#,
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "7""#,
            // Two texts, or none.
            r#"userName eq "a" or userName eq "b""#,
            r#"userName eq "a" and externalId eq "b""#,
            "active eq true",
        ] {
            assert!(first_page(filter, 1, 10).is_none(), "{filter}");
        }
        assert!(first_page(r#"userName eq "bjensen""#, 2, 10).is_none());
        assert!(first_page(r#"userName eq "bjensen""#, 1, 0).is_none());
    }
}
