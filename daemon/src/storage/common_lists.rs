//! The list queries every backend must answer through an index (see each
//! SQL backend's `query_plans` test): every order of a core field both
//! ways, and newest first under each combination of the filters `msctl
//! list` has flags for.

use milestones_protocol::{Filter, FilterOp, Query, SortKey, Value};

/// The columns a query in the default order (newest first) filters by
/// equality: its page must be sought in an index by every one of them,
/// not read along one of them and checked against the others.
pub fn sought_columns(query: &Query) -> Vec<&str> {
    if !query.sort.is_empty() {
        return Vec::new();
    }
    query.filters.iter().filter(|f| f.op == FilterOp::Eq).map(|f| f.path.as_str()).collect()
}

pub fn equal(path: &str, value: &str) -> Filter {
    Filter { path: path.to_owned(), op: FilterOp::Eq, value: Value::String(value.to_owned()) }
}

fn sorted(path: &str, descending: bool) -> Query {
    Query { sort: vec![SortKey { path: path.to_owned(), descending }], limit: Some(50), ..Query::default() }
}

pub fn filtered(filters: Vec<Filter>) -> Query {
    Query { filters, limit: Some(50), ..Query::default() }
}

/// Every list order of a core field, both ways, alone and within one
/// status, and newest first under each combination of the filters `msctl
/// list` has flags for.
pub fn common_queries() -> Vec<Query> {
    let mut queries = vec![filtered(vec![]), Query { include_archived: true, ..filtered(vec![]) }];
    let (status, priority, category) =
        (equal("status", "blocked"), equal("priority", "high"), equal("category", "infra"));
    for path in crate::query::TEXT_FIELDS {
        for descending in [false, true] {
            queries.push(sorted(path, descending));
            // As README's `msctl list --status planning --sort -priority`.
            queries.push(Query { filters: vec![status.clone()], ..sorted(path, descending) });
        }
    }
    for filters in [
        vec![status.clone()],
        vec![priority.clone()],
        vec![category.clone()],
        vec![status.clone(), priority.clone()],
        vec![status.clone(), category.clone()],
        vec![priority.clone(), category.clone()],
        vec![status, priority, category],
        vec![equal("status", "archived")],
    ] {
        queries.push(filtered(filters));
    }
    queries
}
