//! `PostgresStore`: the database backend on PostgreSQL, the way out of one
//! machine. Several daemons (several project roots, on several machines)
//! may share one database: every write is compare-and-swap on the
//! `revision` column, the dependency-cycle check runs inside the write under
//! a transaction-level advisory lock, and a trigger NOTIFYs every change so
//! that each daemon's subscribers hear of the others' writes
//! ([`listener`]).
//!
//! The synchronous `postgres` client is used from the blocking threads the
//! server runs storage calls on (never from the async workers:
//! `reads_in_memory` is false), through a small [`pool`].

mod analytics;
mod compile;
mod failure;
mod health;
mod listener;
mod pool;
#[cfg(test)]
mod query_plans;
mod schema;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use milestones_protocol::{Analytics, DatabaseHealth, DatabaseKind, Map, Page, Query};
use postgres::types::ToSql;
use postgres::Transaction;

use self::failure::failed;
use self::pool::ConnectionPool;
use super::cycles;
use super::error::{StorageError, StorageResult};
use super::interface::{fresh_counter, id_of, BackendKind, ChangeSink, Requirement, Revision, Storage, Stored};
use super::record::{self, Record};
use super::work_nodes::{WorkNodeRows, WORK_NODES};
use crate::database_url::DatabaseUrl;
use crate::document::Doc;
use crate::event_log::AuditEvent;
use crate::graph::DependencyGraph;

/// Rows fetched at a time when every document is read.
const BATCH: i32 = 1_000;

/// Advisory lock key held by writes that add dependencies, so that two
/// writers cannot each add half of a cycle (`deps` in ASCII).
const DEPENDENCY_LOCK: i64 = 0x6465_7073;

pub struct PostgresStore {
    pool: Arc<ConnectionPool>,
    listener: Mutex<Option<listener::Listener>>,
}

impl PostgresStore {
    /// Connects, and creates or checks the schema.
    pub fn open(url: &DatabaseUrl) -> StorageResult<PostgresStore> {
        let pool = Arc::new(ConnectionPool::new(url.clone()));
        let mut conn = pool.get()?;
        schema::prepare(&mut conn, pool.target())?;
        drop(conn);
        Ok(PostgresStore { pool, listener: Mutex::new(None) })
    }

    /// Undoes the copy `source` made: removes the milestones `ids` and the
    /// copy's mark.
    pub fn undo_copy(&self, source: &str, ids: &[String]) -> StorageResult<()> {
        self.write("remove copied milestones", |tx| {
            tx.execute("DELETE FROM milestones WHERE id = ANY($1)", &[&ids])
                .and_then(|_| tx.execute("DELETE FROM milestoned_copies WHERE source = $1", &[&source]))
                .map_err(self.failed("remove copied milestones"))?;
            Ok(())
        })
    }

    /// Marks the database as receiving a copy from `source` (a migration),
    /// or, with `done`, clears the mark.
    pub fn mark_copy(&self, source: &str, done: bool) -> StorageResult<()> {
        let sql = if done {
            "DELETE FROM milestoned_copies WHERE source = $1"
        } else {
            "INSERT INTO milestoned_copies (source) VALUES ($1) ON CONFLICT (source) DO UPDATE SET started_at = now()"
        };
        let mut conn = self.pool.get()?;
        conn.client.execute(sql, &[&source]).map_err(self.failed("mark a copy"))?;
        Ok(())
    }

