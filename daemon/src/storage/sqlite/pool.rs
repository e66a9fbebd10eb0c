//! Connections to one SQLite file: a single writer (SQLite takes one writer
//! at a time; in WAL mode readers carry on meanwhile) and a stack of idle
//! readers reused from request to request.

use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::storage::error::StorageResult;

/// Readers kept idle; more may be open at a moment of high load.
const IDLE_READERS: usize = 8;

/// The writer's page cache, in KiB.
const WRITER_CACHE_KIB: i64 = 32 * 1024;

/// Pages of write-ahead log between checkpoints (of 4 KiB, SQLite's
/// default page size).
const WAL_PAGES: i64 = 256;

pub struct ConnectionPool {
    path: PathBuf,
    /// Audit events: appended with `synchronous = NORMAL`, so logging an
    /// event costs no fsync of its own (the next milestone write, or a
    /// checkpoint, makes it durable; the JSONL log has it already).
    events: Mutex<Option<Connection>>,
    // Readers are declared (so dropped) first: the last connection to close
    // folds the WAL back into the database, and only the writer can.
    idle: Mutex<Vec<Connection>>,
    writer: Mutex<Connection>,
}

/// A reader on loan; it returns to the pool when dropped.
pub struct Reader<'a> {
    pool: &'a ConnectionPool,
    conn: Option<Connection>,
}

impl ConnectionPool {
    /// Opens (creating if needed) the database and switches it to WAL mode.
    pub fn open(path: &Path) -> StorageResult<Self> {
        let writer =
            Connection::open(path).map_err(super::failure::failed(format!("cannot open {}", path.display())))?;
        writer
            .busy_timeout(Duration::from_secs(5))
            .and_then(|()| writer.pragma_update(None, "journal_mode", "WAL"))
            // FULL: a commit is on disk when it returns, as a file write is.
            .and_then(|()| writer.pragma_update(None, "synchronous", "FULL"))
            // Room for the indexes' upper levels during a bulk load (KiB).
            .and_then(|()| writer.pragma_update(None, "cache_size", -WRITER_CACHE_KIB))
            // The write-ahead log folded into the file every 1 MiB or so, and
            // cut back to that size: a small project's log stays small, and
            // a nearly full disk is not filled by it.
            .and_then(|()| writer.pragma_update(None, "wal_autocheckpoint", WAL_PAGES))
            .and_then(|()| writer.pragma_update(None, "journal_size_limit", WAL_PAGES * 4096))
            .map_err(super::failure::failed(format!("cannot use {}", path.display())))?;
        Ok(ConnectionPool {
            path: path.to_path_buf(),
            events: Mutex::new(None),
            idle: Mutex::new(Vec::new()),
            writer: Mutex::new(writer),
        })
    }

    /// The writer. Holding it serialises writes within this process;
    /// `BEGIN IMMEDIATE` serialises them against other processes.
    pub fn writer(&self) -> MutexGuard<'_, Connection> {
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `work` on the events connection, opening it on first use.
    pub fn with_events<T>(&self, work: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> StorageResult<T> {
        let failed = || super::failure::failed(format!("cannot record an event in {}", self.path.display()));
        let mut events = self.events.lock().unwrap_or_else(|p| p.into_inner());
        let conn = match &mut *events {
            Some(conn) => conn,
            slot @ None => {
                let conn = Connection::open(&self.path).map_err(failed())?;
                conn.busy_timeout(Duration::from_secs(5))
                    .and_then(|()| conn.pragma_update(None, "synchronous", "NORMAL"))
                    .map_err(failed())?;
                slot.insert(conn)
            }
        };
        work(conn).map_err(failed())
    }

    pub fn reader(&self) -> StorageResult<Reader<'_>> {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => self.open_reader()?,
        };
        Ok(Reader { pool: self, conn: Some(conn) })
    }

    /// A new read-only connection, outside the pool.
    pub fn open_reader(&self) -> StorageResult<Connection> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&self.path, flags)
            .map_err(super::failure::failed(format!("cannot open {}", self.path.display())))?;
        conn.busy_timeout(Duration::from_secs(5))
            .and_then(|()| super::search_function::register(&conn))
            .map_err(super::failure::failed(format!("cannot use {}", self.path.display())))?;
        Ok(conn)
    }
}

impl Deref for Reader<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        // Only `drop` takes the connection out.
        self.conn.as_ref().unwrap_or_else(|| unreachable!("a reader is used after being returned"))
    }
}

impl DerefMut for Reader<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        self.conn.as_mut().unwrap_or_else(|| unreachable!("a reader is used after being returned"))
    }
}

impl Drop for Reader<'_> {
    fn drop(&mut self) {
        let mut idle = self.pool.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < IDLE_READERS {
            idle.extend(self.conn.take());
        }
    }
}
