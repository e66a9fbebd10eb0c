//! The tables of `index.db` (hybrid backend) and `enterprise.db` (database
//! backend on SQLite).
//!
//! Both have a `milestones` table with the same query columns, so one query
//! compiler and one analytics module serve both:
//! - `data`: the whole document as JSON;
//! - `id`, `title`, `status`, `priority`, `category`, `created_at`,
//!   `updated_at`, `completed_at`: the field's value when it is text, else
//!   NULL (the query engine's rule for core text fields);
//! - `priority_rank` (0 = low .. 3 = critical), `tasks_total`,
//!   `tasks_completed`.
//!
//! They differ where their users need them to. The index's first columns are
//! exactly seed 003's (`id, title, status, priority, created_at, updated_at,
//! file_path`), plain columns the shell tooling can read, plus the file's
//! size, mtime and hash for reconciliation. The database follows seed 001:
//! `data` is the truth and `status` and the other text columns are generated
//! from it, so `json_extract(data, '$.status')` and `status` always agree,
//! plus a revision number per milestone for concurrent writers later.

use rusqlite::{Connection, TransactionBehavior};

use crate::storage::error::{StorageError, StorageResult};
use crate::storage::record::{counted_combinations, ordered_column};

/// `PRAGMA user_version` of the layout below.
pub const SCHEMA_VERSION: i64 = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// `index.db`: an index of the YAML files.
    Index,
    /// `enterprise.db`: the milestones themselves.
    Database,
}

/// A text field as a generated column: its value when text, else NULL.
macro_rules! text_of {
    ($field:literal) => {
        concat!("CASE WHEN json_type(data, '$.", $field, "') = 'text' THEN json_extract(data, '$.", $field, "') END")
    };
}

const PRIORITY_RANK: &str =
    "CASE json_extract(data, '$.priority') WHEN 'low' THEN 0 WHEN 'medium' THEN 1 WHEN 'high' THEN 2 WHEN 'critical' THEN 3 END";

fn milestones_table(flavour: Flavour) -> String {
    match flavour {
        Flavour::Index => "CREATE TABLE milestones (
            id TEXT PRIMARY KEY,
            title TEXT,
            status TEXT,
            priority TEXT,
            created_at TEXT,
            updated_at TEXT,
            file_path TEXT,
            data TEXT NOT NULL DEFAULT '{}',
            category TEXT,
            completed_at TEXT,
            priority_rank INTEGER,
            tasks_total INTEGER NOT NULL DEFAULT 0,
            tasks_completed INTEGER NOT NULL DEFAULT 0,
            file_size INTEGER,
            file_mtime_ns INTEGER,
            file_hash TEXT
        );"
        .to_owned(),
        Flavour::Database => format!(
            "CREATE TABLE milestones (
            id TEXT PRIMARY KEY,
            data JSON NOT NULL,
            status TEXT GENERATED ALWAYS AS ({status}) STORED,
            project_id TEXT GENERATED ALWAYS AS (json_extract(data, '$.projectId')) STORED,
            title TEXT GENERATED ALWAYS AS ({title}) STORED,
            priority TEXT GENERATED ALWAYS AS ({priority}) STORED,
            category TEXT GENERATED ALWAYS AS ({category}) STORED,
            priority_rank INTEGER GENERATED ALWAYS AS ({rank}) STORED,
            created_at TEXT,
            updated_at TEXT,
            completed_at TEXT,
            tasks_total INTEGER NOT NULL DEFAULT 0,
            tasks_completed INTEGER NOT NULL DEFAULT 0,
            revision INTEGER NOT NULL DEFAULT 1
        );",
            status = text_of!("status"),
            title = text_of!("title"),
            priority = text_of!("priority"),
            category = text_of!("category"),
            rank = PRIORITY_RANK,
        ),
    }
}

