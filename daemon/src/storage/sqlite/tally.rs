//! What triggers keep for the stores' kept figures (see `schema`):
//! [`Tally`], the one row of `milestone_tally` (how many milestones there
//! are, their tasks' sums, and the number that says whether the creation
//! and completion times may have changed since they were last read), and
//! [`GraphChanges`], the milestones whose place in the dependency graph
//! changed, in order.

use rusqlite::Connection;

use crate::storage::error::StorageResult;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub times_version: i64,
    pub milestones: i64,
    pub tasks_total: i64,
    pub tasks_completed: i64,
}

impl Tally {
    /// The row as `conn` sees it; `None` in a file a bulk load has not
    /// given it yet (whatever is worked out there is never kept).
    pub fn read(conn: &Connection) -> StorageResult<Option<Tally>> {
        let failed = || super::failure::failed("cannot read milestone_tally");
        if !table_exists(conn, "milestone_tally")? {
            return Ok(None);
        }
        conn.prepare_cached("SELECT times_version, milestones, tasks_total, tasks_completed FROM milestone_tally")
            .and_then(|mut s| {
                s.query_row([], |r| {
                    Ok(Tally {
                        times_version: r.get(0)?,
                        milestones: r.get(1)?,
                        tasks_total: r.get(2)?,
                        tasks_completed: r.get(3)?,
                    })
                })
            })
            .map(Some)
            .map_err(failed())
    }
}

/// The last row of `graph_changes`, and what changed after an earlier one.
pub struct GraphChanges;

impl GraphChanges {
    /// The number of the last change (0 before any); `None` in a file a
    /// bulk load has not given the table yet.
    pub fn last(conn: &Connection) -> StorageResult<Option<i64>> {
        if !table_exists(conn, "graph_changes")? {
            return Ok(None);
        }
        conn.prepare_cached("SELECT IFNULL(MAX(seq), 0) FROM graph_changes")
            .and_then(|mut s| s.query_row([], |r| r.get(0)))
            .map(Some)
            .map_err(super::failure::failed("cannot read graph_changes"))
    }

    /// The milestones whose place in the graph changed after change
    /// `since` (an earlier one than the last), each once; `None` when some
    /// of those changes were pruned.
    pub fn since(conn: &Connection, since: i64) -> StorageResult<Option<Vec<String>>> {
        let failed = || super::failure::failed("cannot read graph_changes");
        let first: Option<i64> = conn
            .prepare_cached("SELECT MIN(seq) FROM graph_changes")
            .and_then(|mut s| s.query_row([], |r| r.get(0)))
            .map_err(failed())?;
        // Numbers are never reused, and only the oldest rows go: a gap
        // after `since`, or no rows at all (asked only when something
        // changed), means changes were lost.
        if first.is_none_or(|first| first > since + 1) {
            return Ok(None);
        }
        let mut stmt =
            conn.prepare_cached("SELECT DISTINCT milestone_id FROM graph_changes WHERE seq > ?").map_err(failed())?;
        let ids = stmt.query_map([since], |r| r.get(0)).and_then(|rows| rows.collect()).map_err(failed())?;
        Ok(Some(ids))
    }
}

fn table_exists(conn: &Connection, name: &str) -> StorageResult<bool> {
    super::schema::table_exists(conn, name).map_err(super::failure::failed("cannot read the schema"))
}
