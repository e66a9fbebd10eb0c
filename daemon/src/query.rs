//! Evaluating a [`Query`] in memory: the file backend's query engine, and the
//! reference the database backends' SQL must agree with.
//!
//! Rules every backend follows:
//! - a path's segments are map keys, except that a number indexes a list;
//! - the core text fields ([`TEXT_FIELDS`]) count only when they hold text:
//!   any other value there is treated as absent (and `validate` reports it),
//!   which is what lets SQL backends answer from plain indexed columns;
//! - sort keys apply in order, missing values last whatever the direction,
//!   `priority` ranked (low < medium < high < critical), ties broken by id
//!   ascending; values of different types order booleans, numbers, text,
//!   lists, mappings;
//! - archived milestones are left out unless asked for;
//! - text search follows [`crate::search`].

use std::borrow::Cow;
use std::cmp::Ordering;

use milestones_protocol::{Filter, FilterOp, Map, Page, Query, SortKey, Value};

use crate::document::{Status, PRIORITIES};
use crate::search::SearchTerms;

/// A query that cannot mean anything (a filter on a value it cannot take,
/// search text with no words).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid query: {0}")]
pub struct QueryError(pub String);

type QueryResult<T> = Result<T, QueryError>;

/// Core fields that are text or absent as far as queries are concerned.
pub const TEXT_FIELDS: [&str; 8] =
    ["id", "title", "status", "priority", "category", "created_at", "updated_at", "completed_at"];

/// The sort order when a query names none: newest first.
pub fn default_sort() -> Vec<SortKey> {
    vec![SortKey { path: "created_at".into(), descending: true }]
}

/// True when archived milestones belong in the result.
pub fn wants_archived(query: &Query) -> bool {
    query.include_archived || query.filters.iter().any(|f| f.path == "status" && f.value.as_str() == Some("archived"))
}

/// The search terms of a query, refusing text with no words in it.
pub fn search_terms(query: &Query) -> QueryResult<Option<SearchTerms>> {
    SearchTerms::parse(query.text.as_deref()).map_err(QueryError)
}

/// Refuses queries that cannot mean anything, before any work is done.
pub fn check(query: &Query) -> QueryResult<()> {
    search_terms(query)?;
    for filter in &query.filters {
        check_path(&filter.path)?;
        let ok = match filter.op {
            FilterOp::Exists => matches!(filter.value, Value::Bool(_)),
            FilterOp::Lt | FilterOp::Le | FilterOp::Gt | FilterOp::Ge => {
                matches!(filter.value, Value::Int(_) | Value::Float(_) | Value::String(_))
            }
            FilterOp::Eq | FilterOp::Ne | FilterOp::Contains => !matches!(filter.value, Value::List(_) | Value::Map(_)),
        };
        if !ok {
            return Err(QueryError(format!(
                "filter {:?} on `{}` cannot take a {}",
                filter.op,
                filter.path,
                filter.value.type_name()
            )));
        }
    }
    for key in &query.sort {
        check_path(&key.path)?;
    }
    Ok(())
}

fn check_path(path: &str) -> QueryResult<()> {
    let valid = !path.is_empty()
        && path
            .split('.')
            .all(|seg| !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'));
    if valid {
        Ok(())
    } else {
        Err(QueryError(format!(
            "`{path}` is not a field path (use dotted names such as `status` or `progress.percentage`)"
        )))
    }
}

/// Runs `query` over `docs`.
pub fn run<D: AsRef<Map>>(query: &Query, docs: impl Iterator<Item = D>) -> QueryResult<Page> {
    check(query)?;
    let terms = search_terms(query)?;
    let wants_archived = wants_archived(query);
    let default_sort = default_sort();
    let keys = if query.sort.is_empty() { &default_sort[..] } else { &query.sort[..] };
    let order = |a: &Hit<D>, b: &Hit<D>| {
        compare_keys(&a.0, &b.0, keys)
            .then_with(|| crate::document::id(a.1.as_ref()).cmp(&crate::document::id(b.1.as_ref())))
    };
    let offset = usize::try_from(query.offset).unwrap_or(usize::MAX);
    let limit = query.limit.map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
    // A page needs only its first `offset + limit` in order: whenever twice
    // that many are held, the first are picked out in linear time and the
    // rest let go, so a page of a large project holds little more than the
    // page (documents may be read back one by one, not borrowed).
    let wanted = offset.saturating_add(limit);
    let mut total = 0u64;
    let mut hits: Vec<Hit<D>> = Vec::new();
    for doc in docs {
        let d = doc.as_ref();
        if (wants_archived || crate::document::status(d) != Some(Status::Archived))
            && query.filters.iter().all(|f| matches(d, f))
            && terms.as_ref().is_none_or(|t| t.matches(d))
        {
            // Sort keys are taken once per document, not once per comparison.
            let sort_keys = keys.iter().map(|k| sort_value(d, &k.path).map(|v| Cow::Owned(v.into_owned()))).collect();
            hits.push((sort_keys, doc));
            total += 1;
            if hits.len() >= wanted.saturating_mul(2).max(1024) {
                hits.select_nth_unstable_by(wanted, order);
                hits.truncate(wanted);
            }
        }
    }
    if wanted < hits.len() {
        hits.select_nth_unstable_by(wanted, order);
        hits.truncate(wanted);
    }
    hits.sort_unstable_by(order);
    let items = hits.into_iter().skip(offset).map(|(_, d)| Value::Map(d.as_ref().clone())).collect();
    Ok(Page { items, total })
}

/// A document a query matched, with its sort keys.
type Hit<D> = (Vec<Option<Cow<'static, Value>>>, D);

/// The value a query sees at `path`: `None` when absent, null, or (for a
/// core text field) not text.
pub fn lookup<'a>(doc: &'a Map, path: &str) -> Option<&'a Value> {
    let mut segments = path.split('.');
    let first = segments.next().filter(|s| list_index(s).is_none())?;
    let mut cur = doc.get(first)?;
    for seg in segments {
        cur = match (cur, list_index(seg)) {
            (Value::Map(m), None) => m.get(seg)?,
            (Value::List(items), Some(i)) => items.get(i)?,
            _ => return None,
        };
    }
    match cur {
        Value::Null => None,
        Value::String(_) => Some(cur),
        _ if TEXT_FIELDS.contains(&path) => None,
        _ => Some(cur),
    }
}

