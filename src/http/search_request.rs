//! List parameters from a query string (`GET`) or a SearchRequest body (`POST .search`).

use serde_json::{Map, Value};

use super::Settings;
use crate::identity::Query;
use crate::scim::cursor;
use crate::scim::list::Paging;
use crate::scim::projection::Projection;
use crate::scim::ScimError;

pub const SEARCH_REQUEST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

/// The raw parameters, as strings, whichever way they came.
#[derive(Debug, Default)]
pub struct SearchRequest {
    pub filter: Option<String>,
    pub sort_by: Option<String>,
    pub sort_order: Option<String>,
    pub start_index: Option<String>,
    pub count: Option<String>,
    pub attributes: Option<String>,
    pub excluded_attributes: Option<String>,
    /// RFC 9865: present (even empty) to ask for cursor paging.
    pub cursor: Option<String>,
}

impl SearchRequest {
    /// Parameter names are matched case-insensitively: IdPs differ in spelling.
    pub fn from_params(params: &[(String, String)]) -> SearchRequest {
        let get = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        SearchRequest {
            filter: get("filter"),
            sort_by: get("sortBy"),
            sort_order: get("sortOrder"),
            start_index: get("startIndex"),
            count: get("count"),
            attributes: get("attributes"),
            excluded_attributes: get("excludedAttributes"),
            cursor: get("cursor"),
        }
    }

    pub fn from_body(body: &Map<String, Value>) -> Result<SearchRequest, ScimError> {
        let get = |name: &str| {
            body.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        };
        if let Some(schemas) = get("schemas").and_then(Value::as_array) {
            if !schemas.iter().any(|s| {
                s.as_str()
                    .is_some_and(|s| s.eq_ignore_ascii_case(SEARCH_REQUEST_SCHEMA))
            }) {
                return Err(ScimError::invalid_value(format!(
                    "a search request's schemas must be [\"{SEARCH_REQUEST_SCHEMA}\"]"
                )));
            }
        }
        let scalar = |name: &str| -> Result<Option<String>, ScimError> {
            match get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(Value::Number(n)) => Ok(Some(n.to_string())),
                Some(other) => Err(ScimError::invalid_value(format!(
                    "'{name}' cannot be {other}"
                ))),
            }
        };
        let list = |name: &str| -> Result<Option<String>, ScimError> {
            match get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(Value::Array(items)) => Ok(Some(
                    items
                        .iter()
                        .map(|i| {
                            i.as_str().map(str::to_string).ok_or_else(|| {
                                ScimError::invalid_value(format!(
                                    "'{name}' must list attribute names"
                                ))
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()?
                        .join(","),
                )),
                Some(other) => Err(ScimError::invalid_value(format!(
                    "'{name}' cannot be {other}"
                ))),
            }
        };
        Ok(SearchRequest {
            filter: scalar("filter")?,
            sort_by: scalar("sortBy")?,
            sort_order: scalar("sortOrder")?,
            start_index: scalar("startIndex")?,
            count: scalar("count")?,
            attributes: list("attributes")?,
            excluded_attributes: list("excludedAttributes")?,
            cursor: scalar("cursor")?,
        })
    }

    pub fn into_query(self, settings: &Settings) -> Result<(Query, Paging), ScimError> {
        let paging = Paging::from_params(
            self.start_index.as_deref(),
            self.count.as_deref(),
            settings.default_page_size,
            settings.max_page_size,
        )?;
        let projection = Projection::parse(
            self.attributes.as_deref(),
            self.excluded_attributes.as_deref(),
        )?;
        let mut query = Query::parse(
            self.filter.as_deref(),
            self.sort_by.as_deref(),
            self.sort_order.as_deref(),
            paging,
            projection,
        )?;
        query.cursor = self.cursor.as_deref().map(cursor::decode).transpose()?;
        Ok((query, paging))
    }
}