/// The indexes of `milestones`, created with the table, or after a
/// migration's bulk copy (building an index over rows already there is
/// several times faster than keeping it up to date row by row).
///
/// Every list order is served by an index, so that a page costs what it
/// returns: each core field and `priority_rank` in both directions
/// (missing values last, ties by id, as [`super::compile`] writes the
/// `ORDER BY`), and newest first within each combination of status,
/// priority and category.
/// These replace the seeds' single-column indexes on status, priority and
/// created_at, which they begin with or make redundant: every index costs
/// each write and a migration's copy its own pass over the table.
fn milestones_indexes(flavour: Flavour) -> String {
    let seeds = match flavour {
        Flavour::Index => {
            "
        CREATE INDEX IF NOT EXISTS idx_file_path ON milestones(file_path);
        CREATE INDEX IF NOT EXISTS idx_created_completed ON milestones(created_at, completed_at);
        CREATE INDEX IF NOT EXISTS idx_completed_created ON milestones(completed_at, created_at);
        CREATE INDEX IF NOT EXISTS idx_tasks ON milestones(tasks_total, tasks_completed);
        DROP INDEX IF EXISTS idx_status;
        DROP INDEX IF EXISTS idx_priority;
        DROP INDEX IF EXISTS idx_created_at;
        DROP INDEX IF EXISTS idx_updated_at;
        DROP INDEX IF EXISTS idx_category;
        DROP INDEX IF EXISTS idx_priority_rank;
        DROP INDEX IF EXISTS idx_status_created;"
        }
        Flavour::Database => {
            "
        CREATE INDEX IF NOT EXISTS idx_milestones_project ON milestones(project_id);
        CREATE INDEX IF NOT EXISTS idx_milestones_created_completed ON milestones(created_at, completed_at);
        CREATE INDEX IF NOT EXISTS idx_milestones_completed_created ON milestones(completed_at, created_at);
        CREATE INDEX IF NOT EXISTS idx_milestones_tasks ON milestones(tasks_total, tasks_completed);
        DROP INDEX IF EXISTS idx_milestones_status;
        DROP INDEX IF EXISTS idx_milestones_updated;
        DROP INDEX IF EXISTS idx_milestones_category;
        DROP INDEX IF EXISTS idx_milestones_priority;
        DROP INDEX IF EXISTS idx_milestones_status_created;
        DROP INDEX IF EXISTS idx_milestones_priority_text;"
        }
    };
    let mut sql = seeds.to_owned();
    // Every column a sort key orders by (`id`'s is the primary key).
    let ordered = crate::query::TEXT_FIELDS.iter().filter(|f| **f != "id").filter_map(|f| ordered_column(f));
    for column in ordered {
        sql.push_str(&format!(
            "
        CREATE INDEX IF NOT EXISTS idx_order_{column}_desc ON milestones({column} DESC, id);
        CREATE INDEX IF NOT EXISTS idx_order_{column}_asc ON milestones({column} IS NULL, {column}, id);"
        ));
    }
    for columns in counted_combinations() {
        sql.push_str(&format!(
            "
        CREATE INDEX IF NOT EXISTS idx_newest_by_{} ON milestones({}, created_at DESC, id);",
            columns.join("_"),
            columns.join(", ")
        ));
    }
    sql
}

/// How many milestones hold each (status, priority, category), kept by
/// triggers, so that a page's total under those filters is a sum over a
/// few rows rather than a count of every matching milestone. Created (and
/// filled from the rows) with the indexes, so a bulk load into a new file
/// does not pay for it row by row; one savepoint, so the table never
/// exists without its triggers or its rows.
const MILESTONE_COUNTS: &str = "
    SAVEPOINT milestone_counts;
    CREATE TABLE milestone_counts (
        key TEXT PRIMARY KEY,
        status TEXT,
        priority TEXT,
        category TEXT,
        n INTEGER NOT NULL
    ) WITHOUT ROWID;
    INSERT INTO milestone_counts (key, status, priority, category, n)
        SELECT json_array(status, priority, category), status, priority, category, COUNT(*)
        FROM milestones GROUP BY status, priority, category;
    CREATE TRIGGER milestone_counts_insert AFTER INSERT ON milestones BEGIN
        INSERT INTO milestone_counts (key, status, priority, category, n)
            VALUES (json_array(NEW.status, NEW.priority, NEW.category), NEW.status, NEW.priority, NEW.category, 1)
            ON CONFLICT (key) DO UPDATE SET n = n + 1;
    END;
    CREATE TRIGGER milestone_counts_delete AFTER DELETE ON milestones BEGIN
        UPDATE milestone_counts SET n = n - 1 WHERE key = json_array(OLD.status, OLD.priority, OLD.category);
    END;
    CREATE TRIGGER milestone_counts_update AFTER UPDATE ON milestones
    WHEN OLD.status IS NOT NEW.status OR OLD.priority IS NOT NEW.priority OR OLD.category IS NOT NEW.category
    BEGIN
        UPDATE milestone_counts SET n = n - 1 WHERE key = json_array(OLD.status, OLD.priority, OLD.category);
        INSERT INTO milestone_counts (key, status, priority, category, n)
            VALUES (json_array(NEW.status, NEW.priority, NEW.category), NEW.status, NEW.priority, NEW.category, 1)
            ON CONFLICT (key) DO UPDATE SET n = n + 1;
    END;
    RELEASE milestone_counts;
