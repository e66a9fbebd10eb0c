//! `ConnectionPool`: connections to one PostgreSQL database, reused from
//! request to request, each with its prepared statements. Connecting fails
//! fast (a few seconds at most) with an error naming the server, so a
//! request never hangs on a server that is gone; a connection the server
//! closed is dropped and the next request opens a fresh one, which is all
//! reconnecting takes.

use std::collections::{HashMap, HashSet};
use std::ops::{Deref, DerefMut};
use std::sync::Mutex;
use std::time::Duration;

use postgres::{Client, NoTls, Statement};

use super::failure::failed;
use crate::database_url::DatabaseUrl;
use crate::storage::error::{StorageError, StorageResult};

/// Idle connections kept; more may be open at a moment of high load.
const IDLE: usize = 8;

/// How long connecting may take before the request fails.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The longest any statement may run (or wait for a lock) before the
/// server cancels it: a request fails rather than hang.
const STATEMENT_TIMEOUT: &str = "30s";

/// Statements kept prepared per connection (queries are built from the
/// request, so their number is not bounded by the code).
const STATEMENTS: usize = 256;

pub struct ConnectionPool {
    url: DatabaseUrl,
    target: String,
    idle: Mutex<Vec<Connection>>,
    /// Audit events: appended without waiting for the server's disk (the
    /// next milestone write makes them durable; the JSONL log has them
    /// already), so logging an event costs no flush of its own.
    events: Mutex<Option<Connection>>,
    /// The server process ids of this pool's connections: a change
    /// notification from one of them is this daemon's own write.
    pids: Mutex<HashSet<i32>>,
}

/// One connection and its prepared statements.
pub struct Connection {
    pub client: Client,
    statements: HashMap<String, Statement>,
    pid: i32,
}

impl Connection {
    /// Opens a connection with the pool's settings: a connect timeout, and
    /// an application name the server's activity view shows.
    pub fn open(url: &DatabaseUrl, target: &str) -> StorageResult<Connection> {
        let (mut config, tls) = url.connect_settings().map_err(StorageError::Invalid)?;
        config.connect_timeout(CONNECT_TIMEOUT);
        if config.get_application_name().is_none() {
            config.application_name("milestoned");
        }
        let connected = match tls {
            Some(tls) => config.connect(tls),
            None => config.connect(NoTls),
        };
        let mut client = connected.map_err(failed(target, "connect"))?;
        let pid: i32 = client
            .query_one("SELECT pg_backend_pid(), set_config('statement_timeout', $1, false)", &[&STATEMENT_TIMEOUT])
            .map_err(failed(target, "connect"))?
            .get(0);
        Ok(Connection { client, statements: HashMap::new(), pid })
    }

    /// `sql` prepared once per connection.
    pub fn prepared(&mut self, sql: &str, target: &str) -> StorageResult<Statement> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql).map_err(failed(target, "prepare a statement"))?;
        if self.statements.len() >= STATEMENTS {
            self.statements.clear();
        }
        self.statements.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }
}

/// A connection on loan; it returns to the pool when dropped, unless the
/// server closed it.
pub struct Lease<'a> {
    pool: &'a ConnectionPool,
    conn: Option<Connection>,
}

impl ConnectionPool {
    pub fn new(url: DatabaseUrl) -> ConnectionPool {
        let target = url.target();
        ConnectionPool {
            url,
            target,
            idle: Mutex::new(Vec::new()),
            events: Mutex::new(None),
            pids: Mutex::new(HashSet::new()),
        }
    }

    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    /// `PostgreSQL at HOST:PORT, database NAME`, for messages.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// An idle connection still open, or a new one.
    pub fn get(&self) -> StorageResult<Lease<'_>> {
        loop {
            let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
            match idle {
                Some(conn) if conn.client.is_closed() => self.forget(conn.pid),
                Some(conn) => return Ok(Lease { pool: self, conn: Some(conn) }),
                None => break,
            }
        }
        let conn = Connection::open(&self.url, &self.target)?;
        self.pids.lock().unwrap_or_else(|p| p.into_inner()).insert(conn.pid);
        Ok(Lease { pool: self, conn: Some(conn) })
    }

    /// Runs `work` on the events connection, opening it on first use (and
    /// again after the server closed it).
    pub fn with_events<T>(&self, work: impl FnOnce(&mut Connection) -> StorageResult<T>) -> StorageResult<T> {
        let mut slot = self.events.lock().unwrap_or_else(|p| p.into_inner());
        if slot.as_ref().is_some_and(|c| c.client.is_closed()) {
            *slot = None;
        }
        let conn = match &mut *slot {
            Some(conn) => conn,
            empty @ None => {
                let mut conn = Connection::open(&self.url, &self.target)?;
                conn.client
                    .batch_execute("SET synchronous_commit = off")
                    .map_err(failed(&self.target, "set up the events connection"))?;
                self.pids.lock().unwrap_or_else(|p| p.into_inner()).insert(conn.pid);
                empty.insert(conn)
            }
        };
        work(conn)
    }

    /// Drops every idle connection (after the server went away, all of
    /// them are dead).
    pub fn clear(&self) {
        let idle = std::mem::take(&mut *self.idle.lock().unwrap_or_else(|p| p.into_inner()));
        for conn in idle {
            self.forget(conn.pid);
        }
    }

    /// True when the server process `pid` serves one of this pool's
    /// connections.
    pub fn is_own(&self, pid: i32) -> bool {
        self.pids.lock().unwrap_or_else(|p| p.into_inner()).contains(&pid)
    }

    fn forget(&self, pid: i32) {
        self.pids.lock().unwrap_or_else(|p| p.into_inner()).remove(&pid);
    }
}

impl Deref for Lease<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        // Only `drop` takes the connection out.
        self.conn.as_ref().unwrap_or_else(|| unreachable!("a connection is used after being returned"))
    }
}

impl DerefMut for Lease<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        self.conn.as_mut().unwrap_or_else(|| unreachable!("a connection is used after being returned"))
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        let mut idle = self.pool.idle.lock().unwrap_or_else(|p| p.into_inner());
        if conn.client.is_closed() || idle.len() >= IDLE {
            drop(idle);
            self.pool.forget(conn.pid);
        } else {
            idle.push(conn);
        }
    }
}
