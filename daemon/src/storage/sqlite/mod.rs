//! What the hybrid index (`index.db`) and the database backend on SQLite
//! (`enterprise.db`) share: [`MilestoneTable`], the milestones table with its
//! dependency, event and full-text companions, the query compiler, analytics
//! in SQL, and the connection pool.

mod analytics;
mod compile;
mod derived_cache;
mod failure;
mod pool;
#[cfg(test)]
mod query_plans;
mod schema;
mod search_function;
mod tally;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use milestones_protocol::{Analytics, DepEdge, Map, Page, Query, Value};
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, ToSql, Transaction, TransactionBehavior};

pub use self::failure::failed;
pub use self::pool::ConnectionPool;
pub use self::schema::{Flavour, SchemaState};
use crate::document::Doc;
use crate::event_log::AuditEvent;
use crate::graph::DependencyGraph;
use crate::storage::error::{StorageError, StorageResult};
use crate::storage::interface::{Requirement, Revision};
use crate::storage::record::{self, Record};
use crate::storage::tree::Stamp;
use crate::storage::work_nodes::{WorkNodeRows, WORK_NODES};

/// The read side of [`crate::storage::Storage`] (all but `get`) for a
/// backend that answers every read from its `table: MilestoneTable` field.
macro_rules! reads_from_table {
    () => {
        fn count(&self) -> StorageResult<u64> {
            self.table.count()
        }

        fn data_bytes(&self) -> StorageResult<u64> {
            Ok(self.table.file_bytes()? + self.files_bytes()?)
        }

        fn query(&self, query: &milestones_protocol::Query) -> StorageResult<milestones_protocol::Page> {
            self.table.query(query)
        }

        fn query_within(
            &self,
            query: &milestones_protocol::Query,
            fits: &mut dyn FnMut(&milestones_protocol::Value) -> bool,
        ) -> StorageResult<milestones_protocol::Page> {
            self.table.query_within(query, fits)
        }

        fn walk(
            &self,
            visit: &mut dyn FnMut(&Doc),
            unreadable: &mut dyn FnMut(StorageError) -> StorageResult<()>,
        ) -> StorageResult<()> {
            self.table.walk(visit, unreadable)
        }

        fn ids(&self) -> StorageResult<Vec<String>> {
            self.table.ids()
        }

        fn dependency_graph(&self) -> StorageResult<Arc<crate::graph::DependencyGraph>> {
            self.table.dependency_graph()
        }

        fn work_nodes(&self, with_tasks: bool) -> StorageResult<Vec<crate::work::WorkNode>> {
            self.table.work_nodes(with_tasks)
        }

        fn analytics(&self, today: chrono::NaiveDate) -> StorageResult<milestones_protocol::Analytics> {
            self.table.analytics(today)
        }
    };
}
pub(crate) use reads_from_table;

/// The milestones table of one SQLite file.
pub struct MilestoneTable {
    /// Declared (so dropped) before the pool: its read-only connection
    /// must not be the last one to close (see [`ConnectionPool`]).
    derived: derived_cache::DerivedCache,
    pool: ConnectionPool,
    flavour: Flavour,
    /// `index.db` or `enterprise.db`, for messages.
    name: String,
}

/// What becomes of a file whose bulk load a crash interrupts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterACrash {
    /// Removed (a migration's staged copy): it may be left inconsistent.
    Removed,
    /// Opened again: it must stay consistent.
    Reopened,
}

/// The file a hybrid index row describes.
pub struct FileColumns<'a> {
    /// Relative to the project root, as seed 003 writes it.
    pub path: &'a str,
    pub stamp: Stamp,
    pub hash: &'a str,
}

impl MilestoneTable {
    /// Opens the file, creating the tables when it is new.
    pub fn open(path: &Path, flavour: Flavour) -> StorageResult<(MilestoneTable, SchemaState)> {
        Self::open_with(path, flavour, false)
    }

