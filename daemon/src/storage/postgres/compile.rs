//! Turns a [`Query`] into PostgreSQL over the `milestones` table, with every
//! value bound as a parameter. The SQL means exactly what the in-memory
//! engine in [`crate::query`] does (the conformance tests run generated
//! queries through both):
//!
//! - a path is walked with `->` per key, or as a strict JSON path when it
//!   has a list index, so a digit segment indexes a list only (never a key,
//!   never a scalar);
//! - numbers compare as doubles, text byte by byte (`COLLATE "C"`), and a
//!   cast is only ever reached behind a `CASE` that checked the JSON type
//!   (PostgreSQL does not promise to evaluate `AND` in order);
//! - `contains` folds ASCII case only (`lower` under the "C" collation);
//! - sorting puts missing values last, then orders by type (booleans,
//!   numbers, text, lists, mappings), then value; ties go by id.

use milestones_protocol::{Filter, FilterOp, Query, Value};
use postgres::types::ToSql;

use crate::query::{list_index, TEXT_FIELDS};
use crate::search::SearchTerms;
use crate::storage::record::{comparison, ordered_column, sort_keys, COUNTED};

/// A bound value.
#[derive(Debug, Clone)]
pub enum Param {
    Text(String),
    Float(f64),
    BigInt(Option<i64>),
}

impl Param {
    pub fn as_sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            Param::Text(s) => s,
            Param::Float(f) => f,
            Param::BigInt(i) => i,
        }
    }
}

/// A `WHERE` clause and an `ORDER BY` list, numbering their parameters
/// from `$1` in the order they appear.
#[derive(Debug, Default)]
pub struct CompiledQuery {
    pub where_sql: String,
    pub order_sql: String,
    pub params: Vec<Param>,
    /// How many of `params` the `WHERE` clause uses (the count query binds
    /// only those).
    pub where_params: usize,
    /// True when the `WHERE` clause reads only the columns
    /// `milestone_counts` keeps ([`COUNTED`]), so the total is a sum over it.
    pub counted: bool,
}

impl CompiledQuery {
    /// Binds `value` and returns its placeholder, cast to `ty`.
    fn bind(&mut self, value: Param, ty: &str) -> String {
        self.params.push(value);
        format!("${}::{ty}", self.params.len())
    }

    /// The JSON at `path` inside `m.data`. Keys are walked with `->`; a
    /// path with a list index goes through a strict JSON path instead,
    /// since `->` with a number reads a scalar as a list of one.
    fn path(&mut self, path: &str) -> String {
        if path.split('.').any(|seg| list_index(seg).is_some()) {
            let mut json_path = String::from("strict $");
            for seg in path.split('.') {
                match list_index(seg) {
                    Some(i) => json_path.push_str(&format!("[{i}]")),
                    // Segments are letters, digits, `_` and `-` (`query::check`).
                    None => json_path.push_str(&format!(".\"{seg}\"")),
                }
            }
            let bound = self.bind(Param::Text(json_path), "text::jsonpath");
            return format!("jsonb_path_query_first(m.data, {bound}, '{{}}', true)");
        }
        let mut expr = String::from("m.data");
        for seg in path.split('.') {
            expr.push_str(" -> ");
            expr.push_str(&self.bind(Param::Text(seg.to_owned()), "text"));
        }
        format!("({expr})")
    }

    /// A placeholder for a filter's value: text, a number as a double.
    fn value(&mut self, value: &Value) -> String {
        match value {
            Value::String(s) => self.bind(Param::Text(s.clone()), "text"),
            Value::Int(i) => self.bind(Param::Float(*i as f64), "float8"),
            Value::Float(f) => self.bind(Param::Float(*f), "float8"),
            // `query::check` refuses the rest where a value is compared.
            _ => "NULL".to_owned(),
        }
    }

    /// Appends `LIMIT` and `OFFSET` placeholders; NULL means no limit.
    fn page(&mut self, limit: Option<u64>, offset: u64) -> String {
        let limit = limit.map(|l| i64::try_from(l).unwrap_or(i64::MAX));
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        let limit = self.bind(Param::BigInt(limit), "int8");
        let offset = self.bind(Param::BigInt(Some(offset)), "int8");
        format!("LIMIT {limit} OFFSET {offset}")
    }

