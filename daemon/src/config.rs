//! `config/storage-config.yaml`: the settings the daemon reads from it. The
//! file keeps seed 003's shape; keys the daemon does not use are left alone.

use std::fs;
use std::path::Path;

use milestones_protocol::{DatabaseKind, Thresholds, Value};

use crate::database_url::DatabaseUrl;
use crate::layout::ProjectLayout;

/// The environment variable that names the database URL, before
/// `.milestones/database-url` and `storage.database.url`.
pub const DATABASE_URL_ENV: &str = "MILESTONED_DATABASE_URL";

#[derive(Debug, Clone, PartialEq)]
pub struct StorageConfig {
    /// `storage.database.type`: the engine of the database backend.
    pub database: DatabaseSetting,
    /// The PostgreSQL URL: `MILESTONED_DATABASE_URL`, else
    /// `.milestones/database-url`, else `storage.database.url` (see
    /// [`StorageConfig::load_project`]). Shows itself only masked.
    pub database_url: Option<DatabaseUrl>,
    /// `storage.events_in_database`: the hybrid backend also keeps audit
    /// events in `index.db`.
    pub events_in_database: bool,
    /// `storage.thresholds` (seed 003's defaults).
    pub thresholds: Thresholds,
    /// `storage.log_level`, when set: the daemon's log level unless
    /// `--log-level` or `MILESTONED_LOG` say otherwise.
    pub log_level: Option<tracing::level_filters::LevelFilter>,
    /// `storage.idle_exit_seconds`: a daemon running in the background (not
    /// `--foreground`, so never under systemd or launchd) exits after this
    /// long without a client; `msctl` starts it again when needed. 0: never.
    pub idle_exit_seconds: u64,
    /// `storage.watcher`: `notify` (the default) or `poll`, for filesystems
    /// that do not report changes (network mounts).
    pub watcher: WatcherMode,
    /// `storage.monitoring` and `storage.migration`: the scale monitor.
    pub scale: ScaleSettings,
    /// `storage.audit.immutable_logs` (seed 000's
    /// `compliance.audit.immutable_logs`, project-wide): the audit log's
    /// entries are hash-chained, so that `msctl audit verify` finds any
    /// entry edited, removed or reordered.
    pub immutable_logs: bool,
    /// `storage.ids.prefix`: what generated ids start with, before a `-`
    /// and the random suffix (`ms` gives `ms-k3f9x`; empty, no prefix).
    pub id_prefix: String,
    /// `storage.hooks`: command lines run on events.
    pub hooks: HookSettings,
    /// `storage.access`: the roles of users and groups besides the owner.
    pub access: crate::access::AccessList,
    /// `storage.database.password_env` and `password_file`: where the
    /// database password comes from when the URL holds none.
    pub database_passwords: crate::database_password::PasswordSource,
    /// `storage.database.url` in this tracked file holds a password.
    pub password_in_tracked_file: bool,
}

/// The events a hook can be named for under `storage.hooks.<event>`.
pub const HOOK_EVENTS: [&str; 5] = ["created", "status_changed", "completed", "deleted", "migration_finished"];

/// `storage.hooks`: for each event of [`HOOK_EVENTS`], the shell command
/// lines to run, and how long each may take (`timeout_seconds`, 30 by
/// default) before it is killed.
#[derive(Debug, Clone, PartialEq)]
pub struct HookSettings {
    pub commands: Vec<(&'static str, Vec<String>)>,
    pub timeout: std::time::Duration,
}

impl Default for HookSettings {
    fn default() -> Self {
        HookSettings { commands: Vec::new(), timeout: std::time::Duration::from_secs(30) }
    }
}

impl HookSettings {
    /// The command lines for `event`, in the order written.
    pub fn for_event(&self, event: &str) -> &[String] {
        self.commands.iter().find(|(e, _)| *e == event).map_or(&[], |(_, c)| c)
    }