    /// Opens the file for a bulk load: until
    /// [`MilestoneTable::finish_bulk_load`] nothing is synced, and when the
    /// file is new its indexes wait. When `after_a_crash` is
    /// [`AfterACrash::Removed`] and the file is new, its rows also go
    /// straight into it with no journal, rather than through the
    /// write-ahead log and again into the file at a checkpoint; a crash
    /// then leaves a file fit only to be removed.
    pub fn open_for_bulk_load(
        path: &Path,
        flavour: Flavour,
        after_a_crash: AfterACrash,
    ) -> StorageResult<(MilestoneTable, SchemaState)> {
        let (table, state) = Self::open_with(path, flavour, true)?;
        {
            let writer = table.pool.writer();
            let unjournaled = state == SchemaState::Created && after_a_crash == AfterACrash::Removed;
            writer
                .pragma_update(None, "synchronous", "OFF")
                // Pages read in place rather than copied into the cache:
                // building the indexes reads the whole table once per
                // index, and this makes them a fifth faster.
                .and_then(|()| writer.pragma_update(None, "mmap_size", BULK_LOAD_MMAP_BYTES))
                .and_then(|()| if unjournaled { writer.pragma_update(None, "journal_mode", "OFF") } else { Ok(()) })
                .map_err(table.failed("set up a bulk load"))?;
        }
        Ok((table, state))
    }

    /// Ends a bulk load: the indexes are built over the rows loaded, the
    /// file returns to WAL mode, writes are synced again, and the
    /// write-ahead log is folded into the file.
    pub fn finish_bulk_load(&self) -> StorageResult<()> {
        {
            let writer = self.pool.writer();
            // The indexes are sorted on a second thread too.
            writer
                .pragma_update(None, "threads", 2)
                .and_then(|()| schema::create_indexes(&writer, self.flavour))
                .and_then(|()| writer.pragma_update(None, "threads", 0))
                .and_then(|()| writer.pragma_update(None, "mmap_size", 0))
                .and_then(|()| writer.pragma_update(None, "journal_mode", "WAL"))
                .and_then(|()| writer.pragma_update(None, "synchronous", "FULL"))
                .map_err(self.failed("finish a bulk load"))?;
        }
        // Folded into the file now, while writes go on, rather than at the
        // switch, while they wait.
        self.checkpoint()
    }

    fn open_with(path: &Path, flavour: Flavour, indexes_later: bool) -> StorageResult<(MilestoneTable, SchemaState)> {
        let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
        let pool = ConnectionPool::open(path)?;
        let state = schema::prepare(&mut pool.writer(), flavour, &name, indexes_later)?;
        Ok((MilestoneTable { pool, flavour, name, derived: Default::default() }, state))
    }