    /// The sources of copies under way or left unfinished.
    pub fn unfinished_copies(&self) -> StorageResult<Vec<String>> {
        let mut conn = self.pool.get()?;
        let rows = conn
            .client
            .query("SELECT source FROM milestoned_copies ORDER BY source", &[])
            .map_err(self.failed("read copies"))?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Removes every milestone (what an unfinished copy left).
    pub fn clear(&self) -> StorageResult<()> {
        let mut conn = self.pool.get()?;
        conn.client.execute("DELETE FROM milestones", &[]).map_err(self.failed("clear an unfinished copy"))?;
        Ok(())
    }

    fn failed(&self, what: &str) -> impl FnOnce(postgres::Error) -> StorageError {
        failed(self.pool.target(), what)
    }

    /// Runs a read on a pooled connection. A connection the server closed
    /// since it was last used (a restart) is replaced and the read tried
    /// once more, so the first request after a restart does not fail.
    fn read<T>(&self, what: &str, mut work: impl FnMut(&mut pool::Connection) -> StorageResult<T>) -> StorageResult<T> {
        let mut conn = self.pool.get()?;
        match work(&mut conn) {
            Err(StorageError::Unavailable(_)) if conn.client.is_closed() => {
                drop(conn);
                self.pool.clear();
                tracing::debug!(what, "a database connection was closed; reading again on a new one");
                let mut conn = self.pool.get()?;
                work(&mut conn)
            }
            result => result,
        }
    }

    /// Runs `work` in one transaction and commits it.
    fn write<T>(&self, what: &str, work: impl FnOnce(&mut Transaction<'_>) -> StorageResult<T>) -> StorageResult<T> {
        let mut conn = self.pool.get()?;
        let mut tx = conn.client.transaction().map_err(self.failed(what))?;
        let value = work(&mut tx)?;
        tx.commit().map_err(self.failed(what))?;
        Ok(value)
    }

    fn requirements(&self, tx: &mut Transaction<'_>, id: &str) -> StorageResult<Vec<Requirement>> {
        let rows = tx
            .query("SELECT depends_on, declared_by FROM milestone_dependencies WHERE milestone_id = $1", &[&id])
            .map_err(self.failed("read dependencies"))?;
        Ok(rows.iter().map(|r| Requirement { to: r.get(0), declared_by: r.get(1) }).collect())
    }

    /// Writes the dependency rows `record` declares (after its old ones
    /// went).
    fn put_edges(&self, tx: &mut Transaction<'_>, records: &[&Record]) -> StorageResult<()> {
        let mut columns: [Vec<&str>; 4] = Default::default();
        for record in records {
            for (edge, how) in &record.edges {
                for (column, value) in columns.iter_mut().zip([&*edge.from, &*edge.to, how, &*record.id]) {
                    column.push(value);
                }
            }
        }
        if columns[0].is_empty() {
            return Ok(());
        }
        tx.execute(
            "INSERT INTO milestone_dependencies (milestone_id, depends_on, dependency_type, declared_by)
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])",
            &[&columns[0], &columns[1], &columns[2], &columns[3]],
        )
        .map_err(self.failed("store dependencies"))?;
        Ok(())
    }

    /// `replace` in one statement, when no cycle check is needed: the
    /// document declares no dependencies (the rows its previous version
    /// declared go in the same statement), or the same ones as the stored
    /// version (`same_dependencies`, as JSON; nothing to rewrite). `None`
    /// when no row matched: gone, written by someone else meanwhile, or, for
    /// the second kind, its dependencies changed.
    fn replace_in_one(
        &self,
        id: &str,
        row: &Row,
        expected: i64,
        same_dependencies: Option<&str>,
    ) -> StorageResult<Option<i64>> {
        let mut conn = self.pool.get()?;
        let update = "UPDATE milestones SET data = $2::text::jsonb, document = $2, tasks_total = $3,
                tasks_completed = $4, search = $5::text::tsvector, revision = revision + 1
            WHERE id = $1 AND revision = $6";
        let mut params: Vec<&(dyn ToSql + Sync)> =
            vec![&id, &row.data, &row.tasks_total, &row.tasks_completed, &row.search, &expected];
        let sql = match same_dependencies {
            None => format!(
                "WITH stored AS ({update} RETURNING revision),
                    gone AS (DELETE FROM milestone_dependencies WHERE declared_by = $1 AND EXISTS (SELECT 1 FROM stored))
                 SELECT revision FROM stored"
            ),
            Some(_) => format!("{update} AND data -> 'dependencies' = $7::text::jsonb RETURNING revision"),
        };
        if let Some(dependencies) = &same_dependencies {
            params.push(dependencies);
        }
        let statement = conn.prepared(&sql, self.pool.target())?;
        let stored = conn.client.query_opt(&statement, &params).map_err(self.failed("store a milestone"))?;
        Ok(stored.map(|row| row.get(0)))
    }