    pub fn sql_params(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params.iter().map(Param::as_sql).collect()
    }

    /// The statement counting every match (its parameters: the first
    /// `where_params`).
    pub fn count_sql(&self) -> String {
        if self.counted {
            format!("SELECT COALESCE(SUM(n), 0)::int8 FROM milestone_counts m WHERE {}", self.where_sql)
        } else {
            format!("SELECT COUNT(*) FROM milestones m WHERE {}", self.where_sql)
        }
    }

    /// The statement reading one page; binds its limit and offset.
    pub fn page_sql(&mut self, limit: Option<u64>, offset: u64) -> String {
        let page = self.page(limit, offset);
        format!("SELECT m.id, m.document FROM milestones m WHERE {} ORDER BY {} {page}", self.where_sql, self.order_sql)
    }
}

pub fn compile(query: &Query, terms: Option<&SearchTerms>) -> CompiledQuery {
    let mut q = CompiledQuery::default();
    let mut conditions = Vec::new();
    if !crate::query::wants_archived(query) {
        conditions.push("m.status IS DISTINCT FROM 'archived'".to_owned());
    }
    for filter in &query.filters {
        let condition = match text_column(&filter.path) {
            Some(column) => text_filter(&mut q, &column, filter),
            None => json_filter(&mut q, filter),
        };
        conditions.push(condition);
    }
    if let Some(terms) = terms {
        let tsquery = q.bind(Param::Text(terms.tsquery_expression()), "text::tsquery");
        conditions.push(format!("m.search @@ {tsquery}"));
    }
    q.where_sql = if conditions.is_empty() { "TRUE".to_owned() } else { conditions.join(" AND ") };
    q.where_params = q.params.len();
    q.counted = terms.is_none() && query.filters.iter().all(|f| COUNTED.contains(&f.path.as_str()));

    let keys = sort_keys(query);
    let mut order = Vec::new();
    for key in &keys {
        let dir = if key.descending { "DESC" } else { "ASC" };
        if key.path == "id" {
            // Never missing: its primary key serves both directions.
            order.push(format!("m.id {dir}"));
        } else if let Some(column) = ordered_column(&key.path) {
            order.push(format!("m.{column} {dir} NULLS LAST"));
        } else {
            let mut x = || q.path(&key.path);
            order.push(format!("COALESCE(jsonb_typeof({}), 'null') = 'null'", x()));
            order.push(format!(
                "CASE jsonb_typeof({}) WHEN 'boolean' THEN 0 WHEN 'number' THEN 1 WHEN 'string' THEN 2 \
                 WHEN 'array' THEN 3 WHEN 'object' THEN 4 END {dir}",
                x()
            ));
            let (a, b) = (x(), x());
            order.push(format!("CASE WHEN jsonb_typeof({a}) = 'boolean' THEN ({b})::boolean END {dir}"));
            let (a, b) = (x(), x());
            order.push(format!("CASE WHEN jsonb_typeof({a}) = 'number' THEN ({b})::float8 END {dir}"));
            let (a, b) = (x(), x());
            order.push(format!("(CASE WHEN jsonb_typeof({a}) = 'string' THEN {b} #>> '{{}}' END) COLLATE \"C\" {dir}"));
        }
    }
    // Ties by id, which by itself needs no tie-breaker.
    if keys.last().is_none_or(|k| k.path != "id") {
        order.push("m.id ASC".to_owned());
    }
    q.order_sql = order.join(", ");
    q
}

/// The column holding a core text field, if `path` is one.
fn text_column(path: &str) -> Option<String> {
    TEXT_FIELDS.contains(&path).then(|| format!("m.{path}"))
}

