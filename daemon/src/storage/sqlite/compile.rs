//! Turns a [`Query`] into SQL over the `milestones` table, with every value
//! bound as a parameter (never spliced into the text). The SQL means exactly
//! what the in-memory engine in [`crate::query`] does; the end-to-end suite
//! runs the same queries on every backend to keep it so.
//!
//! Core text fields and `priority` order use their indexed columns; any
//! other path is read with `json_type`/`json_extract`.

use milestones_protocol::{Filter, FilterOp, Query, Value};
use rusqlite::types::Value as SqlValue;

use crate::query::{list_index, TEXT_FIELDS};
use crate::search::SearchTerms;
use crate::storage::record::{comparison, ordered_column, sort_keys, COUNTED};

use super::search_function;

/// A `WHERE` clause and an `ORDER BY` list with their parameters, in order.
#[derive(Debug, Default)]
pub struct CompiledQuery {
    pub where_sql: String,
    pub where_params: Vec<SqlValue>,
    pub order_sql: String,
    pub order_params: Vec<SqlValue>,
    /// True when `where_sql` reads only the columns `milestone_counts`
    /// keeps ([`COUNTED`]), so the total is a sum over it.
    pub counted: bool,
    /// True when the matches are sorted rather than read along an index
    /// (a search, an order of several keys or of a path no column holds):
    /// the page then sorts only rowids ([`Self::page_sql`]).
    pub sorted: bool,
    /// A search that is the only filter (besides leaving archived
    /// milestones out): its total is then counted in the search index
    /// itself ([`Self::count_sql`]).
    search_alone: Option<SearchAlone>,
    /// With a search, in an order one index keeps: `where_sql` with the
    /// search as a set to look rows up in rather than rows to start from,
    /// so that the page is read along that index ([`Self::walk_page`]).
    walk_where_sql: Option<String>,
    /// The same with each row's text asked instead ([`search_function`]),
    /// and its parameters.
    ask_where_sql: Option<String>,
    ask_params: Vec<SqlValue>,
}

#[derive(Debug, Clone, Copy)]
enum SearchAlone {
    ArchivedToo,
    Unarchived,
}

/// How a search's page is read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SearchPage {
    /// Every match looked up, and the page sorted out of them.
    Sorted,
    /// Along the order's index, each row met looked up among the matches.
    Walked,
    /// Along the order's index, each row met asked whether its text
    /// matches, without finding every match first.
    WalkedAsking,
}

/// How a search with `matches` of `milestones` is best read for the
/// `wanted` rows (offset and limit).
///
/// Sorting costs a lookup of every match; walking costs a step along the
/// index for each row passed before the page is full, about `wanted ×
/// milestones / matches`, and first the set of every match; asking costs
/// more per row met, without that set. At 100,000 milestones, a page of
/// 20: for 1,000 matches, walking (about 2,000 steps) took 0.8 ms and
/// sorting 6 ms; for 100 matches, walking (about 20,000 steps) 3.4 ms and
/// sorting 2.3 ms. A lookup cost 15 steps or more; 8 leaves a margin.
/// In the `sqlite3` shell, with `instr` standing in for the search
/// function, asking a row took about 6 µs (2,000 rows for 1,000 matches:
/// 12 ms, where walking took 2 ms), and the set about 0.15 µs a match
/// (100,000 matches: 15 ms, where asking took 0.1 ms): asking pays once a
/// row asked costs less than the 40 matches it saves putting in the set.
pub fn search_page(matches: u64, milestones: u64, wanted: Option<u64>) -> SearchPage {
    const STEPS_PER_LOOKUP: u128 = 8;
    const MATCHES_PER_ASK: u128 = 40;
    let Some(wanted) = wanted else { return SearchPage::Sorted };
    let walked = (wanted as u128) * (milestones as u128);
    let squared = (matches as u128) * (matches as u128);
    if walked * MATCHES_PER_ASK < squared {
        SearchPage::WalkedAsking
    } else if walked < STEPS_PER_LOOKUP * squared {
        SearchPage::Walked
    } else {
        SearchPage::Sorted
    }
}