    /// Why a conditional update matched nothing: the milestone is gone, or
    /// someone wrote it since it was read.
    fn why_not_replaced(&self, id: &str) -> StorageResult<StorageError> {
        let mut conn = self.pool.get()?;
        let exists = conn
            .client
            .query_opt("SELECT 1 FROM milestones WHERE id = $1", &[&id])
            .map_err(self.failed("read a milestone"))?
            .is_some();
        Ok(if exists { StorageError::Stale { id: id.to_owned() } } else { StorageError::Missing(id.to_owned()) })
    }

    fn lock_dependencies(&self, tx: &mut Transaction<'_>, record: &Record) -> StorageResult<()> {
        if record.edges.is_empty() {
            return Ok(());
        }
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&DEPENDENCY_LOCK])
            .map_err(self.failed("lock dependencies"))?;
        Ok(())
    }
}

/// A read-only transaction on one snapshot: what a read made of several
/// statements sees (a page and its total, the graph and the counts).
/// The tasks of the open milestones, as JSON, by milestone id and position.
const OPEN_TASKS: &str = "SELECT m.id, t.value::text
    FROM milestones m,
        jsonb_array_elements(CASE WHEN jsonb_typeof(m.data -> 'tasks') = 'array' THEN m.data -> 'tasks'
            ELSE '[]'::jsonb END) WITH ORDINALITY AS t(value, position)
    WHERE m.status IS NULL OR m.status NOT IN ('completed', 'cancelled', 'archived')
    ORDER BY m.id, t.position";

fn snapshot(client: &mut postgres::Client) -> Result<Transaction<'_>, postgres::Error> {
    client.build_transaction().isolation_level(postgres::IsolationLevel::RepeatableRead).read_only(true).start()
}

/// What every write stores besides the id, in the types the statements bind.
struct Row {
    data: String,
    tasks_total: i32,
    tasks_completed: i32,
    search: String,
}

impl Row {
    fn of(record: &Record) -> Row {
        Row {
            data: record.data.clone(),
            tasks_total: i32::try_from(record.tasks_total).unwrap_or(i32::MAX),
            tasks_completed: i32::try_from(record.tasks_completed).unwrap_or(i32::MAX),
            search: crate::search::tsvector_literal(&record.search_text),
        }
    }
}

impl Storage for PostgresStore {
    fn kind(&self) -> BackendKind {
        BackendKind::Database(DatabaseKind::Postgresql)
    }

    fn reads_in_memory(&self) -> bool {
        false
    }

    fn get(&self, id: &str) -> StorageResult<Option<Stored>> {
        self.read("read a milestone", |conn| {
            let sql = "SELECT document, revision FROM milestones WHERE id = $1";
            let statement = conn.prepared(sql, self.pool.target())?;
            let row = conn.client.query_opt(&statement, &[&id]).map_err(self.failed("read a milestone"))?;
            row.map(|row| {
                let doc = record::decode(id, row.get(0))?;
                Ok(Stored { doc: Arc::new(doc), revision: Revision::counter(row.get(1)) })
            })
            .transpose()
        })
    }

    fn get_many(&self, ids: &[String]) -> StorageResult<Vec<StorageResult<Option<Stored>>>> {
        let mut found = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(1_000) {
            self.read("read milestones", |conn| {
                let sql = "SELECT id, document, revision FROM milestones WHERE id = ANY($1)";
                let statement = conn.prepared(sql, self.pool.target())?;
                let rows = conn.client.query(&statement, &[&chunk]).map_err(self.failed("read milestones"))?;
                for row in rows {
                    let id: String = row.get(0);
                    let doc = record::decode(&id, row.get(1))?;
                    found.insert(id, Stored { doc: Arc::new(doc), revision: Revision::counter(row.get(2)) });
                }
                Ok(())
            })?;
        }
        Ok(ids.iter().map(|id| Ok(found.remove(id))).collect())
    }

    fn count(&self) -> StorageResult<u64> {
        self.read("count milestones", |conn| {
            let row = conn
                .client
                .query_one("SELECT COALESCE(SUM(n), 0)::int8 FROM milestone_counts", &[])
                .map_err(self.failed("count milestones"))?;
            Ok(row.get::<_, i64>(0) as u64)
        })
    }