    /// A read connection, for flavour-specific queries.
    pub fn reader(&self) -> StorageResult<pool::Reader<'_>> {
        self.pool.reader()
    }

    pub fn failed(&self, what: &str) -> impl FnOnce(rusqlite::Error) -> StorageError {
        failed(format!("{}: cannot {what}", self.name))
    }

    /// The document and its revision: the revision column of the database,
    /// the file's content hash in the index.
    pub fn get(&self, id: &str) -> StorageResult<Option<(Map, Revision)>> {
        let conn = self.pool.reader()?;
        let sql = match self.flavour {
            Flavour::Database => "SELECT data, CAST(revision AS TEXT) FROM milestones WHERE id = ?",
            Flavour::Index => "SELECT data, file_hash FROM milestones WHERE id = ?",
        };
        let row: Option<(String, Option<String>)> = conn
            .prepare_cached(sql)
            .and_then(|mut s| s.query_row([id], |r| Ok((r.get(0)?, r.get(1)?))).optional())
            .map_err(self.failed("read a milestone"))?;
        row.map(|(data, revision)| Ok((record::decode(id, &data)?, Revision::from_text(revision.unwrap_or_default()))))
            .transpose()
    }

    pub fn contains(&self, id: &str) -> StorageResult<bool> {
        let conn = self.pool.reader()?;
        conn.prepare_cached("SELECT 1 FROM milestones WHERE id = ?")
            .and_then(|mut s| s.exists([id]))
            .map_err(self.failed("look up a milestone"))
    }

    /// The database file's size (its pages).
    pub fn file_bytes(&self) -> StorageResult<u64> {
        let conn = self.pool.reader()?;
        let bytes: i64 = conn
            .query_row("SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()", [], |r| r.get(0))
            .map_err(self.failed("measure the database"))?;
        Ok(bytes as u64)
    }

    pub fn count(&self) -> StorageResult<u64> {
        let conn = self.pool.reader()?;
        let n: i64 = conn
            .query_row("SELECT COUNT(*) FROM milestones", [], |r| r.get(0))
            .map_err(self.failed("count milestones"))?;
        Ok(n as u64)
    }

    pub fn query(&self, query: &Query) -> StorageResult<Page> {
        self.query_within(query, &mut |_| true)
    }

    /// A page of `query`, its rows read until `fits` refuses one (see
    /// [`crate::storage::Storage::query_within`]).
    pub fn query_within(&self, query: &Query, fits: &mut dyn FnMut(&Value) -> bool) -> StorageResult<Page> {
        crate::query::check(query)?;
        let terms = crate::query::search_terms(query)?;
        let compiled = compile::compile(query, terms.as_ref());
        let mut conn = self.pool.reader()?;
        // One read transaction: the page and its total see the same data.
        let tx = conn.transaction().map_err(self.failed("start a read"))?;
        let total: i64 = tx
            .prepare_cached(&compiled.count_sql())
            .and_then(|mut s| s.query_row(params_from_iter(&compiled.where_params), |r| r.get(0)))
            .map_err(self.failed("run a query"))?;
        let failed = || self.failed("run a query");
        let mut page = Page { items: Vec::new(), total: total as u64 };
        if page.total <= query.offset {
            return Ok(page);
        }
        let walk = if compiled.walkable() {
            let milestones: i64 =
                tx.query_row("SELECT COALESCE(SUM(n), 0) FROM milestone_counts", [], |r| r.get(0)).map_err(failed())?;
            let wanted = query.limit.map(|limit| limit.saturating_add(query.offset));
            match compile::search_page(page.total, milestones as u64, wanted) {
                compile::SearchPage::Sorted => None,
                compile::SearchPage::Walked => compiled.walk_page(query, false),
                compile::SearchPage::WalkedAsking => compiled.walk_page(query, true),
            }
        } else {
            None
        };
        let sorted = compiled.sorted && walk.is_none();
        let (page_sql, params) = walk.unwrap_or_else(|| (compiled.page_sql(), compiled.page_params(query).collect()));
        let mut stmt = tx.prepare_cached(&page_sql).map_err(failed())?;
        let mut rows = stmt.query(params_from_iter(params)).map_err(failed())?;
        let mut by_rowid = if sorted {
            Some(tx.prepare_cached("SELECT id, data FROM milestones WHERE rowid = ?").map_err(failed())?)
        } else {
            None
        };
        while let Some(row) = rows.next().map_err(failed())? {
            let (id, data): (String, String) = match &mut by_rowid {
                Some(read) => read
                    .query_row([row.get::<_, i64>(0).map_err(failed())?], |r| Ok((r.get(0)?, r.get(1)?)))
                    .map_err(failed())?,
                None => (row.get(0).map_err(failed())?, row.get(1).map_err(failed())?),
            };
            let before = page.items.len();
            record::add_readable(&mut page, record::decode(&id, &data))?;
            if page.items.len() > before && page.items.last().is_some_and(|item| !fits(item)) {
                page.items.pop();
                break;
            }
        }
        Ok(page)
    }

    pub fn walk(
        &self,
        visit: &mut dyn FnMut(&Doc),
        unreadable: &mut dyn FnMut(StorageError) -> StorageResult<()>,
    ) -> StorageResult<()> {
        let conn = self.pool.reader()?;
        let mut stmt =
            conn.prepare_cached("SELECT id, data FROM milestones").map_err(self.failed("read milestones"))?;
        let mut rows = stmt.query([]).map_err(self.failed("read milestones"))?;
        while let Some(row) = rows.next().map_err(self.failed("read milestones"))? {
            let id: String = row.get(0).map_err(self.failed("read milestones"))?;
            let data: String = row.get(1).map_err(self.failed("read milestones"))?;
            match record::decode(&id, &data) {
                Ok(doc) => visit(&Arc::new(doc)),
                Err(e) => unreadable(e)?,
            }
        }
        Ok(())
    }

    pub fn ids(&self) -> StorageResult<Vec<String>> {
        let conn = self.pool.reader()?;
        let mut stmt = conn.prepare_cached("SELECT id FROM milestones").map_err(self.failed("read ids"))?;
        let ids = stmt
            .query_map([], |r| r.get(0))
            .and_then(|rows| rows.collect::<Result<Vec<String>, _>>())
            .map_err(self.failed("read ids"))?;
        Ok(ids)
    }

    /// What `id` requires, by the dependency rows.
    pub fn requirements(&self, id: &str) -> StorageResult<Vec<Requirement>> {
        let conn = self.pool.reader()?;
        requirements(&conn, id).map_err(self.failed("read dependencies"))
    }

    /// The graph from the ids and the dependency rows.
    pub fn dependency_graph(&self) -> StorageResult<Arc<DependencyGraph>> {
        self.derived.with_current(&self.pool, |derived, _, tx| {
            Ok(derived.graph(|| graph(tx).map_err(self.failed("read dependencies")))?.clone())
        })
    }

    pub fn work_nodes(&self, with_tasks: bool) -> StorageResult<Vec<crate::work::WorkNode>> {
        let mut conn = self.pool.reader()?;
        let tx = conn.transaction().map_err(self.failed("start a read"))?;
        work_nodes(&tx, with_tasks).map_err(self.failed("read the open milestones"))
    }

    pub fn analytics(&self, today: chrono::NaiveDate) -> StorageResult<Analytics> {
        self.derived.with_current(&self.pool, |derived, times, tx| {
            derived.analytics(
                today,
                || graph(tx).map_err(self.failed("read dependencies")),
                |graph| analytics::compute(tx, graph, today, times),
            )
        })
    }

    /// Runs `work` in one write transaction (`BEGIN IMMEDIATE`, so it never
    /// fails half-way for want of the write lock) and commits it.
    pub fn write<T>(&self, work: impl FnOnce(&Writer<'_>) -> StorageResult<T>) -> StorageResult<T> {
        let mut conn = self.pool.writer();
        let tx =
            conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(self.failed("start a write"))?;
        let writer = Writer { tx: &tx, table: self, search: RefCell::default() };
        let result = work(&writer)?;
        writer.write_search()?;
        tx.commit().map_err(self.failed("commit a write"))?;
        drop(conn);
        if let Err(e) = self.derived.follow(&self.pool) {
            // The write is committed; what could not follow it is derived
            // afresh by the next request, which reports what fails then.
            tracing::warn!("{}: cannot follow a write in the kept figures: {e}", self.name);
            self.derived.forget();
        }
        Ok(result)
    }

    /// Appends an audit event to `milestone_events`.
    pub fn record_event(&self, event: &AuditEvent) -> StorageResult<()> {
        let data = serde_json::json!({ "backend": event.backend, "user": event.user, "details": event.details });
        self.pool.with_events(|conn| {
            conn.prepare_cached(
                "INSERT INTO milestone_events (milestone_id, event_type, event_data, timestamp) VALUES (?, ?, ?, ?)",
            )
            .and_then(|mut s| s.execute(params![event.milestone_id, event.event, data.to_string(), event.timestamp]))
        })?;
        Ok(())
    }

    /// Folds the WAL into the database file, so the file alone holds
    /// everything committed.
    pub fn checkpoint(&self) -> StorageResult<()> {
        let busy: i64 = self
            .pool
            .writer()
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
            .map_err(self.failed("checkpoint"))?;
        if busy != 0 {
            return Err(StorageError::Invalid(format!("{}: a reader kept the checkpoint from finishing", self.name)));
        }
        Ok(())
    }

    /// Copies the database to `target` as one consistent file.
    pub fn backup_to(&self, target: &Path) -> StorageResult<()> {
        let target =
            target.to_str().ok_or_else(|| StorageError::Invalid(format!("{} is not UTF-8", target.display())))?;
        self.pool.writer().execute("VACUUM INTO ?", [target]).map_err(self.failed("write a backup"))?;
        Ok(())
    }
}

