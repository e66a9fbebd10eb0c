//! `msctl health` for PostgreSQL: the connection's state and seed 001's
//! `checkPostgreSQLHealth` figures (connections, cache hit ratio, locks
//! waiting, database size), plus the users seen by every daemon on the
//! database over the last hour.

use milestones_protocol::{DatabaseHealth, DatabaseTls};

use super::failure::failed;
use super::pool::ConnectionPool;
use crate::storage::error::StorageResult;

pub fn check(pool: &ConnectionPool, listening: bool) -> DatabaseHealth {
    let mut health = DatabaseHealth {
        url: pool.url().to_string(),
        connection: "connected".to_owned(),
        error: None,
        listening,
        server_version: None,
        active_connections: None,
        total_connections: None,
        cache_hit_ratio: None,
        locks_waiting: None,
        database_size_bytes: None,
        concurrent_users: None,
    };
    let figures = pool.get().and_then(|mut conn| {
        conn.client
            .query_one(
                "SELECT current_setting('server_version'),
                    (SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND datname = current_database()),
                    (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()),
                    (SELECT round((sum(heap_blks_hit) * 100.0 / NULLIF(sum(heap_blks_hit) + sum(heap_blks_read), 0))::numeric, 2)::float8
                       FROM pg_statio_user_tables),
                    (SELECT count(*) FROM pg_locks WHERE NOT granted),
                    pg_database_size(current_database()),
                    (SELECT count(DISTINCT user_name) FROM milestone_events
                       WHERE timestamp > now() - interval '1 hour')",
                &[],
            )
            .map_err(super::failure::failed(pool.target(), "read the server's figures"))
    });
    match figures {
        Ok(row) => {
            let count = |i: usize| row.get::<_, Option<i64>>(i).map(|n| n.max(0) as u64);
            health.server_version = row.get(0);
            health.active_connections = count(1);
            health.total_connections = count(2);
            health.cache_hit_ratio = row.get(3);
            health.locks_waiting = count(4);
            health.database_size_bytes = count(5);
            health.concurrent_users = count(6);
        }
        Err(e) => {
            health.connection = "unreachable".to_owned();
            health.error = Some(e.to_string());
        }
    }
    if health.connection == "connected" && !listening {
        health.connection = "reconnecting".to_owned();
    }
    health
}

/// What the server says of this daemon's connection (`pg_stat_ssl`), and
/// what the URL asked for.
pub fn tls(pool: &ConnectionPool) -> StorageResult<DatabaseTls> {
    let url = pool.url();
    let target = url.target();
    let mut conn = pool.get()?;
    let row = conn
        .client
        .query_one("SELECT ssl, version, cipher FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[])
        .map_err(failed(&target, "read the connection's encryption"))?;
    Ok(DatabaseTls {
        host: url.host(),
        encrypted: row.get(0),
        protocol: row.get(1),
        cipher: row.get(2),
        sslmode: url.tls().mode.name().to_owned(),
        checks: if url.by_socket() { "none needed: a local Unix socket" } else { url.tls().checks() }.to_owned(),
    })
}