";

/// One row of what `stats` needs of every milestone, kept by triggers:
/// how many milestones there are, their tasks' sums, and a number that
/// moves whenever the creation and completion times may have changed (a
/// milestone came, went, or had either time changed), so that a store
/// keeps the times it read until then rather than until any commit.
/// Created with the indexes, where missing, as [`MILESTONE_COUNTS`] is.
const MILESTONE_TALLY: &str = "
    SAVEPOINT milestone_tally;
    CREATE TABLE milestone_tally (
        times_version INTEGER NOT NULL,
        milestones INTEGER NOT NULL,
        tasks_total INTEGER NOT NULL,
        tasks_completed INTEGER NOT NULL
    );
    INSERT INTO milestone_tally
        SELECT 0, COUNT(*), IFNULL(SUM(tasks_total), 0), IFNULL(SUM(tasks_completed), 0) FROM milestones;
    CREATE TRIGGER milestone_tally_insert AFTER INSERT ON milestones BEGIN
        UPDATE milestone_tally SET times_version = times_version + 1,
            milestones = milestones + 1, tasks_total = tasks_total + NEW.tasks_total,
            tasks_completed = tasks_completed + NEW.tasks_completed;
    END;
    CREATE TRIGGER milestone_tally_delete AFTER DELETE ON milestones BEGIN
        UPDATE milestone_tally SET times_version = times_version + 1,
            milestones = milestones - 1, tasks_total = tasks_total - OLD.tasks_total,
            tasks_completed = tasks_completed - OLD.tasks_completed;
    END;
    CREATE TRIGGER milestone_tally_update AFTER UPDATE ON milestones
    WHEN OLD.tasks_total IS NOT NEW.tasks_total OR OLD.tasks_completed IS NOT NEW.tasks_completed
        OR OLD.created_at IS NOT NEW.created_at OR OLD.completed_at IS NOT NEW.completed_at
    BEGIN
        UPDATE milestone_tally SET
            times_version = times_version
                + (OLD.created_at IS NOT NEW.created_at OR OLD.completed_at IS NOT NEW.completed_at),
            tasks_total = tasks_total + NEW.tasks_total - OLD.tasks_total,
            tasks_completed = tasks_completed + NEW.tasks_completed - OLD.tasks_completed;
    END;
    RELEASE milestone_tally;
";

/// The milestones whose place in the dependency graph changed, in order:
/// one row each time a milestone comes or goes or an edge row out of it is
/// written or removed, kept by triggers, the last 10,000 only. A store
/// that keeps its graph reads what changed since it last looked and brings
/// the graph up to date, whoever wrote; once that has been pruned away, it
/// builds the graph again. Created with the indexes,
/// where missing, as [`MILESTONE_COUNTS`] is.
const GRAPH_CHANGES: &str = "
    SAVEPOINT graph_changes;
    CREATE TABLE graph_changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, milestone_id TEXT NOT NULL);
    CREATE TRIGGER graph_changes_milestone_insert AFTER INSERT ON milestones BEGIN
        INSERT INTO graph_changes (milestone_id) VALUES (NEW.id);
    END;
    CREATE TRIGGER graph_changes_milestone_delete AFTER DELETE ON milestones BEGIN
        INSERT INTO graph_changes (milestone_id) VALUES (OLD.id);
    END;
    CREATE TRIGGER graph_changes_edge_insert AFTER INSERT ON milestone_dependencies BEGIN
        INSERT INTO graph_changes (milestone_id) VALUES (NEW.milestone_id);
    END;
    CREATE TRIGGER graph_changes_edge_delete AFTER DELETE ON milestone_dependencies BEGIN
        INSERT INTO graph_changes (milestone_id) VALUES (OLD.milestone_id);
    END;
    CREATE TRIGGER graph_changes_pruned AFTER INSERT ON graph_changes BEGIN
        DELETE FROM graph_changes WHERE seq <= NEW.seq - 10000;
    END;
    RELEASE graph_changes;
";