impl CompiledQuery {
    /// The statement counting every match (its parameters: `where_params`).
    ///
    /// A search alone is counted in the search index, which holds one row
    /// per milestone (written in the same transaction as the milestone),
    /// less the archived milestones among them: looking up every match's
    /// status instead took 60 ms for 100,000 matches.
    pub fn count_sql(&self) -> String {
        const MATCHES: &str = "SELECT rowid FROM milestones_fts WHERE milestones_fts MATCH ?1";
        match self.search_alone {
            Some(SearchAlone::ArchivedToo) => format!("SELECT COUNT(*) FROM ({MATCHES})"),
            Some(SearchAlone::Unarchived) => format!(
                "SELECT (SELECT COUNT(*) FROM ({MATCHES})) - (SELECT COUNT(*) FROM milestones m \
                 WHERE m.status = 'archived' AND +m.rowid IN ({MATCHES}))"
            ),
            None if self.counted => {
                format!("SELECT COALESCE(SUM(m.n), 0) FROM milestone_counts m WHERE {}", self.where_sql)
            }
            None => format!("SELECT COUNT(*) FROM milestones m WHERE {}", self.where_sql),
        }
    }

    /// The statement reading one page (its parameters: [`Self::page_params`]):
    /// each row's id and document, or, when [`Self::sorted`], its rowid
    /// alone, so that sorting every match of a broad search does not carry
    /// every document along (the documents are read by rowid afterwards).
    pub fn page_sql(&self) -> String {
        let columns = if self.sorted { "m.rowid" } else { "m.id, m.data" };
        format!(
            "SELECT {columns} FROM milestones m WHERE {} ORDER BY {} LIMIT ? OFFSET ?",
            self.where_sql, self.order_sql
        )
    }

    /// With a search in an order one index keeps, the statement reading
    /// one page along that index, each row's id and document, and its
    /// parameters; `asking` each row's text rather than looking it up
    /// among the matches (see [`search_page`]).
    pub fn walk_page(&self, query: &Query, asking: bool) -> Option<(String, Vec<SqlValue>)> {
        let (where_sql, params) = if asking {
            (self.ask_where_sql.as_ref()?, &self.ask_params)
        } else {
            (self.walk_where_sql.as_ref()?, &self.where_params)
        };
        let sql = format!(
            "SELECT m.id, m.data FROM milestones m WHERE {where_sql} ORDER BY {} LIMIT ? OFFSET ?",
            self.order_sql
        );
        Some((sql, self.params_with(params, query).collect()))
    }

    /// True for a search in an order one index keeps: its page may be
    /// read along that index ([`Self::walk_page`]).
    pub fn walkable(&self) -> bool {
        self.walk_where_sql.is_some()
    }

    pub fn page_params(&self, query: &Query) -> impl Iterator<Item = SqlValue> + '_ {
        self.params_with(&self.where_params, query)
    }

    fn params_with<'a>(&'a self, where_params: &'a [SqlValue], query: &Query) -> impl Iterator<Item = SqlValue> + 'a {
        let limit = query.limit.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
        let offset = i64::try_from(query.offset).unwrap_or(i64::MAX);
        where_params
            .iter()
            .chain(&self.order_params)
            .cloned()
            .chain([SqlValue::Integer(limit), SqlValue::Integer(offset)])
    }
}