    pub fn is_empty(&self) -> bool {
        self.commands.iter().all(|(_, c)| c.is_empty())
    }

    fn parse(value: Option<&Value>, name: &str) -> Result<HookSettings, ConfigError> {
        let invalid = |m: String| ConfigError::Invalid(format!("{name}: storage.hooks{m}"));
        let mut hooks = HookSettings::default();
        let entries = match value {
            None | Some(Value::Null) => return Ok(hooks),
            Some(Value::Map(entries)) => entries,
            Some(other) => {
                return Err(invalid(format!(" must be a mapping of events to commands, not a {}", other.type_name())))
            }
        };
        for (key, value) in entries.iter() {
            if key == "timeout_seconds" {
                match value {
                    Value::Int(n) if *n > 0 => hooks.timeout = std::time::Duration::from_secs(*n as u64),
                    _ => return Err(invalid(".timeout_seconds must be a whole number of seconds above 0".into())),
                }
                continue;
            }
            let Some(event) = HOOK_EVENTS.iter().find(|e| **e == key) else {
                return Err(invalid(format!(
                    ".{key} is not an event; hooks run on {} (and timeout_seconds sets their time limit)",
                    HOOK_EVENTS.join(", ")
                )));
            };
            let commands = match value {
                Value::Null => Vec::new(),
                Value::String(command) => vec![command.clone()],
                Value::List(items) => items
                    .iter()
                    .map(|item| match item {
                        Value::String(command) => Ok(command.clone()),
                        other => Err(invalid(format!(".{key} lists command lines, not a {}", other.type_name()))),
                    })
                    .collect::<Result<_, _>>()?,
                other => {
                    return Err(invalid(format!(".{key} must be a list of command lines, not a {}", other.type_name())))
                }
            };
            hooks.commands.push((event, commands));
        }
        Ok(hooks)
    }
}

/// What the scale monitor does, and how often (DESIGN §9).
#[derive(Debug, Clone, PartialEq)]
pub struct ScaleSettings {
    /// `monitoring.interval_seconds` (1 or more).
    pub interval_seconds: u64,
    /// `monitoring.confidence_threshold`: the confidence at which a
    /// migration is recommended.
    pub confidence_threshold: u64,
    /// `migration.auto_migrate`: migrate when recommended, rather than write
    /// `config/migration-notification.yaml`.
    pub auto_migrate: bool,
    /// `migration.migration_delay_seconds`: how long a recommendation must
    /// hold before an automatic migration.
    pub delay_seconds: u64,
    /// `migration.window_hours`: `[from, to]` local hours automatic
    /// migrations may start in; `None`: any time.
    pub window_hours: Option<(u32, u32)>,
    /// `migration.database_in_git`: in a git work tree, an automatic
    /// migration may reach the database tier (which keeps no YAML files).
    pub database_in_git: bool,
}

impl Default for ScaleSettings {
    fn default() -> Self {
        ScaleSettings {
            interval_seconds: 300,
            confidence_threshold: 80,
            auto_migrate: true,
            delay_seconds: 3600,
            window_hours: None,
            database_in_git: false,
        }
    }
}

/// `storage.database.type` as written. One this milestoned does not provide
/// is refused when the database backend is opened or migrated to, not when
/// the file is read: a project on files is not stopped by it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseSetting {
    Provided(DatabaseKind),
    Unsupported(String),
}

impl DatabaseSetting {
    fn parse(name: &str) -> DatabaseSetting {
        match name {
            "sqlite" => DatabaseSetting::Provided(DatabaseKind::Sqlite),
            "postgresql" | "postgres" => DatabaseSetting::Provided(DatabaseKind::Postgresql),
            other => DatabaseSetting::Unsupported(other.to_owned()),
        }
    }

