//! `StatsCache`: the last `msctl stats` answer of one SQLite file, kept
//! until the file changes. Computing it reads every dependency edge and
//! walks the graph (about half a second at 100,000 milestones); asking
//! again with nothing changed costs one pragma.
//!
//! A change is noticed by `PRAGMA data_version` on a connection of the
//! cache's own, which never writes: its value moves whenever any other
//! connection commits, this daemon's writer or another process's.

use std::sync::Mutex;

use chrono::NaiveDate;
use milestones_protocol::Analytics;
use rusqlite::{Connection, Transaction};

use super::pool::ConnectionPool;
use crate::storage::error::StorageResult;

#[derive(Default)]
pub struct StatsCache {
    kept: Mutex<Option<Kept>>,
}

struct Kept {
    conn: Connection,
    /// `data_version` when `answer` was computed.
    version: i64,
    /// The answer, and the day it was computed for (its trend ends today).
    answer: Option<(NaiveDate, Analytics)>,
}

impl StatsCache {
    /// The answer for `today`: the kept one if nothing was committed since
    /// it was computed, else a new one from `compute`, run in one read
    /// transaction on the cache's connection.
    pub fn answer(
        &self,
        pool: &ConnectionPool,
        today: NaiveDate,
        compute: impl FnOnce(&Transaction<'_>) -> StorageResult<Analytics>,
    ) -> StorageResult<Analytics> {
        let mut slot = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        let kept = match &mut *slot {
            Some(kept) => kept,
            empty @ None => empty.insert(Kept { conn: pool.open_reader()?, version: 0, answer: None }),
        };
        let failed = super::failure::failed("cannot read the database's version");
        // Read before the transaction takes its snapshot: a commit in
        // between leaves an answer newer than its version, computed again
        // next time, never one older than its version, kept.
        let version: i64 = kept.conn.pragma_query_value(None, "data_version", |r| r.get(0)).map_err(failed)?;
        if let Some((day, answer)) = &kept.answer {
            if *day == today && kept.version == version {
                return Ok(answer.clone());
            }
        }
        let tx = kept.conn.transaction().map_err(super::failure::failed("cannot start a read"))?;
        let answer = compute(&tx)?;
        drop(tx);
        kept.version = version;
        kept.answer = Some((today, answer.clone()));
        Ok(answer)
    }
}
