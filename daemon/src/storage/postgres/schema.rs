//! The PostgreSQL tables (seed 001's schema, adapted where a rule of every
//! backend asks for it), versioned: `milestoned_schema` records each
//! version applied, start-up applies what is missing under an advisory lock
//! (several daemons may start at once), and a daemon meeting a newer
//! version than it knows refuses instead of writing into it.
//!
//! - `data JSONB` is what queries read; `document` keeps the same JSON as
//!   text with its keys in the user's order (JSONB sorts keys, and a
//!   round trip through the database must give back the file a user
//!   wrote).
//! - `status`, `title` and the other core text columns are generated from
//!   `data`, holding the field when it is text and NULL otherwise (the
//!   query rule of every backend), collated `"C"` so they order byte by
//!   byte as the other backends do.
//! - `search` is a `tsvector` of the words the shared search rules find in
//!   the id, title, description, category and task titles, written by the
//!   daemon rather than by a text-search configuration, so `msctl search`
//!   finds the same milestones here as everywhere; a GIN index serves it.
//! - `revision` is the compare-and-swap counter; `change_seq` (from a
//!   sequence, set by a trigger) orders changes for daemons catching up
//!   after a disconnect (`created_change` tells them which rows are new), and `row_updated_at` is the `updated_at` trigger's
//!   column (the document's own `updated_at` is the user's, never touched).
//! - `milestone_counts` keeps, through statement triggers, how many
//!   milestones hold each status, priority and category, so that totals
//!   of pages filtered on those (and `COUNT(*)`) stay cheap at a million.
//! - A trigger NOTIFYs `milestoned_changes` after every row change,
//!   whoever made it (a daemon, or `psql`), and keeps deleted ids in
//!   `milestone_deletions` for daemons catching up.

use crate::storage::error::{StorageError, StorageResult};

use super::failure::failed;
use super::pool::Connection;

/// The newest schema version this milestoned knows.
pub const SCHEMA_VERSION: i32 = 3;

/// The channel change notifications go to.
pub const CHANNEL: &str = "milestoned_changes";

/// PostgreSQL 12 brought generated columns.
const OLDEST_SERVER: i32 = 120_000;

/// Advisory lock key under which the schema is read and created
/// (`milestoned` in ASCII).
const SCHEMA_LOCK: i64 = 0x6d69_6c65_7374_6f6e;

/// A text field as a generated column: its value when text, else NULL.
fn text_column(field: &str) -> String {
    format!(
        "{field} TEXT COLLATE \"C\" GENERATED ALWAYS AS \
         (CASE WHEN jsonb_typeof(data -> '{field}') = 'string' THEN data ->> '{field}' END) STORED,"
    )
}