    /// The engine, or why there is none.
    pub fn kind(&self) -> Result<DatabaseKind, String> {
        match self {
            DatabaseSetting::Provided(kind) => Ok(*kind),
            DatabaseSetting::Unsupported(name) => Err(format!(
                "storage-config.yaml's storage.database.type is `{name}`, which this milestoned {} does not provide (it has: sqlite, postgresql)",
                env!("CARGO_PKG_VERSION")
            )),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatcherMode {
    Notify,
    Poll,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            database: DatabaseSetting::Provided(DatabaseKind::Sqlite),
            database_url: None,
            events_in_database: true,
            thresholds: Thresholds {
                file_to_hybrid_milestones: 25,
                hybrid_to_database_milestones: 100,
                file_to_hybrid_users: 5,
                hybrid_to_database_users: 20,
            },
            log_level: None,
            idle_exit_seconds: 0,
            watcher: WatcherMode::Notify,
            scale: ScaleSettings::default(),
            immutable_logs: false,
            id_prefix: "ms".to_owned(),
            hooks: HookSettings::default(),
            access: crate::access::AccessList::default(),
            database_passwords: crate::database_password::PasswordSource::default(),
            password_in_tracked_file: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Write(#[from] crate::atomic::FileError),
}

impl StorageConfig {
    /// The project's settings: its `storage-config.yaml`, and the database
    /// URL from the environment or `.milestones/database-url` when one is
    /// there.
    pub fn load_project(layout: &ProjectLayout) -> Result<StorageConfig, ConfigError> {
        let mut config = StorageConfig::load(&layout.storage_config())?;
        let path = layout.database_url_file();
        let saved = match fs::read_to_string(&path) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => return Err(ConfigError::Read { path: path.display().to_string(), source }),
        };
        let given = std::env::var(DATABASE_URL_ENV).ok().filter(|u| !u.trim().is_empty());
        if let Some((text, from)) = given
            .map(|u| (u, DATABASE_URL_ENV.to_owned()))
            .or_else(|| saved.filter(|u| !u.trim().is_empty()).map(|u| (u, path.display().to_string())))
        {
            config.database_url =
                Some(DatabaseUrl::parse(&text).map_err(|e| ConfigError::Invalid(format!("{from}: {e}")))?);
        }
        // A password file inside the project would be one `git add` from
        // being shared.
        if let Some(file) = &config.database_passwords.file {
            let inside = layout.root().join(file);
            let root = layout.root().canonicalize().unwrap_or_else(|_| layout.root().to_path_buf());
            if file.is_relative() || inside.canonicalize().is_ok_and(|f| f.starts_with(&root)) {
                return Err(ConfigError::Invalid(format!(
                    "{}: storage.database.password_file must be a path outside the project (absolute), \
                     not {}",
                    layout.storage_config().display(),
                    file.display()
                )));
            }
        }
        Ok(config)
    }

    /// Reads the file; a missing file means the defaults.
    pub fn load(path: &Path) -> Result<StorageConfig, ConfigError> {
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(StorageConfig::default()),
            Err(source) => return Err(ConfigError::Read { path: path.display().to_string(), source }),
        };
        let name = path.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let value = crate::yaml::parse_value(&text, &name).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        let defaults = StorageConfig::default();
        let field = |path: &str| value.pointer(path).filter(|v| !v.is_null());
        let wrong = |path: &str, want: &str, got: &Value| {
            ConfigError::Invalid(format!("{name}: {path} must be {want}, not a {}", got.type_name()))
        };
        let text = |path: &str, default: String| match field(path) {
            None => Ok(default),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(wrong(path, "text", other)),
        };
        let flag = |path: &str, default: bool| match field(path) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(wrong(path, "true or false", other)),
        };
        let count = |path: &str, default: u64| match field(path) {
            None => Ok(default),
            Some(Value::Int(n)) if *n >= 0 => Ok(*n as u64),
            Some(other) => Err(wrong(path, "a whole number of at least 0", other)),
        };
        let t = defaults.thresholds;
        let thresholds = Thresholds {
            file_to_hybrid_milestones: count(
                "storage.thresholds.milestone_count.file_to_hybrid",
                t.file_to_hybrid_milestones,
            )?,
            hybrid_to_database_milestones: count(
                "storage.thresholds.milestone_count.hybrid_to_database",
                t.hybrid_to_database_milestones,
            )?,
            file_to_hybrid_users: count("storage.thresholds.concurrent_users.file_to_hybrid", t.file_to_hybrid_users)?,
            hybrid_to_database_users: count(
                "storage.thresholds.concurrent_users.hybrid_to_database",
                t.hybrid_to_database_users,
            )?,
        };
        let log_level = match field("storage.log_level") {
            None => None,
            Some(Value::String(s)) => {
                Some(parse_level(s).map_err(|e| ConfigError::Invalid(format!("{name}: storage.log_level: {e}")))?)
            }
            Some(other) => return Err(wrong("storage.log_level", "a level name", other)),
        };
        let database_url = match text("storage.database.url", String::new())?.trim() {
            "" => None,
            url => Some(
                DatabaseUrl::parse(url)
                    .map_err(|e| ConfigError::Invalid(format!("{name}: storage.database.url: {e}")))?,
            ),
        };
        let d = defaults.scale.clone();
        let window_hours = match field("storage.migration.window_hours") {
            None => None,
            Some(Value::List(hours)) if hours.is_empty() => None,
            Some(Value::List(hours)) => match hours.as_slice() {
                [Value::Int(from), Value::Int(to)] if (0..24).contains(from) && (0..=24).contains(to) => {
                    Some((*from as u32, *to as u32))
                }
                _ => {
                    return Err(ConfigError::Invalid(format!(
                    "{name}: storage.migration.window_hours must be [] or [FROM, TO] in hours (0–24), such as [2, 6]"
                )))
                }
            },
            Some(other) => return Err(wrong("storage.migration.window_hours", "a list", other)),
        };
        let scale = ScaleSettings {
            interval_seconds: count("storage.monitoring.interval_seconds", d.interval_seconds)?.max(1),
            confidence_threshold: count("storage.monitoring.confidence_threshold", d.confidence_threshold)?,
            auto_migrate: flag("storage.migration.auto_migrate", d.auto_migrate)?,
            delay_seconds: count("storage.migration.migration_delay_seconds", d.delay_seconds)?,
            window_hours,
            database_in_git: flag("storage.migration.database_in_git", d.database_in_git)?,
        };
        Ok(StorageConfig {
            password_in_tracked_file: database_url.as_ref().is_some_and(DatabaseUrl::has_password),
            scale,
            database: DatabaseSetting::parse(&text("storage.database.type", "sqlite".to_owned())?),
            database_url,
            events_in_database: flag("storage.events_in_database", defaults.events_in_database)?,
            immutable_logs: flag("storage.audit.immutable_logs", defaults.immutable_logs)?,
            hooks: HookSettings::parse(field("storage.hooks"), &name)?,
            access: crate::access::AccessList::parse(field("storage.access"))
                .map_err(|e| ConfigError::Invalid(format!("{name}: {e}")))?,
            database_passwords: crate::database_password::PasswordSource {
                env: Some(text("storage.database.password_env", String::new())?).filter(|v| !v.is_empty()),
                file: Some(text("storage.database.password_file", String::new())?)
                    .filter(|v| !v.is_empty())
                    .map(std::path::PathBuf::from),
            },
            id_prefix: {
                let prefix = text("storage.ids.prefix", defaults.id_prefix.clone())?;
                // Room is left for the suffix within an id's 128 characters.
                if prefix.len() > 64 || crate::document::validate_id(&format!("{prefix}-x"), "id").is_err() {
                    return Err(ConfigError::Invalid(format!(
                        "{name}: storage.ids.prefix: `{prefix}` cannot start an id: up to 64 letters, digits, \
                         `.`, `_` or `-`, not starting with `.`"
                    )));
                }
                prefix
            },
            thresholds,
            log_level,
            idle_exit_seconds: count("storage.idle_exit_seconds", defaults.idle_exit_seconds)?,
            watcher: match text("storage.watcher", "notify".to_owned())?.as_str() {
                "notify" => WatcherMode::Notify,
                "poll" => WatcherMode::Poll,
                other => {
                    return Err(ConfigError::Invalid(format!(
                        "{name}: storage.watcher must be notify or poll, not `{other}`"
                    )))
                }
            },
        })
    }
}

/// Saves the URL this machine reaches the database with, owner-only.
pub fn save_database_url(layout: &ProjectLayout, url: &DatabaseUrl) -> Result<(), ConfigError> {
    let path = layout.database_url_file();
    let dir = path.parent().unwrap_or(Path::new("."));
    Ok(crate::atomic::write_private(dir, "database-url", format!("{}\n", url.secret_text()).as_bytes())?)
}

/// Reads a log level name: error, warn, info, debug, trace (or off).
pub fn parse_level(name: &str) -> Result<tracing::level_filters::LevelFilter, String> {
    name.trim().parse().map_err(|_| format!("`{name}` is not a log level (error, warn, info, debug, trace or off)"))
}

/// Sets `storage.database.type` in the file, changing only that line so the
/// user's comments and layout survive.
pub fn set_database_type(path: &Path, kind: DatabaseKind) -> Result<(), ConfigError> {
    let kind = kind.name();
    let text =
        fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
    let mut in_database = None;
    let mut out = Vec::new();
    let mut done = false;
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        let key = line.trim_start();
        if let Some(block) = in_database {
            if !key.is_empty() && !key.starts_with('#') && indent <= block {
                in_database = None;
            } else if !done && key.starts_with("type:") {
                // Replace the value only: spacing and comment stay.
                let after = &line[indent + "type:".len()..];
                let start = after.len() - after.trim_start().len();
                let end = after.find(" #").or_else(|| after.find("\t#")).unwrap_or(after.len());
                let end = start.max(start + after[start..end].trim_end().len());
                out.push(format!("{}type:{}\"{kind}\"{}", &line[..indent], &after[..start], &after[end..]));
                done = true;
                continue;
            }
        }
        if key.starts_with("database:") {
            in_database = Some(indent);
        }
        out.push(line.to_owned());
    }
    let new = if done {
        let mut new = out.join("\n");
        if text.ends_with('\n') {
            new.push('\n');
        }
        new
    } else {
        // A file written by hand without the key: added, the rest kept.
        let missing = || ConfigError::Invalid(format!("{} has no storage.database.type to set", path.display()));
        let old = crate::yaml::parse_document(&text, &path.display().to_string()).map_err(|_| missing())?;
        let mut changed = old.clone();
        crate::document::set_path(&mut changed, "storage.database.type", Value::from(kind)).map_err(|_| missing())?;
        crate::yaml::edit_preserving(&text, &old, &changed).ok_or_else(missing)?
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    Ok(crate::atomic::write_atomically(dir, &name, new.as_bytes())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_defaults_and_sets_the_database_type_keeping_comments() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("storage-config.yaml");
        assert_eq!(StorageConfig::load(&path).unwrap(), StorageConfig::default());
        let text = "storage:\n  # mine\n  database:\n    type: \"oracle\"  # sqlite, postgresql\n    url: \"\"\n  other:\n    type: keep\n";
        fs::write(&path, text).unwrap();
        // Read without complaint; refused only where a database is used.
        let err = StorageConfig::load(&path).unwrap().database.kind().unwrap_err();
        assert!(err.contains("`oracle`, which this milestoned"), "{err}");
        set_database_type(&path, DatabaseKind::Postgresql).unwrap();
        let config = StorageConfig::load(&path).unwrap();
        assert_eq!(config.database, DatabaseSetting::Provided(DatabaseKind::Postgresql));
        assert_eq!(config.database_url, None, "an empty url is no url");
        set_database_type(&path, DatabaseKind::Sqlite).unwrap();
        let after = fs::read_to_string(&path).unwrap();
        assert_eq!(after, text.replace("\"oracle\"", "\"sqlite\""));
        assert_eq!(StorageConfig::load(&path).unwrap().database, DatabaseSetting::Provided(DatabaseKind::Sqlite));
        // A file written by hand without the key gets it, and keeps the rest.
        fs::write(&path, "# ours\nstorage:\n  database:\n    password_file: /etc/ms-pw  # outside\n").unwrap();
        set_database_type(&path, DatabaseKind::Postgresql).unwrap();
        let after = fs::read_to_string(&path).unwrap();
        assert!(after.starts_with("# ours\n") && after.contains("/etc/ms-pw  # outside"), "{after}");
        let config = StorageConfig::load(&path).unwrap();
        assert_eq!(config.database, DatabaseSetting::Provided(DatabaseKind::Postgresql));
        assert_eq!(config.database_passwords.file, Some(std::path::PathBuf::from("/etc/ms-pw")));
        fs::write(&path, "storage:\n  database: {url: \"postgresql://ada:hunter2@db:x/ms\"}\n").unwrap();
        let err = StorageConfig::load(&path).unwrap_err().to_string();
        assert!(err.contains("storage.database.url") && !err.contains("hunter2"), "{err}");
        fs::write(&path, "storage:\n  events_in_database: 3\n").unwrap();
        let err = StorageConfig::load(&path).unwrap_err().to_string();
        assert!(err.contains("events_in_database must be true or false"), "{err}");
        fs::write(&path, "storage:\n  ids: {prefix: web}\n").unwrap();
        assert_eq!(StorageConfig::load(&path).unwrap().id_prefix, "web");
        for bad in ["a/b", ".dot", "two words"] {
            fs::write(&path, format!("storage:\n  ids: {{prefix: \"{bad}\"}}\n")).unwrap();
            let err = StorageConfig::load(&path).unwrap_err().to_string();
            assert!(err.contains("storage.ids.prefix") && err.contains("cannot start an id"), "{err}");
        }
        fs::write(&path, "storage:\n  hooks:\n    completed: [\"./notify.sh\", \"echo done\"]\n    deleted: \"rm x\"\n    timeout_seconds: 5\n").unwrap();
        let hooks = StorageConfig::load(&path).unwrap().hooks;
        assert_eq!(hooks.for_event("completed"), ["./notify.sh", "echo done"]);
        assert_eq!(hooks.for_event("deleted"), ["rm x"]);
        assert!(hooks.for_event("created").is_empty());
        assert_eq!(hooks.timeout, std::time::Duration::from_secs(5));
        fs::write(&path, "storage:\n  hooks: {finished: [x]}\n").unwrap();
        let err = StorageConfig::load(&path).unwrap_err().to_string();
        assert!(err.contains("storage.hooks.finished is not an event; hooks run on created, status_changed"), "{err}");
        fs::write(&path, "storage:\n  log_level: loud\n").unwrap();
        let err = StorageConfig::load(&path).unwrap_err().to_string();
        assert!(err.contains("`loud` is not a log level"), "{err}");
        fs::write(&path, "storage:\n  log_level: debug\n  thresholds: {milestone_count: {file_to_hybrid: 40}}\n")
            .unwrap();
        let config = StorageConfig::load(&path).unwrap();
        assert_eq!(config.log_level, Some(tracing::level_filters::LevelFilter::DEBUG));
        assert_eq!(config.thresholds.file_to_hybrid_milestones, 40);
        assert_eq!(config.thresholds.hybrid_to_database_milestones, 100);
    }
}
