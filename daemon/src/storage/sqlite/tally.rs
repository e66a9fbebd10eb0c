//! `Tally`: the one row of `milestone_tally` (see `schema`), which
//! triggers keep: how many milestones there are, their tasks' sums, and
//! the numbers that say whether the dependency graph or the creation and
//! completion times may have changed since they were last read.

use rusqlite::Connection;

use crate::storage::error::StorageResult;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub graph_version: i64,
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
        let exists: bool = conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'milestone_tally')",
            )
            .and_then(|mut s| s.query_row([], |r| r.get(0)))
            .map_err(failed())?;
        if !exists {
            return Ok(None);
        }
        conn.prepare_cached(
            "SELECT graph_version, times_version, milestones, tasks_total, tasks_completed FROM milestone_tally",
        )
        .and_then(|mut s| {
            s.query_row([], |r| {
                Ok(Tally {
                    graph_version: r.get(0)?,
                    times_version: r.get(1)?,
                    milestones: r.get(2)?,
                    tasks_total: r.get(3)?,
                    tasks_completed: r.get(4)?,
                })
            })
        })
        .map(Some)
        .map_err(failed())
    }
}