/// A filter on a column that is text or NULL (collated "C").
fn text_filter(q: &mut CompiledQuery, column: &str, filter: &Filter) -> String {
    let value = &filter.value;
    match (filter.op, value) {
        (FilterOp::Exists, Value::Bool(true)) => format!("{column} IS NOT NULL"),
        (FilterOp::Exists, _) => format!("{column} IS NULL"),
        (FilterOp::Eq, Value::String(_)) => format!("{column} = {}", q.value(value)),
        (FilterOp::Ne, Value::String(_)) => format!("{column} IS DISTINCT FROM {}", q.value(value)),
        (FilterOp::Eq, Value::Null) => format!("{column} IS NULL"),
        (FilterOp::Ne, Value::Null) => format!("{column} IS NOT NULL"),
        (FilterOp::Eq, _) => "FALSE".to_owned(),
        (FilterOp::Ne, _) => "TRUE".to_owned(),
        (FilterOp::Contains, Value::String(_)) => {
            format!("COALESCE(strpos(lower({column}), lower({} COLLATE \"C\")) > 0, FALSE)", q.value(value))
        }
        (FilterOp::Contains, _) => "FALSE".to_owned(),
        (op, Value::String(_)) => format!("COALESCE({column} {} {}, FALSE)", comparison(op), q.value(value)),
        _ => "FALSE".to_owned(),
    }
}

/// A filter on any other path, read from the JSON.
fn json_filter(q: &mut CompiledQuery, filter: &Filter) -> String {
    let value = &filter.value;
    let path = filter.path.as_str();
    let is_null = |q: &mut CompiledQuery| format!("COALESCE(jsonb_typeof({}), 'null') = 'null'", q.path(path));
    // The value at the path as a double, NULL unless it is a number.
    let number = |q: &mut CompiledQuery| {
        let (a, b) = (q.path(path), q.path(path));
        format!("(CASE WHEN jsonb_typeof({a}) = 'number' THEN ({b})::float8 END)")
    };
    let text = |q: &mut CompiledQuery| {
        let (a, b) = (q.path(path), q.path(path));
        format!("(CASE WHEN jsonb_typeof({a}) = 'string' THEN {b} #>> '{{}}' END) COLLATE \"C\"")
    };
    let equal = |q: &mut CompiledQuery| -> String {
        match value {
            Value::Null => is_null(q),
            Value::Bool(b) => format!("COALESCE({} = '{b}'::jsonb, FALSE)", q.path(path)),
            Value::String(_) => {
                let x = q.path(path);
                format!("COALESCE({x} = to_jsonb({}), FALSE)", q.value(value))
            }
            Value::Int(_) | Value::Float(_) => {
                let n = number(q);
                format!("COALESCE({n} = {}, FALSE)", q.value(value))
            }
            Value::List(_) | Value::Map(_) => "FALSE".to_owned(),
        }
    };
    match filter.op {
        FilterOp::Exists if *value == Value::Bool(true) => format!("NOT ({})", is_null(q)),
        FilterOp::Exists => is_null(q),
        FilterOp::Eq => equal(q),
        FilterOp::Ne => format!("NOT ({})", equal(q)),
        FilterOp::Lt | FilterOp::Le | FilterOp::Gt | FilterOp::Ge => {
            let field = match value {
                Value::String(_) => text(q),
                Value::Int(_) | Value::Float(_) => number(q),
                _ => return "FALSE".to_owned(),
            };
            format!("COALESCE({field} {} {}, FALSE)", comparison(filter.op), q.value(value))
        }
        FilterOp::Contains => {
            // Text containing the needle (ASCII case folded, as in memory),
            // or a list holding an element equal to it.
            let mut sql = String::from("(");
            if let Value::String(_) = value {
                let t = text(q);
                sql.push_str(&format!(
                    "COALESCE(strpos(lower({t}), lower({} COLLATE \"C\")) > 0, FALSE) OR ",
                    q.value(value)
                ));
            }
            let element = match value {
                Value::String(_) => format!("e = to_jsonb({})", q.value(value)),
                Value::Int(_) | Value::Float(_) => {
                    format!("(CASE WHEN jsonb_typeof(e) = 'number' THEN e::float8 END) = {}", q.value(value))
                }
                Value::Bool(b) => format!("e = '{b}'::jsonb"),
                Value::Null => "e = 'null'::jsonb".to_owned(),
                Value::List(_) | Value::Map(_) => "FALSE".to_owned(),
            };
            let (a, b) = (q.path(path), q.path(path));
            sql.push_str(&format!(
                "EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof({a}) = 'array' THEN {b} END) e \
                 WHERE {element}))"
            ));
            sql
        }
    }
}