    fn data_bytes(&self) -> StorageResult<u64> {
        self.read("measure the database", |conn| {
            let row = conn
                .client
                .query_one("SELECT pg_total_relation_size('milestones')", &[])
                .map_err(self.failed("measure the database"))?;
            Ok(row.get::<_, i64>(0) as u64)
        })
    }

    fn insert(&self, doc: Map) -> StorageResult<Stored> {
        let id = id_of(&doc)?.to_owned();
        let record = Record::of(&doc)?;
        let row = Row::of(&record);
        let revision = self.write("store a milestone", |tx| {
            self.lock_dependencies(tx, &record)?;
            cycles::refuse_cycle(&doc, None, |node| self.requirements(tx, node))?;
            let stored = tx
                .query_opt(
                    "INSERT INTO milestones (id, data, document, tasks_total, tasks_completed, search, revision)
                     VALUES ($1, $2::text::jsonb, $2, $3, $4, $5::text::tsvector, $6)
                     ON CONFLICT (id) DO NOTHING RETURNING revision",
                    &[&id, &row.data, &row.tasks_total, &row.tasks_completed, &row.search, &fresh_counter()],
                )
                .map_err(self.failed("store a milestone"))?;
            let revision: i64 = stored.ok_or_else(|| StorageError::AlreadyExists(id.clone()))?.get(0);
            self.put_edges(tx, &[&record])?;
            Ok(revision)
        })?;
        Ok(Stored { doc: Arc::new(doc), revision: Revision::counter(revision) })
    }

    fn replace(&self, doc: Map, expected: &Revision) -> StorageResult<Stored> {
        let id = id_of(&doc)?.to_owned();
        let record = Record::of(&doc)?;
        let row = Row::of(&record);
        let expected = expected.as_counter().ok_or_else(|| StorageError::Stale { id: id.clone() })?;
        if record.edges.is_empty() {
            return match self.replace_in_one(&id, &row, expected, None)? {
                Some(revision) => Ok(Stored { doc: Arc::new(doc), revision: Revision::counter(revision) }),
                None => Err(self.why_not_replaced(&id)?),
            };
        }
        let dependencies = doc.get("dependencies").map(serde_json::to_string).transpose().map_err(|e| {
            StorageError::Invalid(format!("milestone `{id}`: its dependencies cannot be written as JSON: {e}"))
        })?;
        if let Some(revision) = self.replace_in_one(&id, &row, expected, dependencies.as_deref())? {
            return Ok(Stored { doc: Arc::new(doc), revision: Revision::counter(revision) });
        }
        // Gone, changed meanwhile, or its dependencies change: read it
        // under a row lock, and check for a cycle under the dependency lock
        // when they do.
        let revision = self.write("store a milestone", |tx| {
            let current = tx
                .query_opt("SELECT document, revision FROM milestones WHERE id = $1 FOR UPDATE", &[&id])
                .map_err(self.failed("read a milestone"))?
                .ok_or_else(|| StorageError::Missing(id.clone()))?;
            if current.get::<_, i64>(1) != expected {
                return Err(StorageError::Stale { id: id.clone() });
            }
            let previous = record::decode(&id, current.get(0))?;
            if previous.get("dependencies") != doc.get("dependencies") {
                self.lock_dependencies(tx, &record)?;
                cycles::refuse_cycle(&doc, Some(&previous), |node| self.requirements(tx, node))?;
            }
            let revision: i64 = tx
                .query_one(
                    "UPDATE milestones SET data = $2::text::jsonb, document = $2, tasks_total = $3,
                        tasks_completed = $4, search = $5::text::tsvector, revision = revision + 1
                     WHERE id = $1 RETURNING revision",
                    &[&id, &row.data, &row.tasks_total, &row.tasks_completed, &row.search],
                )
                .map_err(self.failed("store a milestone"))?
                .get(0);
            tx.execute("DELETE FROM milestone_dependencies WHERE declared_by = $1", &[&id])
                .map_err(self.failed("store dependencies"))?;
            self.put_edges(tx, &[&record])?;
            Ok(revision)
        })?;
        Ok(Stored { doc: Arc::new(doc), revision: Revision::counter(revision) })
    }