/// Writes inside one transaction.
pub struct Writer<'a> {
    tx: &'a Transaction<'a>,
    table: &'a MilestoneTable,
    /// Search text changes, written together at the end of the work.
    search: RefCell<SearchChanges>,
}

/// The full-text rows a transaction changes, held back until its work is
/// done and then written in two statements: FTS5 flushes its pending
/// terms into a new segment at every statement that may abort, so row by
/// row a bulk copy spends most of its time flushing and merging.
#[derive(Default)]
struct SearchChanges {
    /// Rows whose old text goes (a row not there is passed over).
    removed: Vec<i64>,
    /// The text each row holds afterwards; the last put wins.
    added: BTreeMap<i64, String>,
}

/// How much of the file a bulk load maps into memory (a limit, not an
/// allocation: 100,000 milestones make about 300 MB).
const BULK_LOAD_MMAP_BYTES: i64 = 1 << 30;

/// Rows per full-text statement (two parameters each, well within
/// SQLite's limit).
const SEARCH_ROWS_PER_STATEMENT: usize = 500;

impl Writer<'_> {
    pub fn conn(&self) -> &Connection {
        self.tx
    }

    /// The stored document and its revision counter (database flavour), as
    /// this transaction sees it.
    pub fn current(&self, id: &str) -> StorageResult<Option<(Map, i64)>> {
        let row: Option<(String, i64)> = self
            .tx
            .prepare_cached("SELECT data, revision FROM milestones WHERE id = ?")
            .and_then(|mut s| s.query_row([id], |r| Ok((r.get(0)?, r.get(1)?))).optional())
            .map_err(self.table.failed("read a milestone"))?;
        row.map(|(data, revision)| Ok((record::decode(id, &data)?, revision))).transpose()
    }

    /// What `id` requires, as this transaction sees it (for the cycle check
    /// inside a write).
    pub fn requirements(&self, id: &str) -> StorageResult<Vec<Requirement>> {
        requirements(self.tx, id).map_err(self.table.failed("read dependencies"))
    }

    pub fn contains(&self, id: &str) -> StorageResult<bool> {
        self.tx
            .prepare_cached("SELECT 1 FROM milestones WHERE id = ?")
            .and_then(|mut s| s.exists([id]))
            .map_err(self.table.failed("look up a milestone"))
    }

    /// Inserts or replaces one milestone with its search text and
    /// dependency rows (in the database, a replacement adds one to the
    /// revision). `file` is required by the index flavour.
    ///
    /// Returns the row's revision in the database flavour (`None` in the
    /// index, whose revision is its file's hash). A new row starts at a
    /// random revision, so a milestone removed and created again under the
    /// same id never repeats one a writer may still hold.
    pub fn put(&self, record: &Record, file: Option<&FileColumns>) -> StorageResult<Option<i64>> {
        let failed = || self.table.failed("store a milestone");
        let text = |f: &str| record.text_field(f).map(str::to_owned);
        // A new row has no search text or dependency rows to clear; skipping
        // those deletes (an FTS5 delete re-reads the old text) halves the
        // cost of a bulk load.
        let existed = self.contains(&record.id)?;
        let (rowid, revision): (i64, Option<i64>) = match self.table.flavour {
            Flavour::Database => self
                .tx
                .prepare_cached(
                    "INSERT INTO milestones (id, data, created_at, updated_at, completed_at, tasks_total, tasks_completed,
                        revision)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                     ON CONFLICT(id) DO UPDATE SET data = excluded.data, created_at = excluded.created_at,
                        updated_at = excluded.updated_at, completed_at = excluded.completed_at,
                        tasks_total = excluded.tasks_total, tasks_completed = excluded.tasks_completed,
                        revision = revision + 1
                     RETURNING rowid, revision",
                )
                .and_then(|mut s| {
                    s.query_row(
                        params![
                            record.id,
                            record.data,
                            text("created_at"),
                            text("updated_at"),
                            text("completed_at"),
                            record.tasks_total,
                            record.tasks_completed,
                            crate::storage::interface::fresh_counter()
                        ],
                        |r| Ok((r.get(0)?, Some(r.get(1)?))),
                    )
                })
                .map_err(failed())?,
            Flavour::Index => {
                let file = file.ok_or_else(|| StorageError::Invalid("an index row needs its file".into()))?;
                self.tx
                    .prepare_cached(
                        "INSERT INTO milestones (id, title, status, priority, created_at, updated_at, file_path, data,
                            category, completed_at, priority_rank, tasks_total, tasks_completed,
                            file_size, file_mtime_ns, file_hash)
                         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                         ON CONFLICT(id) DO UPDATE SET title = excluded.title, status = excluded.status,
                            priority = excluded.priority, created_at = excluded.created_at,
                            updated_at = excluded.updated_at, file_path = excluded.file_path, data = excluded.data,
                            category = excluded.category, completed_at = excluded.completed_at,
                            priority_rank = excluded.priority_rank, tasks_total = excluded.tasks_total,
                            tasks_completed = excluded.tasks_completed, file_size = excluded.file_size,
                            file_mtime_ns = excluded.file_mtime_ns, file_hash = excluded.file_hash
                         RETURNING rowid",
                    )
                    .and_then(|mut s| {
                        s.query_row(
                            params![
                                record.id,
                                text("title"),
                                text("status"),
                                text("priority"),
                                text("created_at"),
                                text("updated_at"),
                                file.path,
                                record.data,
                                text("category"),
                                text("completed_at"),
                                record.priority_rank,
                                record.tasks_total,
                                record.tasks_completed,
                                file.stamp.size as i64,
                                file.stamp.mtime_ns,
                                file.hash
                            ],
                            |r| Ok((r.get(0)?, None)),
                        )
                    })
                    .map_err(failed())?
            }
        };
        let mut search = self.search.borrow_mut();
        if existed {
            search.removed.push(rowid);
        }
        search.added.insert(rowid, record.search_text.clone());
        // Edge rows are rewritten only when they change: each one written
        // is logged in `graph_changes`, and most writes leave the edges be.
        if existed && self.edges_declared_are(&record.id, &record.edges).map_err(failed())? {
            return Ok(revision);
        }
        if existed {
            self.tx
                .prepare_cached("DELETE FROM milestone_dependencies WHERE declared_by = ?")
                .and_then(|mut s| s.execute([&record.id]))
                .map_err(failed())?;
        }
        let mut insert = self
            .tx
            .prepare_cached(
                "INSERT INTO milestone_dependencies (milestone_id, depends_on, dependency_type, declared_by) VALUES (?, ?, ?, ?)",
            )
            .map_err(failed())?;
        for (edge, how) in &record.edges {
            insert.execute(params![edge.from, edge.to, how, record.id]).map_err(failed())?;
        }
        Ok(revision)
    }

    /// Whether milestone `id`'s edge rows are `edges`, in the order they
    /// were written.
    fn edges_declared_are(&self, id: &str, edges: &[(DepEdge, &str)]) -> rusqlite::Result<bool> {
        let mut rows = self.tx.prepare_cached(
            "SELECT milestone_id, depends_on, dependency_type FROM milestone_dependencies WHERE declared_by = ? ORDER BY rowid",
        )?;
        let rows =
            rows.query_map([id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)))?;
        let mut expected = edges.iter();
        for row in rows {
            let (from, to, how) = row?;
            match expected.next() {
                Some((edge, want)) if edge.from == from && edge.to == to && *want == how => {}
                _ => return Ok(false),
            }
        }
        Ok(expected.next().is_none())
    }

    /// Writes the search text changes the work made (see [`SearchChanges`]).
    fn write_search(&self) -> StorageResult<()> {
        let SearchChanges { removed, added } = self.search.take();
        let failed = || self.table.failed("update the search index");
        for rows in removed.chunks(SEARCH_ROWS_PER_STATEMENT) {
            let sql = format!("DELETE FROM milestones_fts WHERE rowid IN ({})", vec!["?"; rows.len()].join(", "));
            self.tx.prepare_cached(&sql).and_then(|mut s| s.execute(params_from_iter(rows))).map_err(failed())?;
        }
        let added: Vec<(i64, String)> = added.into_iter().collect();
        for rows in added.chunks(SEARCH_ROWS_PER_STATEMENT) {
            let sql =
                format!("INSERT INTO milestones_fts (rowid, body) VALUES {}", vec!["(?, ?)"; rows.len()].join(", "));
            let values = rows.iter().flat_map(|(rowid, body)| [rowid as &dyn ToSql, body as &dyn ToSql]);
            self.tx.prepare_cached(&sql).and_then(|mut s| s.execute(params_from_iter(values))).map_err(failed())?;
        }
        Ok(())
    }

    /// Removes one milestone and its rows. False when it was not there.
    pub fn delete(&self, id: &str) -> StorageResult<bool> {
        let failed = || self.table.failed("remove a milestone");
        let rowid: Option<i64> = self
            .tx
            .prepare_cached("DELETE FROM milestones WHERE id = ? RETURNING rowid")
            .and_then(|mut s| s.query_row([id], |r| r.get(0)).optional())
            .map_err(failed())?;
        let Some(rowid) = rowid else { return Ok(false) };
        {
            let mut search = self.search.borrow_mut();
            search.removed.push(rowid);
            search.added.remove(&rowid);
        }
        self.tx
            .prepare_cached("DELETE FROM milestone_dependencies WHERE declared_by = ?")
            .and_then(|mut s| s.execute([id]))
            .map_err(failed())?;
        Ok(true)
    }
}

