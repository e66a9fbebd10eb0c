//! `DerivedCache`: one SQLite file's [`Derived`] figures, kept until the
//! file changes. Building the dependency graph reads every edge (about a
//! third of a second at 100,000 milestones); asking again with nothing
//! changed costs one pragma.
//!
//! A change is noticed by `PRAGMA data_version` on a connection of the
//! cache's own, which never writes: its value moves whenever any other
//! connection commits, this daemon's writer or another process's.

use std::sync::Mutex;

use rusqlite::{Connection, Transaction};

use super::pool::ConnectionPool;
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
    derived: Derived,
}

impl DerivedCache {
    /// Runs `work` on what was derived from the file as it is now (nothing,
    /// if it changed since), with a read transaction to derive more.
    pub fn with_current<T>(
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