    fn remove(&self, id: &str) -> StorageResult<bool> {
        let mut conn = self.pool.get()?;
        // Its dependency rows go with it (ON DELETE CASCADE).
        let removed = conn
            .client
            .execute("DELETE FROM milestones WHERE id = $1", &[&id])
            .map_err(self.failed("remove a milestone"))?;
        Ok(removed > 0)
    }

    fn import(&self, docs: &[Doc]) -> StorageResult<()> {
        let records = docs.iter().map(|d| Record::of(d)).collect::<StorageResult<Vec<_>>>()?;
        let rows: Vec<Row> = records.iter().map(Row::of).collect();
        let ids: Vec<&str> = records.iter().map(|r| r.id.as_str()).collect();
        let data: Vec<&str> = rows.iter().map(|r| r.data.as_str()).collect();
        let totals: Vec<i32> = rows.iter().map(|r| r.tasks_total).collect();
        let completed: Vec<i32> = rows.iter().map(|r| r.tasks_completed).collect();
        let search: Vec<&str> = rows.iter().map(|r| r.search.as_str()).collect();
        let revisions: Vec<i64> = rows.iter().map(|_| fresh_counter()).collect();
        self.write("copy milestones", |tx| {
            let params: [&(dyn ToSql + Sync); 6] = [&ids, &data, &totals, &completed, &search, &revisions];
            tx.execute(
                "INSERT INTO milestones (id, data, document, tasks_total, tasks_completed, search, revision)
                 SELECT id, data::jsonb, data, total, completed, search::tsvector, revision
                 FROM unnest($1::text[], $2::text[], $3::int4[], $4::int4[], $5::text[], $6::int8[])
                    AS t (id, data, total, completed, search, revision)
                 ON CONFLICT (id) DO UPDATE SET data = excluded.data, document = excluded.document,
                    tasks_total = excluded.tasks_total, tasks_completed = excluded.tasks_completed,
                    search = excluded.search, revision = milestones.revision + 1",
                &params,
            )
            .map_err(self.failed("copy milestones"))?;
            tx.execute("DELETE FROM milestone_dependencies WHERE declared_by = ANY($1)", &[&ids])
                .map_err(self.failed("copy dependencies"))?;
            self.put_edges(tx, &records.iter().collect::<Vec<_>>())
        })
    }

    fn query(&self, query: &Query) -> StorageResult<Page> {
        crate::query::check(query)?;
        let terms = crate::query::search_terms(query)?;
        let mut compiled = compile::compile(query, terms.as_ref());
        let page_sql = compiled.page_sql(query.limit, query.offset);
        let count_sql = compiled.count_sql();
        let params = compiled.sql_params();
        self.read("run a query", |conn| {
            let count = conn.prepared(&count_sql, self.pool.target())?;
            let select = conn.prepared(&page_sql, self.pool.target())?;
            // One snapshot: the page and its total see the same data.
            let mut tx = snapshot(&mut conn.client).map_err(self.failed("run a query"))?;
            let total: i64 =
                tx.query_one(&count, &params[..compiled.where_params]).map_err(self.failed("run a query"))?.get(0);
            let rows = tx.query(&select, &params).map_err(self.failed("run a query"))?;
            tx.commit().map_err(self.failed("run a query"))?;
            let mut page = Page { items: Vec::with_capacity(rows.len()), total: total as u64 };
            for row in &rows {
                record::add_readable(&mut page, record::decode(row.get(0), row.get(1)))?;
            }
            Ok(page)
        })
    }

    fn walk(
        &self,
        visit: &mut dyn FnMut(&Doc),
        unreadable: &mut dyn FnMut(StorageError) -> StorageResult<()>,
    ) -> StorageResult<()> {
        let mut conn = self.pool.get()?;
        let what = "read milestones";
        let mut tx = snapshot(&mut conn.client).map_err(self.failed(what))?;
        let portal = tx.bind("SELECT id, document FROM milestones", &[]).map_err(self.failed(what))?;
        loop {
            let rows = tx.query_portal(&portal, BATCH).map_err(self.failed(what))?;
            for row in &rows {
                match record::decode(row.get(0), row.get(1)) {
                    Ok(doc) => visit(&Arc::new(doc)),
                    Err(e) => unreadable(e)?,
                }
            }
            if rows.len() < BATCH as usize {
                break;
            }
        }
        tx.commit().map_err(self.failed(what))
    }