fn requirements(conn: &Connection, id: &str) -> rusqlite::Result<Vec<Requirement>> {
    let mut stmt =
        conn.prepare_cached("SELECT depends_on, declared_by FROM milestone_dependencies WHERE milestone_id = ?")?;
    let rows = stmt.query_map([id], |r| Ok(Requirement { to: r.get(0)?, declared_by: r.get(1)? }))?;
    rows.collect()
}

/// Every milestone's work node, in one query (with tasks, a second one
/// reads the open milestones' tasks out of the documents).
fn work_nodes(conn: &Connection, with_tasks: bool) -> rusqlite::Result<Vec<crate::work::WorkNode>> {
    let mut open = WorkNodeRows::default();
    let mut statement = conn.prepare_cached(WORK_NODES)?;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        open.milestone(row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, (row.get(4)?, row.get(5)?));
    }
    if with_tasks {
        let mut statement = conn.prepare_cached(OPEN_TASKS)?;
        let mut rows = statement.query([])?;
        while let Some(row) = rows.next()? {
            open.task(&row.get::<_, String>(0)?, &row.get::<_, String>(1)?);
        }
    }
    Ok(open.finish())
}

/// The tasks of the open milestones, as JSON, by milestone id and position.
const OPEN_TASKS: &str = "SELECT m.id, t.value
    FROM milestones m, json_each(m.data, '$.tasks') t
    WHERE (m.status IS NULL OR m.status NOT IN ('completed', 'cancelled', 'archived'))
        AND json_type(m.data, '$.tasks') = 'array'
    ORDER BY m.id, t.key";

fn graph(conn: &Connection) -> rusqlite::Result<DependencyGraph> {
    let mut graph = DependencyGraph::default();
    // Read in place, not copied out row by row.
    fn text<'r>(row: &'r rusqlite::Row<'_>, i: usize) -> rusqlite::Result<&'r str> {
        Ok(row.get_ref(i)?.as_str()?)
    }
    let mut ids = conn.prepare_cached("SELECT id FROM milestones ORDER BY id")?;
    let mut rows = ids.query([])?;
    while let Some(row) = rows.next()? {
        graph.add_node(text(row, 0)?);
    }
    let mut edges = conn.prepare_cached("SELECT milestone_id, depends_on FROM milestone_dependencies")?;
    let mut rows = edges.query([])?;
    while let Some(row) = rows.next()? {
        graph.add_edge(text(row, 0)?, text(row, 1)?);
    }
    Ok(graph)
}