pub fn compile(query: &Query, terms: Option<&SearchTerms>) -> CompiledQuery {
    let mut conditions = Vec::new();
    let mut params = Vec::new();
    if !crate::query::wants_archived(query) {
        conditions.push(NOT_ARCHIVED.to_owned());
    }
    let keys = sort_keys(query);
    // Ordered by an indexed field other than newest first (which the
    // status, priority and category indexes keep within each value), the
    // page is read along that field's index, the filters checked on the
    // way: SQLite, with no statistics, would rather take every match
    // from a filter's index and sort them all. A unary `+` keeps it off
    // those indexes (and changes nothing else).
    let along_order =
        matches!(keys.as_slice(), [key] if ordered_column(&key.path).is_some()) && keys != crate::query::default_sort();
    for filter in &query.filters {
        conditions.push(filter_sql(filter, along_order, &mut params));
    }
    let search = terms.map(|terms| SqlValue::Text(terms.fts_expression()));
    let mut walk_conditions = None;
    let mut ask = None;
    if let (Some(search), Some(terms)) = (&search, terms) {
        // `+`: found in the set of matches, not read from it.
        walk_conditions = Some([conditions.as_slice(), &[format!("+{MATCHING}")]].concat());
        let asking = format!("{}((SELECT body FROM milestones_fts WHERE rowid = m.rowid), ?)", search_function::NAME);
        let words = SqlValue::Text(terms.words().join(" "));
        ask = Some(([conditions.as_slice(), &[asking]].concat(), [params.as_slice(), &[words]].concat()));
        conditions.push(MATCHING.to_owned());
        params.push(search.clone());
    }
    let joined =
        |conditions: Vec<String>| if conditions.is_empty() { "1".to_owned() } else { conditions.join(" AND ") };
    let where_sql = joined(conditions);

    let mut order = Vec::new();
    let mut order_params = Vec::new();
    for key in &keys {
        let dir = if key.descending { "DESC" } else { "ASC" };
        if let Some(column) = ordered_column(&key.path) {
            // Missing last. SQLite puts NULL first going up and last going
            // down; these are the exact terms of the indexes that serve
            // each order (see `schema::milestones_indexes`).
            if key.descending || column == "id" {
                // (`id` is never missing.)
                order.push(format!("m.{column} {dir}"));
            } else {
                order.push(format!("m.{column} IS NULL"));
                order.push(format!("m.{column} ASC"));
            }
        } else {
            // Missing last, then type (booleans, numbers, text, lists,
            // mappings), then value; lists and mappings tie.
            let p = json_path(&key.path);
            order.push("IFNULL(json_type(m.data, ?), 'null') = 'null'".to_owned());
            order.push(format!(
                "CASE json_type(m.data, ?) WHEN 'true' THEN 0 WHEN 'false' THEN 0 WHEN 'integer' THEN 1 \
                 WHEN 'real' THEN 1 WHEN 'text' THEN 2 WHEN 'array' THEN 3 WHEN 'object' THEN 4 END {dir}"
            ));
            order.push(format!(
                "CASE WHEN json_type(m.data, ?) IN ('array', 'object') THEN NULL ELSE json_extract(m.data, ?) END {dir}"
            ));
            order_params.extend([p.clone(), p.clone(), p.clone(), p]);
        }
    }
    // Ties by id, which by itself needs no tie-breaker.
    if keys.last().is_none_or(|k| k.path != "id") {
        order.push("m.id ASC".to_owned());
    }
    let counted = terms.is_none() && query.filters.iter().all(|f| COUNTED.contains(&f.path.as_str()));
    let indexed = matches!(keys.as_slice(), [key] if ordered_column(&key.path).is_some());
    let sorted = terms.is_some() || !indexed;
    let search_alone = (search.is_some() && query.filters.is_empty()).then(|| {
        if crate::query::wants_archived(query) {
            SearchAlone::ArchivedToo
        } else {
            SearchAlone::Unarchived
        }
    });
    CompiledQuery {
        where_sql,
        where_params: params,
        order_sql: order.join(", "),
        order_params,
        counted,
        sorted,
        search_alone,
        walk_where_sql: walk_conditions.filter(|_| indexed).map(joined),
        ask_where_sql: ask.as_ref().filter(|_| indexed).map(|(conditions, _)| joined(conditions.clone())),
        ask_params: ask.map(|(_, params)| params).unwrap_or_default(),
    }
}

/// The condition leaving archived milestones out.
const NOT_ARCHIVED: &str = "m.status IS NOT 'archived'";

/// The condition of a search (its parameter: the match expression).
const MATCHING: &str = "m.rowid IN (SELECT rowid FROM milestones_fts WHERE milestones_fts MATCH ?)";

/// The column holding a core text field, if `path` is one.
fn text_column(path: &str) -> Option<String> {
    TEXT_FIELDS.contains(&path).then(|| format!("m.{path}"))
}

/// `a.b.0.c` as a JSON path: `$."a"."b"[0]."c"`. Path segments were checked
/// to be letters, digits, `_` and `-`, and the path is bound, never spliced.
fn json_path(path: &str) -> SqlValue {
    let mut out = String::from("$");
    for seg in path.split('.') {
        match list_index(seg) {
            Some(i) => out.push_str(&format!("[{i}]")),
            None => out.push_str(&format!(".\"{seg}\"")),
        }
    }
    SqlValue::Text(out)
}

fn bind(value: &Value) -> SqlValue {
    match value {
        Value::Null => SqlValue::Null,
        Value::Bool(b) => SqlValue::Integer(i64::from(*b)),
        Value::Int(i) => SqlValue::Integer(*i),
        Value::Float(f) => SqlValue::Real(*f),
        Value::String(s) => SqlValue::Text(s.clone()),
        // `query::check` refuses lists and mappings as filter values.
        Value::List(_) | Value::Map(_) => SqlValue::Null,
    }
}

fn filter_sql(filter: &Filter, along_order: bool, params: &mut Vec<SqlValue>) -> String {
    match text_column(&filter.path) {
        Some(column) if along_order => text_filter(&format!("+{column}"), filter, params),
        Some(column) => text_filter(&column, filter, params),
        None => json_filter(filter, params),
    }
}