fn version_1() -> String {
    let text_columns: String = ["status", "title", "priority", "category", "created_at", "updated_at", "completed_at"]
        .map(text_column)
        .join("\n        ");
    format!(
        "CREATE TABLE milestoned_schema (
        version INTEGER PRIMARY KEY,
        applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        applied_by TEXT NOT NULL
    );
    CREATE SEQUENCE milestone_change_seq;
    -- A migration copying into the database, while it runs: a copy that
    -- could not be undone (the server went away) is recognised, and cleared,
    -- by the next attempt from the same project root, and no other root
    -- joins a half-made copy.
    CREATE TABLE milestoned_copies (
        source TEXT PRIMARY KEY,
        started_at TIMESTAMPTZ NOT NULL DEFAULT now()
    );
    CREATE TABLE milestones (
        id TEXT COLLATE \"C\" PRIMARY KEY,
        data JSONB NOT NULL,
        document TEXT NOT NULL,
        {text_columns}
   priority_rank SMALLINT GENERATED ALWAYS AS (CASE WHEN jsonb_typeof(data -> 'priority') = 'string' THEN
            CASE data ->> 'priority' WHEN 'low' THEN 0 WHEN 'medium' THEN 1 WHEN 'high' THEN 2
                WHEN 'critical' THEN 3 END END) STORED,
        tasks_total INTEGER NOT NULL DEFAULT 0,
        tasks_completed INTEGER NOT NULL DEFAULT 0,
        search TSVECTOR NOT NULL,
        revision BIGINT NOT NULL,
        change_seq BIGINT NOT NULL DEFAULT 0,
        created_change BIGINT NOT NULL DEFAULT 0,
        row_updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
    );
    -- lz4 compresses the large documents several times faster than the
    -- default pglz (PostgreSQL 14 and newer, when built with it).
    DO $$ BEGIN
        IF current_setting('server_version_num')::int >= 140000 THEN
            EXECUTE 'ALTER TABLE milestones ALTER COLUMN document SET COMPRESSION lz4, '
                || 'ALTER COLUMN data SET COMPRESSION lz4';
        END IF;
    EXCEPTION WHEN OTHERS THEN NULL;
    END $$;
    CREATE INDEX milestones_status ON milestones (status);
    CREATE INDEX milestones_created ON milestones (created_at DESC NULLS LAST, id);
    CREATE INDEX milestones_status_created ON milestones (status, created_at DESC NULLS LAST, id);
    CREATE INDEX milestones_priority ON milestones (priority_rank, created_at DESC NULLS LAST, id);
    CREATE INDEX milestones_category ON milestones (category);
    CREATE INDEX milestones_updated ON milestones (updated_at);
    CREATE INDEX milestones_completed ON milestones (completed_at, created_at);
    CREATE INDEX milestones_change_seq ON milestones (change_seq);
    CREATE INDEX milestones_data ON milestones USING gin (data jsonb_path_ops);
    CREATE INDEX milestones_search ON milestones USING gin (search);

    -- One row per edge a document declares: `milestone_id` requires
    -- `depends_on`; `declared_by` is the document that says so.
    CREATE TABLE milestone_dependencies (
        milestone_id TEXT COLLATE \"C\" NOT NULL,
        depends_on TEXT COLLATE \"C\" NOT NULL,
        dependency_type TEXT NOT NULL DEFAULT 'blocks',
        declared_by TEXT COLLATE \"C\" NOT NULL REFERENCES milestones (id) ON DELETE CASCADE,
        created_at TIMESTAMPTZ NOT NULL DEFAULT now()
    );
    CREATE INDEX milestone_dependencies_from ON milestone_dependencies (milestone_id);
    CREATE INDEX milestone_dependencies_to ON milestone_dependencies (depends_on);
    CREATE INDEX milestone_dependencies_declared ON milestone_dependencies (declared_by);

    -- The audit events. One table rather than seed 001's monthly
    -- partitions: partitions need next month's created ahead of time (or
    -- inserts fail), while one project's events (thousands a day) stay
    -- cheap to scan by time through a BRIN index, and old ones go with a
    -- ranged DELETE.
    CREATE TABLE milestone_events (
        id BIGSERIAL PRIMARY KEY,
        milestone_id TEXT COLLATE \"C\",
        event_type TEXT NOT NULL,
        event_data JSONB,
        user_name TEXT,
        timestamp TIMESTAMPTZ NOT NULL DEFAULT now()
    );
    CREATE INDEX milestone_events_time ON milestone_events USING brin (timestamp);
    CREATE INDEX milestone_events_milestone ON milestone_events (milestone_id);

    CREATE TABLE milestone_deletions (
        id TEXT COLLATE \"C\" NOT NULL,
        change_seq BIGINT NOT NULL,
        deleted_at TIMESTAMPTZ NOT NULL DEFAULT now()
    );
    CREATE INDEX milestone_deletions_seq ON milestone_deletions (change_seq);

    CREATE FUNCTION milestones_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        NEW.change_seq := nextval('milestone_change_seq');
        IF TG_OP = 'INSERT' THEN
            NEW.created_change := NEW.change_seq;
        ELSE
            NEW.created_change := OLD.created_change;
        END IF;
        NEW.row_updated_at := now();
        RETURN NEW;
    END $$;
    CREATE TRIGGER milestones_stamp BEFORE INSERT OR UPDATE ON milestones
        FOR EACH ROW EXECUTE FUNCTION milestones_stamp();

    -- How many milestones hold each combination of status, priority and
    -- category, kept by statement triggers in the writing transaction, so
    -- that the total of a page filtered on those fields (and of none) is a
    -- sum over a few rows, not a count over a million. Each connection adds
    -- to its own shard (by its process id), so concurrent writers never
    -- wait on one counter row.
    CREATE TABLE milestone_counts (
        key TEXT PRIMARY KEY,
        status TEXT COLLATE \"C\",
        priority TEXT COLLATE \"C\",
        category TEXT COLLATE \"C\",
        n BIGINT NOT NULL
    );
    CREATE FUNCTION milestone_counts_follow() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            INSERT INTO milestone_counts AS c (key, status, priority, category, n)
            SELECT jsonb_build_array(status, priority, category, pg_backend_pid() % 16)::text,
                status, priority, category, count(*)
            FROM added GROUP BY status, priority, category
            ON CONFLICT (key) DO UPDATE SET n = c.n + excluded.n;
        ELSIF TG_OP = 'DELETE' THEN
            INSERT INTO milestone_counts AS c (key, status, priority, category, n)
            SELECT jsonb_build_array(status, priority, category, pg_backend_pid() % 16)::text,
                status, priority, category, -count(*)
            FROM removed GROUP BY status, priority, category
            ON CONFLICT (key) DO UPDATE SET n = c.n + excluded.n;
        ELSE
            INSERT INTO milestone_counts AS c (key, status, priority, category, n)
            SELECT jsonb_build_array(status, priority, category, pg_backend_pid() % 16)::text,
                status, priority, category, sum(delta)
            FROM (
                SELECT a.status, a.priority, a.category, 1 AS delta
                FROM added a JOIN removed r USING (id)
                WHERE (a.status, a.priority, a.category) IS DISTINCT FROM (r.status, r.priority, r.category)
                UNION ALL
                SELECT r.status, r.priority, r.category, -1
                FROM added a JOIN removed r USING (id)
                WHERE (a.status, a.priority, a.category) IS DISTINCT FROM (r.status, r.priority, r.category)
            ) moved
            GROUP BY status, priority, category
            ON CONFLICT (key) DO UPDATE SET n = c.n + excluded.n;
        END IF;
        RETURN NULL;
    END $$;
    CREATE TRIGGER milestone_counts_insert AFTER INSERT ON milestones
        REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION milestone_counts_follow();
    CREATE TRIGGER milestone_counts_update AFTER UPDATE ON milestones
        REFERENCING NEW TABLE AS added OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION milestone_counts_follow();
    CREATE TRIGGER milestone_counts_delete AFTER DELETE ON milestones
        REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION milestone_counts_follow();

    CREATE FUNCTION milestones_notify() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        seq BIGINT;
    BEGIN
        IF TG_OP = 'DELETE' THEN
            seq := nextval('milestone_change_seq');
            INSERT INTO milestone_deletions (id, change_seq) VALUES (OLD.id, seq);
            PERFORM pg_notify('milestoned_changes',
                json_build_object('op', 'deleted', 'id', OLD.id, 'seq', seq)::text);
            RETURN OLD;
        END IF;
        PERFORM pg_notify('milestoned_changes', json_build_object(
            'op', CASE TG_OP WHEN 'INSERT' THEN 'created' ELSE 'updated' END,
            'id', NEW.id, 'seq', NEW.change_seq, 'status', NEW.status)::text);
        RETURN NEW;
    END $$;
    CREATE TRIGGER milestones_notify AFTER INSERT OR UPDATE OR DELETE ON milestones
        FOR EACH ROW EXECUTE FUNCTION milestones_notify();"
    )
}

