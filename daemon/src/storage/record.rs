//! `Record`: what a document becomes in the SQL tables, SQLite's and
//! PostgreSQL's (its JSON, the query columns, the search text, the
//! dependency rows), and back.

use milestones_protocol::{DepEdge, FilterOp, Map, Page, Query, SortKey, Value};

use crate::query::TEXT_FIELDS;
use crate::storage::error::{StorageError, StorageResult};
use crate::storage::Doc;

pub struct Record {
    pub id: String,
    /// The document as JSON, keys in document order.
    pub data: String,
    /// Each of [`TEXT_FIELDS`] (after `id`), when its value is text.
    pub text: Vec<(&'static str, Option<String>)>,
    pub priority_rank: Option<i64>,
    pub tasks_total: i64,
    pub tasks_completed: i64,
    pub search_text: String,
    /// Edges the document declares, with how it declares them
    /// (`requires` or `enables`).
    pub edges: Vec<(DepEdge, &'static str)>,
}

impl Record {
    /// Refuses what the SQL tables cannot hold, without building the
    /// record (a migration checks every document before it copies any);
    /// returns the id.
    pub fn check(doc: &Map) -> StorageResult<&str> {
        let id = crate::document::id(doc).ok_or_else(|| StorageError::Invalid("document has no id".into()))?;
        if let Some(path) = doc
            .iter()
            .find_map(|(k, v)| non_finite_number(v).map(|p| if p.is_empty() { k.clone() } else { format!("{k}.{p}") }))
        {
            return Err(StorageError::Invalid(format!(
                "milestone `{id}`: field `{path}` holds a number that is not finite (.nan or .inf), which the database backends cannot store"
            )));
        }
        Ok(id)
    }

    pub fn of(doc: &Map) -> StorageResult<Record> {
        let id = Record::check(doc)?;
        let data = serde_json::to_string(doc)
            .map_err(|e| StorageError::Invalid(format!("milestone `{id}` cannot be written as JSON: {e}")))?;
        let text = TEXT_FIELDS[1..]
            .iter()
            .map(|field| (*field, doc.get(field).and_then(Value::as_str).map(str::to_owned)))
            .collect();
        let priority_rank = doc
            .get("priority")
            .and_then(Value::as_str)
            .and_then(|p| crate::document::PRIORITIES.iter().position(|known| *known == p))
            .map(|rank| rank as i64);
        let (tasks_total, tasks_completed) = crate::analytics::task_counts(doc);
        let edges = crate::graph::declared_edges(doc)
            .into_iter()
            .map(|e| {
                let how = if e.from == id { "requires" } else { "enables" };
                (e, how)
            })
            .collect();
        Ok(Record {
            id: id.to_owned(),
            data,
            text,
            priority_rank,
            tasks_total: tasks_total as i64,
            tasks_completed: tasks_completed as i64,
            search_text: crate::search::searchable_text(doc),
            edges,
        })
    }

    /// Calls `store` with the record of each of `docs`, in order, the
    /// records made on a second thread while `store` writes the ones
    /// before: in a migration's copy into SQLite, making the records (their
    /// JSON, search text and edges) took about a fifth of the copy's time,
    /// and the second core is otherwise idle. Stops at the first error,
    /// from either side.
    pub fn each_of(docs: &[Doc], mut store: impl FnMut(&Record) -> StorageResult<()>) -> StorageResult<()> {
        /// Records per hand-over: few enough that the writer never waits
        /// long for the first, many enough that handing over costs nothing.
        const CHUNK: usize = 64;
        std::thread::scope(|scope| {
            // Two chunks in flight: the maker stays one ahead of the writer.
            let (send, receive) = std::sync::mpsc::sync_channel::<StorageResult<Vec<Record>>>(2);
            scope.spawn(move || {
                for chunk in docs.chunks(CHUNK) {
                    let made = chunk.iter().map(|d| Record::of(d)).collect::<StorageResult<Vec<_>>>();
                    let failed = made.is_err();
                    // The writer hung up (it failed): nothing more is wanted.
                    if send.send(made).is_err() || failed {
                        return;
                    }
                }
            });
            // Dropping `receive` on an early return ends the maker's sends.
            for made in receive {
                made?.iter().try_for_each(&mut store)?;
            }
            Ok(())
        })
    }

    pub fn text_field(&self, field: &str) -> Option<&str> {
        self.text.iter().find(|(f, _)| *f == field).and_then(|(_, v)| v.as_deref())
    }
}

/// Reads a document back from its JSON. A row that does not hold one (an
/// edit by hand in `sqlite3` or `psql`) is `Unreadable`: that milestone
/// cannot be served, and its id stays taken.
pub fn decode(id: &str, data: &str) -> StorageResult<Map> {
    let unreadable = |why: String| StorageError::Unreadable {
        id: id.to_owned(),
        message: format!("the stored data of milestone `{id}` {why}; `msctl delete {id} --purge` removes it"),
    };
    match serde_json::from_str::<Value>(data) {
        Ok(Value::Map(map)) => Ok(map),
        Ok(other) => Err(unreadable(format!("is a {}, not a document", other.type_name()))),
        Err(e) => Err(unreadable(format!("is not valid JSON ({e})"))),
    }
}

/// Adds a decoded row to a page. One that cannot be read is logged and
/// left out of the page and its total (`validate` names it), so that it
/// costs the list nothing but itself; any other error stands.
pub fn add_readable(page: &mut Page, decoded: StorageResult<Map>) -> StorageResult<()> {
    match decoded {
        Ok(doc) => page.items.push(Value::Map(doc)),
        Err(StorageError::Unreadable { id, message }) => {
            tracing::warn!(id, error = %message, "a stored milestone cannot be read; it is left out of the list");
            page.total = page.total.saturating_sub(1);
        }
        Err(e) => return Err(e),
    }
    Ok(())
}

/// The dotted path of the first NaN or infinity in `value`, which JSON cannot
/// represent (serde_json would silently write `null`).
/// The path (`a.b.0`) of the first number that is not finite in `value`;
/// the path is built only when one is found, on the way back up.
fn non_finite_number(value: &Value) -> Option<String> {
    fn inner(value: &Value) -> Option<Vec<String>> {
        let within = |found: Option<Vec<String>>, key: &dyn Fn() -> String| {
            found.map(|mut path| {
                path.push(key());
                path
            })
        };
        match value {
            Value::Float(f) if !f.is_finite() => Some(Vec::new()),
            Value::Map(map) => map.iter().find_map(|(k, v)| within(inner(v), &|| k.clone())),
            Value::List(items) => items.iter().enumerate().find_map(|(i, v)| within(inner(v), &|| i.to_string())),
            _ => None,
        }
    }
    inner(value).map(|mut path| {
        path.reverse();
        path.join(".")
    })
}

/// The SQL operator of an ordering filter (both dialects write them alike).
pub fn comparison(op: FilterOp) -> &'static str {
    match op {
        FilterOp::Lt => "<",
        FilterOp::Le => "<=",
        FilterOp::Gt => ">",
        FilterOp::Ge => ">=",
        FilterOp::Eq => "=",
        FilterOp::Ne => "<>",
        FilterOp::Contains | FilterOp::Exists => "=",
    }
}

/// The sort keys of a query: its own, or newest first.
pub fn sort_keys(query: &Query) -> Vec<SortKey> {
    if query.sort.is_empty() {
        crate::query::default_sort()
    } else {
        query.sort.clone()
    }
}

/// The columns both dialects' `milestone_counts` keep: a query whose
/// filters read only these has its total summed from there.
pub const COUNTED: [&str; 3] = ["status", "priority", "category"];

/// Every non-empty combination of the counted columns, in their order.
/// Each SQL backend reads a list filtered on exactly those columns newest
/// first from an index that begins with them, so that a rare combination
/// costs its own matches rather than a walk through every milestone of
/// one status.
pub fn counted_combinations() -> Vec<Vec<&'static str>> {
    (1..1u32 << COUNTED.len())
        .map(|set| COUNTED.iter().enumerate().filter(|(i, _)| set & (1 << i) != 0).map(|(_, c)| *c).collect())
        .collect()
}

/// The column a sort key on `path` orders by in both dialects: a core
/// text field's own, `priority`'s rank; `None` for a path read from the
/// JSON.
pub fn ordered_column(path: &str) -> Option<&'static str> {
    match path {
        "priority" => Some("priority_rank"),
        _ => crate::query::TEXT_FIELDS.iter().copied().find(|f| *f == path),
    }
}