/// A path segment made of digits indexes a list (and never names a map key,
/// so that SQL's JSON paths and this engine agree).
pub fn list_index(segment: &str) -> Option<usize> {
    segment.bytes().all(|b| b.is_ascii_digit()).then(|| segment.parse().ok()).flatten()
}

fn matches(doc: &Map, filter: &Filter) -> bool {
    let found = lookup(doc, &filter.path);
    match filter.op {
        FilterOp::Exists => found.is_some() == (filter.value == Value::Bool(true)),
        FilterOp::Eq => found.is_some_and(|v| equal(v, &filter.value)) || (found.is_none() && filter.value.is_null()),
        FilterOp::Ne => {
            !(found.is_some_and(|v| equal(v, &filter.value)) || (found.is_none() && filter.value.is_null()))
        }
        FilterOp::Lt => compare_field(found, &filter.value) == Some(Ordering::Less),
        FilterOp::Le => matches!(compare_field(found, &filter.value), Some(Ordering::Less | Ordering::Equal)),
        FilterOp::Gt => compare_field(found, &filter.value) == Some(Ordering::Greater),
        FilterOp::Ge => matches!(compare_field(found, &filter.value), Some(Ordering::Greater | Ordering::Equal)),
        FilterOp::Contains => match (found, &filter.value) {
            (Some(Value::String(hay)), Value::String(needle)) => {
                hay.to_ascii_lowercase().contains(&needle.to_ascii_lowercase())
            }
            (Some(Value::List(items)), needle) => items.iter().any(|v| equal(v, needle)),
            _ => false,
        },
    }
}

fn equal(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

fn compare_field(found: Option<&Value>, wanted: &Value) -> Option<Ordering> {
    compare_values(found?, wanted)
}

fn compare_values(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        _ => a.as_f64()?.partial_cmp(&b.as_f64()?),
    }
}

/// A value's sort key; `priority` sorts by rank rather than alphabetically.
fn sort_value<'a>(doc: &'a Map, path: &str) -> Option<Cow<'a, Value>> {
    let v = lookup(doc, path)?;
    if path == "priority" {
        let rank = PRIORITIES.iter().position(|p| Some(*p) == v.as_str())?;
        return Some(Cow::Owned(Value::Int(rank as i64)));
    }
    Some(Cow::Borrowed(v))
}

fn compare_keys(a: &[Option<Cow<'_, Value>>], b: &[Option<Cow<'_, Value>>], keys: &[SortKey]) -> Ordering {
    for ((x, y), key) in a.iter().zip(b).zip(keys) {
        let ord = match (x, y) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Greater,
            (Some(_), None) => Ordering::Less,
            (Some(x), Some(y)) => {
                let ord = compare_values(x, y).unwrap_or_else(|| type_rank(x).cmp(&type_rank(y)));
                if key.descending {
                    ord.reverse()
                } else {
                    ord
                }
            }
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    Ordering::Equal
}

/// Orders values of different types (numbers before text before the rest),
/// so sorting mixed data is still total and stable.
fn type_rank(v: &Value) -> u8 {
    match v {
        Value::Null => 6,
        Value::Bool(_) => 0,
        Value::Int(_) | Value::Float(_) => 1,
        Value::String(_) => 2,
        Value::List(_) => 3,
        Value::Map(_) => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// More matches than a page keeps while reading: every page is still
    /// the slice of the whole order, ties broken by id.
    #[test]
    fn pages_of_many_matches_are_slices_of_the_whole_order() {
        let docs: Vec<std::sync::Arc<Map>> = (0..2_500u64)
            .map(|n| {
                let mut doc = Map::new();
                doc.insert("id", Value::from(format!("m-{n:04}")));
                // Few distinct titles, in no order: ties are common.
                doc.insert("title", Value::from(format!("t{}", (n * 7919) % 97)));
                std::sync::Arc::new(doc)
            })
            .collect();
        let sort = vec![SortKey { path: "title".into(), descending: true }];
        let mut expected: Vec<&Map> = docs.iter().map(|d| &**d).collect();
        expected.sort_by(|a, b| {
            let key = |d: &Map| d.get("title").and_then(Value::as_str).map(str::to_owned);
            key(b).cmp(&key(a)).then_with(|| crate::document::id(a).cmp(&crate::document::id(b)))
        });
        for (offset, limit) in [(0, 10), (5, 1), (1_990, 25), (2_490, 50), (0, 2_500)] {
            let query = Query { sort: sort.clone(), offset, limit: Some(limit), ..Query::default() };
            let page = run(&query, docs.iter()).unwrap();
            assert_eq!(page.total, 2_500);
            let want: Vec<Value> =
                expected.iter().skip(offset as usize).take(limit as usize).map(|d| Value::Map((*d).clone())).collect();
            assert_eq!(page.items, want, "offset {offset}, limit {limit}");
        }
    }
}
