//! The `.milestones/` tree of DESIGN §3: where every file lives, and creating
//! the folders and default configuration when they are missing.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// `.milestones/.gitignore`, written when missing and never over a user's
/// edits. What is tracked is listed, not what is ignored, so that state a
/// later version keeps here is one machine's by default.
const GITIGNORE: &str = "\
# Written by milestoned when missing, never rewritten: yours to edit.
# The team's data is tracked: the milestone files and the shared
# configuration. Everything else here is one machine's state (socket,
# locks, pid, logs and the audit log, index and database files, backups,
# the backend this clone is on, migration notes).
/*
!/.gitignore
!/.gitattributes
!/active/
!/completed/
!/config/
/config/*
!/config/storage-config.yaml
# Editors' and milestoned's own temporary files.
.*.tmp
*.swp
*~
";

/// Seed 003's `storage-config.yaml` defaults plus the keys DESIGN §9 adds.
const DEFAULT_STORAGE_CONFIG: &str = r#"storage:
  backend: "auto"  # auto, file, hybrid, database
  thresholds:
    milestone_count:
      file_to_hybrid: 25
      hybrid_to_database: 100
    concurrent_users:
      file_to_hybrid: 5
      hybrid_to_database: 20

  # hybrid backend: also keep the audit events in index.db (milestone_events)
  events_in_database: true

  # the daemon's log level (error, warn, info, debug, trace), re-read on
  # SIGHUP; --log-level and MILESTONED_LOG come first
  # log_level: "info"

  # a daemon started in the background (by msctl, say) exits after this many
  # seconds without a client; msctl starts it again on demand. 0 = never
  idle_exit_seconds: 0

  # generated ids: this prefix, a dash and a short random suffix that
  # grows with the project (ms-k3f9x), unique across clones and branches
  ids:
    prefix: "ms"

  # how outside edits are noticed: notify (inotify, FSEvents) or poll (a scan
  # every 2 s, for network filesystems that report no changes)
  watcher: "notify"

  database:
    type: "sqlite"  # sqlite, postgresql
    url: ""
    pool_size: 10

  performance:
    cache_enabled: true
    cache_ttl: 300
    query_timeout: 30

  migration:
    auto_migrate: true
    backup_before_migration: true
    rollback_on_failure: true
    migration_delay_seconds: 3600   # grace period after a threshold is crossed
    window_hours: []                # [] = any hour; [2, 6] = only from 02:00 to 06:00
    max_downtime_seconds: 30        # longest a write may wait on a migration

  monitoring:
    interval_seconds: 300
    confidence_threshold: 80
"#;

/// Paths of one project's `.milestones/` tree.
#[derive(Debug, Clone)]
pub struct ProjectLayout {
    root: PathBuf,
    dir: PathBuf,
}

impl ProjectLayout {
    pub fn new(root: &Path) -> Self {
        ProjectLayout { root: root.to_path_buf(), dir: root.join(".milestones") }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The `.milestones/` folder itself.
    pub fn milestones_dir(&self) -> &Path {
        &self.dir
    }

    pub fn active(&self) -> PathBuf {
        self.dir.join("active")
    }
    pub fn completed(&self) -> PathBuf {
        self.dir.join("completed")
    }
    pub fn logs(&self) -> PathBuf {
        self.dir.join("logs")
    }
    pub fn config(&self) -> PathBuf {
        self.dir.join("config")
    }
    pub fn storage_events(&self) -> PathBuf {
        self.logs().join("storage-events.jsonl")
    }
    pub fn storage_config(&self) -> PathBuf {
        self.config().join("storage-config.yaml")
    }
    pub fn backend_file(&self) -> PathBuf {
        self.config().join("storage-backend.txt")
    }
    /// The hybrid backend's index.
    pub fn index_db(&self) -> PathBuf {
        self.dir.join("index.db")
    }
    /// The database backend's SQLite file.
    pub fn enterprise_db(&self) -> PathBuf {
        self.dir.join("enterprise.db")
    }
    /// The PostgreSQL URL this machine connects with (owner-only: it may
    /// hold a password). Machine state, beside the socket, not shared
    /// configuration: each clone may reach the server its own way.
    pub fn database_url_file(&self) -> PathBuf {
        self.dir.join("database-url")
    }

    /// The scale monitor's figures, a JSON line per cycle (seed 004).
    pub fn performance_metrics(&self) -> PathBuf {
        self.logs().join("performance-metrics.jsonl")
    }

    /// The scale monitor's decisions, a JSON line each (seed 004).
    pub fn scale_events(&self) -> PathBuf {
        self.logs().join("scale-events.jsonl")
    }

    /// A recommended migration, written when `auto_migrate` is off.
    pub fn migration_notification(&self) -> PathBuf {
        self.config().join("migration-notification.yaml")
    }

    /// The journal of a migration under way (absent when none is).
    pub fn migration_journal(&self) -> PathBuf {
        self.dir.join("migration-journal.json")
    }
    /// The YAML files a migration out of a database has written so far.
    pub fn migration_export(&self) -> PathBuf {
        self.dir.join("migration-export.jsonl")
    }
    /// The YAML files a migration into a database leaves to remove.
    pub fn migration_stale(&self) -> PathBuf {
        self.dir.join("migration-stale.jsonl")
    }
    pub fn backups(&self) -> PathBuf {
        self.dir.join("backups")
    }
    pub fn daemon_log(&self) -> PathBuf {
        self.logs().join("milestoned.log")
    }
    pub fn lock_file(&self) -> PathBuf {
        self.dir.join("milestoned.lock")
    }
    pub fn pid_file(&self) -> PathBuf {
        self.dir.join("milestoned.pid")
    }

    /// The path relative to the project root, for messages and logs.
    pub fn relative<'a>(&self, path: &'a Path) -> &'a Path {
        path.strip_prefix(&self.root).unwrap_or(path)
    }

    /// Creates whatever of the tree is missing; never touches what exists.
    pub fn ensure(&self) -> io::Result<()> {
        for dir in [self.active(), self.completed(), self.logs(), self.config()] {
            fs::create_dir_all(&dir)?;
        }
        write_if_missing(&self.storage_config(), DEFAULT_STORAGE_CONFIG)?;
        write_if_missing(&self.backend_file(), "file\n")?;
        write_if_missing(&self.dir.join(".gitignore"), GITIGNORE)?;
        Ok(())
    }
}

fn write_if_missing(path: &Path, contents: &str) -> io::Result<()> {
    match fs::OpenOptions::new().write(true).create_new(true).open(path) {
        Ok(mut f) => io::Write::write_all(&mut f, contents.as_bytes()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}