/// Version 2: every list order is read through an index, so that a page
/// costs what it returns: each core text field and `priority_rank` both
/// ways (missing values last, ties by id, as `compile` writes the
/// `ORDER BY`), and newest first within one priority or category (as
/// `milestones_status_created` does within a status). The single-column
/// indexes these begin with or replace go: each index costs every write.
fn version_2() -> String {
    let mut sql = String::from(
        "
    DROP INDEX milestones_status;
    DROP INDEX milestones_category;
    DROP INDEX milestones_updated;
    DROP INDEX milestones_priority;
    CREATE INDEX milestones_priority_created ON milestones (priority, created_at DESC NULLS LAST, id);
    CREATE INDEX milestones_category_created ON milestones (category, created_at DESC NULLS LAST, id);",
    );
    for column in ["created_at", "updated_at", "completed_at", "title", "status", "category", "priority_rank"] {
        for dir in ["ASC", "DESC"] {
            // `milestones_created` is the newest-first one already.
            if (column, dir) != ("created_at", "DESC") {
                let name = format!("milestones_order_{column}_{}", dir.to_lowercase());
                sql.push_str(&format!("\n    CREATE INDEX {name} ON milestones ({column} {dir} NULLS LAST, id);"));
            }
        }
    }
    sql
}

/// Version 3: newest first within each combination of two or three of
/// status, priority and category, so that a rare combination costs its
/// own matches (`record::counted_combinations`; one column alone has its
/// index already).
fn version_3() -> String {
    crate::storage::record::counted_combinations()
        .into_iter()
        .filter(|columns| columns.len() > 1)
        .map(|columns| {
            format!(
                "\n    CREATE INDEX milestones_{}_created ON milestones ({}, created_at DESC NULLS LAST, id);",
                columns.join("_"),
                columns.join(", ")
            )
        })
        .collect()
}

