//! `DerivedCache`: what one SQLite file's reads derive from every
//! milestone (the dependency graph, and `msctl stats` over it), kept until
//! the file changes. Building the graph reads every dependency edge (about
//! a third of a second at 100,000 milestones); asking again with nothing
//! changed costs one pragma.
//!
//! A change is noticed by `PRAGMA data_version` on a connection of the
//! cache's own, which never writes: its value moves whenever any other
//! connection commits, this daemon's writer or another process's.

use std::sync::Mutex;

use chrono::NaiveDate;
use milestones_protocol::Analytics;
use rusqlite::{Connection, Transaction};

use super::pool::ConnectionPool;
use crate::graph::DependencyGraph;
use crate::storage::error::StorageResult;

#[derive(Default)]
pub struct DerivedCache {
    kept: Mutex<Option<Kept>>,
}

struct Kept {
    conn: Connection,
    /// `data_version` when `derived` was read.
    version: i64,
    derived: Derived,
}

/// What has been derived since the file last changed.
#[derive(Default)]
struct Derived {
    graph: Option<DependencyGraph>,
    /// `stats`, and the day it was computed for (its trend ends that day).
    analytics: Option<(NaiveDate, Analytics)>,
}

impl DerivedCache {
    /// The dependency graph, built by `build` when the file changed since
    /// it was last built.
    pub fn graph(
        &self,
        pool: &ConnectionPool,
        build: impl FnOnce(&Transaction<'_>) -> StorageResult<DependencyGraph>,
    ) -> StorageResult<DependencyGraph> {
        self.with_current(pool, |derived, tx| Ok(derived.graph(tx, build)?.clone()))
    }

    /// `stats` for `today`, computed by `compute` from the graph when the
    /// file changed since (or the day is another).
    pub fn analytics(
        &self,
        pool: &ConnectionPool,
        today: NaiveDate,
        build: impl FnOnce(&Transaction<'_>) -> StorageResult<DependencyGraph>,
        compute: impl FnOnce(&Transaction<'_>, &DependencyGraph) -> StorageResult<Analytics>,
    ) -> StorageResult<Analytics> {
        self.with_current(pool, |derived, tx| {
            if let Some((day, analytics)) = &derived.analytics {
                if *day == today {
                    return Ok(analytics.clone());
                }
            }
            let analytics = compute(tx, derived.graph(tx, build)?)?;
            derived.analytics = Some((today, analytics.clone()));
            Ok(analytics)
        })
    }

    /// Runs `work` on what was derived from the file as it is now (nothing,
    /// if it changed since), with a read transaction to derive more.
    fn with_current<T>(
        &self,
        pool: &ConnectionPool,
        work: impl FnOnce(&mut Derived, &Transaction<'_>) -> StorageResult<T>,
    ) -> StorageResult<T> {
        let mut slot = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        let kept = match &mut *slot {
            Some(kept) => kept,
            empty @ None => empty.insert(Kept { conn: pool.open_reader()?, version: 0, derived: Derived::default() }),
        };
        // Read before the transaction takes its snapshot: a commit in
        // between leaves what is derived newer than its version (derived
        // again next time), never older than its version (kept).
        let version: i64 = kept
            .conn
            .pragma_query_value(None, "data_version", |r| r.get(0))
            .map_err(super::failure::failed("cannot read the database's version"))?;
        if version != kept.version {
            kept.derived = Derived::default();
            kept.version = version;
        }
        let tx = kept.conn.transaction().map_err(super::failure::failed("cannot start a read"))?;
        work(&mut kept.derived, &tx)
    }
}

impl Derived {
    fn graph(
        &mut self,
        tx: &Transaction<'_>,
        build: impl FnOnce(&Transaction<'_>) -> StorageResult<DependencyGraph>,
    ) -> StorageResult<&DependencyGraph> {
        match &mut self.graph {
            Some(graph) => Ok(graph),
            empty @ None => {
                let graph = empty.insert(build(tx)?);
                // Once here rather than in every copy handed out.
                graph.work_out();
                Ok(graph)
            }
        }
    }
}