/// The indexes of the tables both flavours share (see
/// [`milestones_indexes`]).
const SHARED_INDEXES: &str = "
    CREATE INDEX IF NOT EXISTS idx_dependencies_from ON milestone_dependencies(milestone_id);
    CREATE INDEX IF NOT EXISTS idx_dependencies_to ON milestone_dependencies(depends_on);
    CREATE INDEX IF NOT EXISTS idx_dependencies_declared ON milestone_dependencies(declared_by);
    CREATE INDEX IF NOT EXISTS idx_events_milestone ON milestone_events(milestone_id);
";

/// Tables both flavours share.
const SHARED_TABLES: &str = "
    -- One row per edge a document declares: `milestone_id` requires
    -- `depends_on`; `declared_by` is the document that says so.
    CREATE TABLE milestone_dependencies (
        milestone_id TEXT NOT NULL,
        depends_on TEXT NOT NULL,
        dependency_type TEXT NOT NULL DEFAULT 'blocks',
        declared_by TEXT NOT NULL,
        created_at TEXT DEFAULT CURRENT_TIMESTAMP
    );

    CREATE TABLE milestone_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        milestone_id TEXT,
        event_type TEXT,
        event_data JSON,
        timestamp TEXT DEFAULT CURRENT_TIMESTAMP,
        correlation_id TEXT
    );

    -- Full-text search; rowids follow `milestones`' rowids.
    CREATE VIRTUAL TABLE milestones_fts USING fts5(body, tokenize = 'unicode61 remove_diacritics 0');
";

/// What `open` found.
#[derive(Debug, PartialEq, Eq)]
pub enum SchemaState {
    Created,
    Current,
}

/// Creates the tables in an empty database (with their indexes unless
/// `indexes_later`: see [`create_indexes`]), or checks an existing one was
/// made by this schema version.
pub fn prepare(conn: &mut Connection, flavour: Flavour, name: &str, indexes_later: bool) -> StorageResult<SchemaState> {
    let failed = |what: &str| super::failure::failed(format!("cannot {what} of {name}"));
    // Read and created in one write transaction: two processes opening a
    // new database at once cannot both create the tables.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(failed("read the schema"))?;
    let version: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(failed("read the schema"))?;
    let tables: i64 = tx
        .query_row("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'", [], |r| r.get(0))
        .map_err(failed("read the schema"))?;
    match version {
        SCHEMA_VERSION => return Ok(SchemaState::Current),
        // Version 1 lacked the list orders' indexes and the counts,
        // version 2 the indexes of combined filters, version 3 the tally
        // and the graph's changes.
        1..=3 => {
            create_indexes(&tx, flavour)
                .and_then(|()| tx.pragma_update(None, "user_version", SCHEMA_VERSION))
                .and_then(|()| tx.commit())
                .map_err(failed("bring the schema up to date"))?;
            return Ok(SchemaState::Current);
        }
        0 if tables == 0 => {}
        0 => {
            return Err(StorageError::Invalid(format!(
                "{name} holds tables that milestoned did not create (schema version 0)"
            )))
        }
        v => {
            return Err(StorageError::Invalid(format!(
                "{name} has schema version {v}; this milestoned {} knows version {SCHEMA_VERSION}",
                env!("CARGO_PKG_VERSION")
            )))
        }
    }
    tx.execute_batch(&milestones_table(flavour))
        .and_then(|()| tx.execute_batch(SHARED_TABLES))
        .and_then(|()| if indexes_later { Ok(()) } else { create_indexes(&tx, flavour) })
        .and_then(|()| tx.pragma_update(None, "user_version", SCHEMA_VERSION))
        .and_then(|()| tx.commit())
        .map_err(failed("create the tables"))?;
    Ok(SchemaState::Created)
}

/// Creates the indexes and the counts a bulk copy left for last.
pub fn create_indexes(conn: &Connection, flavour: Flavour) -> rusqlite::Result<()> {
    conn.execute_batch(&milestones_indexes(flavour))?;
    conn.execute_batch(SHARED_INDEXES)?;
    // Once there, the triggers keep it: a bulk load into a file that has
    // it (the index reconciled at start-up) writes nothing here, so a
    // full disk does not stop a start.
    let derived = [
        ("milestone_counts", MILESTONE_COUNTS),
        ("milestone_tally", MILESTONE_TALLY),
        ("graph_changes", GRAPH_CHANGES),
    ];
    for (table, create) in derived {
        if !table_exists(conn, table)? {
            conn.execute_batch(create)?;
        }
    }
    Ok(())
}

/// Whether `conn`'s file holds table `name`.
pub fn table_exists(conn: &Connection, name: &str) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?)")
        .and_then(|mut s| s.query_row([name], |r| r.get(0)))
}