/// Every version's statements, oldest first: version `n` is `steps()[n - 1]`.
fn steps() -> Vec<String> {
    vec![version_1(), version_2(), version_3()]
}

/// Checks the server and brings the schema to [`SCHEMA_VERSION`], creating
/// it in an empty database. Refuses a database whose `milestones` table
/// milestoned did not make, and one whose schema is newer than it knows.
pub fn prepare(conn: &mut Connection, target: &str) -> StorageResult<()> {
    let failed = |what| failed(target, what);
    let row = conn
        .client
        .query_one("SELECT current_setting('server_version_num')::int, current_setting('server_encoding')", &[])
        .map_err(failed("read the server's version"))?;
    let (version, encoding): (i32, String) = (row.get(0), row.get(1));
    if version < OLDEST_SERVER {
        return Err(StorageError::Invalid(format!(
            "{target}: the server is PostgreSQL {}.{}; milestoned needs 12 or newer",
            version / 10_000,
            version % 10_000 / 100
        )));
    }
    if encoding != "UTF8" {
        return Err(StorageError::Invalid(format!(
            "{target}: the database's encoding is {encoding}; milestoned needs UTF8 (CREATE DATABASE ... ENCODING 'UTF8')"
        )));
    }
    let mut tx = conn.client.transaction().map_err(failed("read the schema"))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK]).map_err(failed("lock the schema"))?;
    let row = tx
        .query_one("SELECT to_regclass('milestoned_schema') IS NOT NULL, to_regclass('milestones') IS NOT NULL", &[])
        .map_err(failed("read the schema"))?;
    let (versioned, has_milestones): (bool, bool) = (row.get(0), row.get(1));
    let current: i32 = match (versioned, has_milestones) {
        (true, _) => tx
            .query_one("SELECT COALESCE(MAX(version), 0) FROM milestoned_schema", &[])
            .map_err(failed("read the schema version"))?
            .get(0),
        (false, true) => {
            return Err(StorageError::Invalid(format!(
                "{target} holds a `milestones` table that milestoned did not create; use another database"
            )))
        }
        (false, false) => 0,
    };
    if current > SCHEMA_VERSION {
        return Err(StorageError::Invalid(format!(
            "{target} has schema version {current}; this milestoned {} knows version {SCHEMA_VERSION} and leaves it \
             untouched: upgrade milestoned",
            env!("CARGO_PKG_VERSION")
        )));
    }
    let by = format!("milestoned {}", env!("CARGO_PKG_VERSION"));
    for (version, statements) in (1..).zip(steps()).skip(current as usize) {
        tx.batch_execute(&statements).map_err(failed("create the tables"))?;
        tx.execute("INSERT INTO milestoned_schema (version, applied_by) VALUES ($1, $2)", &[&version, &by])
            .map_err(failed("record the schema version"))?;
        tracing::info!(version, %target, "applied the database schema");
    }
    tx.commit().map_err(failed("create the tables"))
}