/// A filter on a column that is text or NULL.
fn text_filter(column: &str, filter: &Filter, params: &mut Vec<SqlValue>) -> String {
    let value = &filter.value;
    let mut with = |sql: String| {
        params.push(bind(value));
        sql
    };
    match (filter.op, value) {
        (FilterOp::Exists, Value::Bool(true)) => format!("{column} IS NOT NULL"),
        (FilterOp::Exists, _) => format!("{column} IS NULL"),
        (FilterOp::Eq, Value::String(_)) => with(format!("{column} IS ?")),
        (FilterOp::Ne, Value::String(_)) => with(format!("{column} IS NOT ?")),
        (FilterOp::Eq, Value::Null) => format!("{column} IS NULL"),
        (FilterOp::Ne, Value::Null) => format!("{column} IS NOT NULL"),
        (FilterOp::Eq, _) => "0".to_owned(),
        (FilterOp::Ne, _) => "1".to_owned(),
        (FilterOp::Contains, Value::String(_)) => with(format!("instr(lower({column}), lower(?)) > 0")),
        (FilterOp::Contains, _) => "0".to_owned(),
        (op, Value::String(_)) => with(format!("{column} {} ?", comparison(op))),
        _ => "0".to_owned(),
    }
}

/// A filter on any other path, read from the JSON.
fn json_filter(filter: &Filter, params: &mut Vec<SqlValue>) -> String {
    let path = json_path(&filter.path);
    let value = &filter.value;
    let is_null = "IFNULL(json_type(m.data, ?), 'null') = 'null'";
    // The field has `value`'s type (numbers count as one type).
    let same_type = match value {
        Value::String(_) => "json_type(m.data, ?) = 'text'",
        Value::Int(_) | Value::Float(_) => "json_type(m.data, ?) IN ('integer', 'real')",
        Value::Bool(true) => "json_type(m.data, ?) = 'true'",
        Value::Bool(false) => "json_type(m.data, ?) = 'false'",
        _ => "0",
    };
    let equal = |params: &mut Vec<SqlValue>| -> String {
        match value {
            Value::Null => {
                params.push(path.clone());
                is_null.to_owned()
            }
            Value::Bool(_) => {
                params.push(path.clone());
                same_type.to_owned()
            }
            Value::String(_) | Value::Int(_) | Value::Float(_) => {
                params.extend([path.clone(), path.clone(), bind(value)]);
                format!("({same_type} AND json_extract(m.data, ?) = ?)")
            }
            Value::List(_) | Value::Map(_) => "0".to_owned(),
        }
    };
    match filter.op {
        FilterOp::Exists => {
            params.push(path.clone());
            if *value == Value::Bool(true) {
                format!("NOT ({is_null})")
            } else {
                is_null.to_owned()
            }
        }
        FilterOp::Eq => equal(params),
        FilterOp::Ne => format!("NOT IFNULL({}, 0)", equal(params)),
        FilterOp::Lt | FilterOp::Le | FilterOp::Gt | FilterOp::Ge => match value {
            Value::String(_) | Value::Int(_) | Value::Float(_) => {
                params.extend([path.clone(), path.clone(), bind(value)]);
                format!("IFNULL({same_type} AND json_extract(m.data, ?) {} ?, 0)", comparison(filter.op))
            }
            _ => "0".to_owned(),
        },
        FilterOp::Contains => {
            // Text containing the needle (ASCII case folded, as in memory),
            // or a list holding an element equal to it.
            let element = match value {
                Value::String(_) => "e.type = 'text' AND e.value = ?",
                Value::Int(_) | Value::Float(_) => "e.type IN ('integer', 'real') AND e.value = ?",
                Value::Bool(true) => "e.type = 'true'",
                Value::Bool(false) => "e.type = 'false'",
                Value::Null => "e.type = 'null'",
                Value::List(_) | Value::Map(_) => "0",
            };
            let mut sql = String::from("(");
            if let Value::String(_) = value {
                params.extend([path.clone(), path.clone(), bind(value)]);
                sql.push_str(
                    "IFNULL(json_type(m.data, ?) = 'text' AND instr(lower(json_extract(m.data, ?)), lower(?)) > 0, 0) OR ",
                );
            }
            params.extend([path.clone(), path.clone()]);
            sql.push_str(
                "IFNULL(json_type(m.data, ?) = 'array', 0) AND EXISTS (SELECT 1 FROM json_each(m.data, ?) e WHERE ",
            );
            sql.push_str(element);
            if element.ends_with('?') {
                params.push(bind(value));
            }
            sql.push_str("))");
            sql
        }
    }
}
