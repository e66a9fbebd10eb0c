//! `DerivedCache`: one SQLite file's [`Derived`] figures, kept until the
//! file changes. Building the dependency graph reads every edge (about a
//! third of a second at 100,000 milestones); asking again with nothing
//! changed costs one pragma.
//!
//! A change is noticed by `PRAGMA data_version` on a connection of the
//! cache's own, which never writes: its value moves whenever any other
//! connection commits, this daemon's writer or another process's. The
//! graph is kept through a change that left `milestone_tally`'s
//! `graph_version` where it was (most writes change no edge), and the
//! completion times `stats` reads through one that left `times_version`.

use std::sync::Mutex;

use rusqlite::{Connection, Transaction};

use super::analytics::CompletionTimes;
use super::pool::ConnectionPool;
use super::tally::Tally;
use crate::storage::derived::Derived;
use crate::storage::error::StorageResult;

#[derive(Default)]
pub struct DerivedCache {
    kept: Mutex<Option<Kept>>,
}

struct Kept {
    conn: Connection,
    /// `data_version` when `derived` was read.
    version: i64,
    /// `milestone_tally` in the snapshot of the last change seen.
    tally: Option<Tally>,
    derived: Derived,
    times: CompletionTimes,
}

impl DerivedCache {
    /// Runs `work` on what was derived from the file as it is now (less
    /// whatever a change since made stale), with a read transaction to
    /// derive more.
    pub fn with_current<T>(
        &self,
        pool: &ConnectionPool,
        work: impl FnOnce(&mut Derived, &mut CompletionTimes, &Transaction<'_>) -> StorageResult<T>,
    ) -> StorageResult<T> {
        let mut slot = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        let kept = match &mut *slot {
            Some(kept) => kept,
            empty @ None => empty.insert(Kept {
                conn: pool.open_reader()?,
                version: 0,
                tally: None,
                derived: Derived::default(),
                times: CompletionTimes::default(),
            }),
        };
        // Read before the transaction takes its snapshot: a commit in
        // between leaves what is derived newer than its version (derived
        // again next time), never older than its version (kept).
        let version: i64 = kept
            .conn
            .pragma_query_value(None, "data_version", |r| r.get(0))
            .map_err(super::failure::failed("cannot read the database's version"))?;
        let changed = version != kept.version;
        kept.version = version;
        let tx = kept.conn.transaction().map_err(super::failure::failed("cannot start a read"))?;
        if changed {
            // Read in the snapshot anything derived now is derived from.
            let tally = Tally::read(&tx)?;
            let unmoved = |version: fn(&Tally) -> i64| {
                tally.is_some() && tally.as_ref().map(version) == kept.tally.as_ref().map(version)
            };
            if let Some(graph) = kept.derived.take_graph().filter(|_| unmoved(|t| t.graph_version)) {
                kept.derived.keep_graph(graph);
            }
            if !unmoved(|t| t.times_version) {
                kept.times = CompletionTimes::default();
            }
            kept.tally = tally;
        }
        work(&mut kept.derived, &mut kept.times, &tx)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use milestones_protocol::{Map, Value};

    use super::super::{Flavour, MilestoneTable};
    use crate::storage::record::Record;

    fn put(table: &MilestoneTable, id: &str, title: &str, requires: &[&str]) {
        let mut doc = Map::new();
        doc.insert("id", Value::from(id));
        doc.insert("title", Value::from(title));
        let mut dependencies = Map::new();
        dependencies.insert("requires", Value::List(requires.iter().map(|r| Value::from(*r)).collect()));
        doc.insert("dependencies", Value::Map(dependencies));
        table.write(|w| w.put(&Record::of(&doc)?, None).map(|_| ())).expect("write");
    }

    /// Most writes change no edge: the graph a request built stays for the
    /// next one, and goes when a milestone or an edge comes or goes.
    #[test]
    fn the_graph_is_kept_through_writes_that_change_no_edge() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (table, _) = MilestoneTable::open(&dir.path().join("enterprise.db"), Flavour::Database).expect("open");
        put(&table, "a", "first", &[]);
        put(&table, "b", "second", &["a"]);
        let built = table.dependency_graph().expect("graph");
        put(&table, "b", "second, renamed", &["a"]);
        let after_rename = table.dependency_graph().expect("graph");
        assert!(Arc::ptr_eq(&built, &after_rename), "a write that changed no edge built the graph again");
        put(&table, "b", "second", &[]);
        let after_edge = table.dependency_graph().expect("graph");
        assert!(after_edge.edges().is_empty(), "a removed edge is gone: {:?}", after_edge.edges());
        put(&table, "c", "third", &["b"]);
        assert_eq!(table.dependency_graph().expect("graph").critical_path(), ["b", "c"], "a new milestone is there");
    }
}
