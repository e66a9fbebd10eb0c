//! `DerivedCache`: one SQLite file's [`Derived`] figures, kept until the
//! file changes. Building the dependency graph reads every edge (about a
//! third of a second at 100,000 milestones); asking again with nothing
//! changed costs one pragma.
//!
//! A change is noticed by `PRAGMA data_version` on a connection of the
//! cache's own, which never writes: its value moves whenever any other
//! connection commits, this daemon's writer or another process's. The
//! graph is then brought up to date from `graph_changes` (most writes
//! change no edge, and those that do change a few milestones' edges),
//! and the completion times `stats` reads are kept through a change that
//! left `milestone_tally`'s `times_version` where it was.

use std::sync::{Arc, Mutex};

use rusqlite::{Connection, Transaction};

use super::analytics::CompletionTimes;
use super::pool::ConnectionPool;
use super::tally::{GraphChanges, Tally};
use crate::graph::DependencyGraph;
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
    /// The last of `graph_changes` in that snapshot.
    graph_changes: Option<i64>,
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
                graph_changes: None,
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
            let times_unmoved =
                tally.is_some() && tally.map(|t| t.times_version) == kept.tally.map(|t| t.times_version);
            if !times_unmoved {
                kept.times = CompletionTimes::default();
            }
            kept.tally = tally;
            let last = GraphChanges::last(&tx)?;
            if let Some(graph) = kept.derived.take_graph() {
                if let Some(graph) = caught_up(&tx, graph, kept.graph_changes, last)? {
                    kept.derived.keep_graph(graph);
                }
            }
            kept.graph_changes = last;
        }
        work(&mut kept.derived, &mut kept.times, &tx)
    }

    /// Brings what is kept up to date now, if anything is: called after
    /// this daemon's own writes, so that following a change of edges (a
    /// few milliseconds when an early milestone's chain moves at 100,000)
    /// is paid by the write, as the file backend pays it, rather than by
    /// the next `stats` or `deps`.
    pub fn follow(&self, pool: &ConnectionPool) -> StorageResult<()> {
        if self.kept.lock().unwrap_or_else(|p| p.into_inner()).is_none() {
            return Ok(());
        }
        self.with_current(pool, |_, _, _| Ok(()))
    }

    /// Forgets everything kept: the next request derives it afresh.
    pub fn forget(&self) {
        *self.kept.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// The graph kept now, as it is: neither brought up to date nor built.
    #[cfg(test)]
    fn kept_graph(&self) -> Option<Arc<DependencyGraph>> {
        let mut slot = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        let not_kept = || Err(crate::storage::error::StorageError::Invalid("no graph is kept".into()));
        slot.as_mut()?.derived.graph(not_kept).ok().cloned()
    }
}

/// `graph` (as of change `seen`) brought up to change `last`: each
/// milestone named since is set from its rows as they are now, which is
/// right however many of those changes the graph already had. `None` when
/// it must be built again (changes pruned, or a file without the log).
fn caught_up(
    tx: &Transaction<'_>,
    graph: Arc<DependencyGraph>,
    seen: Option<i64>,
    last: Option<i64>,
) -> StorageResult<Option<Arc<DependencyGraph>>> {
    let (Some(seen), Some(last)) = (seen, last) else { return Ok(None) };
    if seen == last {
        return Ok(Some(graph));
    }
    let Some(changed) = GraphChanges::since(tx, seen)? else { return Ok(None) };
    let failed = || super::failure::failed("cannot read the dependencies");
    // Copied only when a request still holds it.
    let mut graph = Arc::unwrap_or_clone(graph);
    let mut exists = tx.prepare_cached("SELECT EXISTS (SELECT 1 FROM milestones WHERE id = ?)").map_err(failed())?;
    let mut requires =
        tx.prepare_cached("SELECT depends_on FROM milestone_dependencies WHERE milestone_id = ?").map_err(failed())?;
    for id in changed {
        let milestone: bool = exists.query_row([&id], |r| r.get(0)).map_err(failed())?;
        let to: Vec<String> =
            requires.query_map([&id], |r| r.get(0)).and_then(|rows| rows.collect()).map_err(failed())?;
        graph.set_milestone(&id, milestone);
        graph.set_requires(&id, to.iter().map(String::as_str));
    }
    Ok(Some(Arc::new(graph)))
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

    /// A write of this daemon's own is followed by the write itself, not
    /// left to the next request to catch up.
    #[test]
    fn a_write_brings_the_kept_graph_up_to_date() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (table, _) = MilestoneTable::open(&dir.path().join("enterprise.db"), Flavour::Database).expect("open");
        put(&table, "a", "first", &[]);
        put(&table, "b", "second", &[]);
        assert!(table.derived.kept_graph().is_none(), "nothing is kept before a request asks");
        assert!(table.dependency_graph().expect("graph").edges().is_empty());
        put(&table, "b", "second", &["a"]);
        let kept = table.derived.kept_graph().expect("the graph is still kept");
        assert_eq!(kept.critical_path(), ["a", "b"], "the write's edge is followed: {:?}", kept.edges());
    }

    /// Changes the log no longer holds (pruned, or lost) are not guessed
    /// at: the graph is built again.
    #[test]
    fn a_graph_whose_changes_were_pruned_is_built_again() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("enterprise.db");
        let (table, _) = MilestoneTable::open(&path, Flavour::Database).expect("open");
        put(&table, "a", "first", &[]);
        put(&table, "b", "second", &[]);
        assert!(table.dependency_graph().expect("graph").edges().is_empty());
        put(&table, "b", "second", &["a"]);
        put(&table, "c", "third", &["b"]);
        rusqlite::Connection::open(&path)
            .expect("open directly")
            .execute("DELETE FROM graph_changes", [])
            .expect("prune");
        let graph = table.dependency_graph().expect("graph");
        assert_eq!(graph.critical_path(), ["a", "b", "c"], "edges: {:?}", graph.edges());
    }
}