    fn ids(&self) -> StorageResult<Vec<String>> {
        self.read("read ids", |conn| {
            let rows = conn.client.query("SELECT id FROM milestones", &[]).map_err(self.failed("read ids"))?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
    }

    fn dependency_graph(&self) -> StorageResult<Arc<DependencyGraph>> {
        self.read("read dependencies", |conn| {
            let mut tx = snapshot(&mut conn.client).map_err(self.failed("read dependencies"))?;
            let graph = analytics::graph(&mut tx, self.pool.target())?;
            tx.commit().map_err(self.failed("read dependencies"))?;
            Ok(Arc::new(graph))
        })
    }

    fn work_nodes(&self, with_tasks: bool) -> StorageResult<Vec<crate::work::WorkNode>> {
        self.read("read the open milestones", |conn| {
            let failed = || self.failed("read the open milestones");
            let mut tx = snapshot(&mut conn.client).map_err(failed())?;
            let mut open = WorkNodeRows::default();
            for row in tx.query(WORK_NODES, &[]).map_err(failed())? {
                open.milestone(row.get(0), row.get(1), row.get(2), row.get(3), (row.get(4), row.get(5)));
            }
            if with_tasks {
                for row in tx.query(OPEN_TASKS, &[]).map_err(failed())? {
                    open.task(row.get(0), row.get(1));
                }
            }
            tx.commit().map_err(failed())?;
            Ok(open.finish())
        })
    }

    fn analytics(&self, today: chrono::NaiveDate) -> StorageResult<Analytics> {
        self.read("compute analytics", |conn| {
            let mut tx = snapshot(&mut conn.client).map_err(self.failed("compute analytics"))?;
            let graph = analytics::graph(&mut tx, self.pool.target())?;
            let figures = analytics::compute(&mut tx, &graph, today, self.pool.target())?;
            tx.commit().map_err(self.failed("compute analytics"))?;
            Ok(figures)
        })
    }

    fn backup_to(&self, dir: &Path) -> StorageResult<()> {
        // The documents as JSON lines, key order kept: enough to restore
        // every milestone into any backend.
        let mut out = Vec::new();
        let mut unwritable = None;
        self.for_each(&mut |doc| match serde_json::to_vec(&**doc) {
            Ok(line) => {
                out.extend(line);
                out.push(b'\n');
            }
            Err(e) => unwritable = Some(e),
        })?;
        if let Some(e) = unwritable {
            return Err(StorageError::Invalid(format!("a milestone cannot be backed up as JSON: {e}")));
        }
        let name = super::spec::POSTGRESQL_BACKUP;
        Ok(crate::atomic::write_atomically(dir, name, &out)?)
    }

    fn record_event(&self, event: &AuditEvent) -> StorageResult<()> {
        let data = serde_json::json!({ "backend": event.backend, "details": event.details }).to_string();
        self.pool.with_events(|conn| {
            let sql = "INSERT INTO milestone_events (milestone_id, event_type, event_data, user_name, timestamp)
                       VALUES (NULLIF($1, ''), $2, $3::text::jsonb, $4, $5::text::timestamptz)";
            let statement = conn.prepared(sql, self.pool.target())?;
            conn.client
                .execute(&statement, &[&event.milestone_id, &event.event, &data, &event.user, &event.timestamp])
                .map_err(self.failed("record an event"))?;
            Ok(())
        })
    }

    fn listen(&self, sink: ChangeSink) {
        let mut slot = self.listener.lock().unwrap_or_else(|p| p.into_inner());
        *slot = Some(listener::Listener::start(self.pool.clone(), sink));
    }

    fn database_health(&self) -> Option<DatabaseHealth> {
        let listening = self.listener.lock().unwrap_or_else(|p| p.into_inner()).as_ref().map(|l| l.is_listening());
        Some(health::check(&self.pool, listening.unwrap_or(false)))
    }

    fn database_tls(&self) -> StorageResult<Option<milestones_protocol::DatabaseTls>> {
        health::tls(&self.pool).map(Some)
    }
}
