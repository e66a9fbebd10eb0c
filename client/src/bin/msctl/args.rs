//! The command line of DESIGN §8.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "msctl", version, about = "Track a project's milestones through its milestoned daemon")]
pub struct Cli {
    /// The project root (default: $MILESTONES_ROOT, else the nearest folder upwards with .milestones/).
    #[arg(long, global = true, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// The daemon's socket (default: derived from the root).
    #[arg(long, global = true, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Exact JSON on stdout (and errors as JSON on stderr), for scripts.
    #[arg(long, global = true)]
    pub json: bool,
    /// Do not start the daemon when none is running (also MSCTL_NO_AUTOSTART=1).
    #[arg(long, global = true)]
    pub no_autostart: bool,
    /// Seconds to wait for the daemon to answer before giving up [default: 30; `migrate`,
    /// `migrate rollback` and `upgrade` wait for their answer as long as the work takes].
    #[arg(long, global = true, value_name = "SECONDS", env = "MSCTL_TIMEOUT", value_parser = parse_timeout)]
    pub timeout: Option<Duration>,
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// How long to wait for the daemon's handshake.
    pub fn connect_timeout(&self) -> Duration {
        self.timeout.unwrap_or(DEFAULT_TIMEOUT)
    }

    /// How long to wait for each reply: work that takes as long as the
    /// project is large waits for ever unless `--timeout` says otherwise.
    pub fn reply_timeout(&self) -> Option<Duration> {
        let long_work = match &self.command {
            Command::Migrate { target, .. } => !matches!(target.as_str(), "history" | "status"),
            Command::Upgrade { .. } => true,
            _ => false,
        };
        self.timeout.or((!long_work).then_some(DEFAULT_TIMEOUT))
    }
}

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create .milestones/ here (or in --root) and start its daemon.
    Init {
        /// The storage backend to start a new project on (default: file).
        #[arg(long, value_parser = ["file", "hybrid", "database"])]
        backend: Option<String>,
        /// The engine of the database backend.
        #[arg(long, value_parser = ["sqlite", "postgresql"], requires = "backend")]
        database: Option<String>,
        /// The PostgreSQL server to join or fill (postgresql://USER:PASSWORD@HOST:PORT/DB, or
        /// postgresql:///DB?host=SOCKET_DIR); saved, owner-only, in .milestones/database-url.
        #[arg(long, value_name = "URL")]
        url: Option<String>,
        /// In a git work tree, register the merge driver for milestone files without asking
        /// (as `msctl git setup` does); on a terminal, init asks.
        #[arg(long)]
        git_setup: bool,
    },
    /// Create a milestone; prints its id.
    Create {
        #[arg(long)]
        title: Option<String>,
        /// Default: a new id, the project's prefix and a short random suffix (ms-k3f9x).
        #[arg(long)]
        id: Option<String>,
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        priority: Option<String>,
        #[arg(long)]
        category: Option<String>,
        #[arg(long)]
        description: Option<String>,
        /// A milestone this one requires (repeatable).
        #[arg(long, value_name = "ID")]
        requires: Vec<String>,
        /// A whole YAML document (`-` for standard input).
        #[arg(long, value_name = "FILE", conflicts_with_all = ["title", "id", "status", "priority", "category", "description", "requires"])]
        from_file: Option<PathBuf>,
    },
    /// Print one milestone as YAML.
    Get { id: String },
    /// List milestones that are not archived, newest first.
    List {
        #[command(flatten)]
        selection: Selection,
        /// FIELD ascending or -FIELD descending; several separated by commas.
        #[arg(long, value_name = "FIELD", allow_hyphen_values = true)]
        sort: Option<String>,
        #[arg(long, value_name = "N")]
        limit: Option<u64>,
        #[arg(long, value_name = "N", default_value_t = 0)]
        offset: u64,
    },
    /// Change fields (`--set progress.percentage=40`) or replace the document.
    Update {
        id: String,
        /// PATH=VALUE; VALUE is read as YAML (40 is a number, true a boolean).
        #[arg(long, value_name = "PATH=VALUE")]
        set: Vec<String>,
        /// A whole YAML document replacing the current one (`-` for standard input).
        #[arg(long, value_name = "FILE", conflicts_with = "set")]
        from_file: Option<PathBuf>,
    },
    /// Archive a milestone (or remove it for good with --purge).
    Delete {
        id: String,
        #[arg(long)]
        purge: bool,
    },
    /// Mark a milestone completed.
    Complete { id: String },
    /// Tasks inside a milestone.
    #[command(subcommand)]
    Task(TaskCommand),
    /// The audit trail (logs/storage-events.jsonl).
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Find milestones whose id, title, description, category or task titles contain all the words.
    Search {
        #[arg(required = true)]
        words: Vec<String>,
        #[arg(long, value_name = "N")]
        limit: Option<u64>,
    },
    /// The dependency graph: critical path, cycles, missing milestones; or one milestone's neighbourhood.
    Deps {
        id: Option<String>,
        /// Exit 5 when there are cycles or missing milestones.
        #[arg(long)]
        check: bool,
        /// `text` (default), or the graph as a picture: `dot` for Graphviz, `mermaid` for a Markdown
        /// page (critical path in bold red, status as colour, missing milestones dashed).
        #[arg(long, value_parser = ["text", "dot", "mermaid"], default_value = "text")]
        format: String,
    },
    /// Write milestones out, streamed in id order: a YAML or JSON list of whole documents, or CSV
    /// of the core fields (id, title, description, status, priority, category, created_at,
    /// updated_at, completed_at).
    Export {
        #[arg(long, value_parser = ["yaml", "json", "csv"], default_value = "yaml")]
        format: String,
        /// Write to this file (whole or not at all) instead of standard output.
        #[arg(long, value_name = "PATH")]
        out: Option<PathBuf>,
        #[command(flatten)]
        selection: Selection,
    },
    /// Read milestones in: one document or a list, YAML or JSON, or CSV with a header row (by
    /// extension; `-` for standard input). Every record is checked first; if any is refused,
    /// each is named with its position and nothing is imported.
    Import {
        file: PathBuf,
        /// Import the records that pass and name the others (exit 5 when any was left out).
        #[arg(long)]
        partial: bool,
        /// A record whose id exists replaces that milestone (otherwise it is refused).
        #[arg(long)]
        replace: bool,
    },
    /// A terminal board: one column per status, most urgent first (--json: the columns).
    Board,
    /// What can be worked on now: open milestones whose requirements are all completed, most
    /// urgent first (priority, then the length of the chain waiting on each).
    Ready {
        /// Tasks across open milestones instead: those whose depends_on tasks are done.
        #[arg(long)]
        tasks: bool,
        #[command(flatten)]
        page: WorkPageArgs,
    },
    /// What waits: open milestones (or, with --tasks, tasks) and what each waits on.
    Blocked {
        #[arg(long)]
        tasks: bool,
        #[command(flatten)]
        page: WorkPageArgs,
    },
    /// Check milestones against the schema rules and their dependencies; exits 5 on errors.
    Validate {
        id: Option<String>,
        #[arg(long)]
        all: bool,
    },
    /// Add the enhanced sections, with the template's defaults, where missing.
    Upgrade {
        id: Option<String>,
        #[arg(long)]
        all: bool,
    },
    /// Analytics: counts, completion times, dependency figures, the last 30 days.
    Stats,
    /// The active storage backend.
    Backend,
    /// Move every milestone to another backend: back up, copy, verify, switch (`history`, `status`, `rollback`: see below).
    Migrate {
        /// The backend to move to; `history`: past migrations; `status`: the one under way; `rollback`: back to
        /// the backend and the backup of the last one.
        #[arg(value_parser = ["file", "hybrid", "database", "history", "status", "rollback"])]
        target: String,
        /// Print the plan and an estimate; move nothing.
        #[arg(long)]
        dry_run: bool,
        /// With `rollback`: return to the backup even though milestones changed since (they are backed up first).
        #[arg(long)]
        discard_changes: bool,
        /// The engine of the database backend (default: sqlite).
        #[arg(long, value_parser = ["sqlite", "postgresql"])]
        database: Option<String>,
        /// The PostgreSQL server (postgresql://USER:PASSWORD@HOST:PORT/DB, or postgresql:///DB?host=SOCKET_DIR);
        /// saved, owner-only, in .milestones/database-url. Without it, the one the daemon knows
        /// (MILESTONED_DATABASE_URL in its environment, or the saved one).
        #[arg(long, value_name = "URL")]
        url: Option<String>,
    },
    /// Print changes as they happen (requests, outside edits, migrations) until interrupted.
    Watch {
        /// Only this milestone (repeatable).
        #[arg(long, value_name = "ID")]
        id: Vec<String>,
        /// Only milestones that end up in this status (repeatable).
        #[arg(long, value_name = "STATUS")]
        status: Vec<String>,
        /// Only these kinds of change (repeatable).
        #[arg(long, value_name = "KIND", value_parser = ["created", "updated", "moved", "deleted", "invalid", "migration_started", "migration_finished"])]
        kind: Vec<String>,
    },
    /// Backend and daemon health, the problems found, and what to do about them; exits 5 on problems.
    Health,
    /// The scale monitor: current and optimal backend, confidence, metrics, thresholds, recent decisions.
    Scale,
    /// The daemon itself: start, stop, status, restart, logs.
    #[command(subcommand)]
    Daemon(DaemonCommand),
    /// Check that the daemon answers.
    Ping,
    /// A Model Context Protocol server on standard input and output, for coding agents: the
    /// milestone operations as tools (list, get, create, update, task_add, task_start, task_done,
    /// ready, blocked, search, stats). Register it in an agent as the command `msctl mcp`.
    Mcp,
    /// Completions for a shell: `source <(msctl completions bash)`, or save them where the shell
    /// looks (zsh: a `_msctl` file on $fpath; fish: ~/.config/fish/completions/msctl.fish).
    Completions {
        #[arg(value_parser = ["bash", "zsh", "fish"])]
        shell: String,
    },
    /// The manual page, in roff: `msctl man | man -l -`, or save it as msctl.1 in a man folder.
    Man,
    /// Working in a team with git.
    #[command(subcommand)]
    Git(GitCommand),
    /// Git's merge driver for milestone files: merges OURS, BASE and THEIRS field by field into
    /// OURS; exits 1 and leaves conflict markers around the fields changed two ways. Git runs it
    /// as `msctl merge-driver %O %A %B %P` once `msctl git setup` registered it; no daemon needed.
    #[command(name = "merge-driver")]
    MergeDriver {
        /// The common ancestor (%O; empty when both sides added the file).
        base: PathBuf,
        /// The current side (%A), overwritten with the result.
        ours: PathBuf,
        /// The other side (%B).
        theirs: PathBuf,
        /// The file's path in the repository (%P), for messages.
        path: Option<String>,
    },
    /// msctl's version, and the daemon's when one is running.
    Version,
}

#[derive(Debug, Subcommand)]
pub enum DaemonCommand {
    /// Start the project's daemon (nothing happens if one is running).
    Start,
    /// Stop it gracefully (requests in flight finish first).
    Stop,
    /// Pid, uptime, versions, backend, socket and settings.
    Status,
    /// Stop, then start (for example after installing a new version).
    Restart,
    /// The end of .milestones/logs/milestoned.log.
    Logs {
        #[arg(long, short = 'n', value_name = "N", default_value_t = 50)]
        lines: usize,
    },
}

/// How much of `ready` and `blocked` to show: the most urgent first.
#[derive(Debug, clap::Args)]
pub struct WorkPageArgs {
    /// Show at most N items.
    #[arg(long, value_name = "N", default_value_t = 50, conflicts_with = "all")]
    pub limit: u64,
    /// Skip the N most urgent items.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub offset: u64,
    /// Show every item.
    #[arg(long)]
    pub all: bool,
}

/// Which milestones `list` and `export` take.
#[derive(Debug, clap::Args)]
pub struct Selection {
    #[arg(long)]
    pub status: Option<String>,
    #[arg(long)]
    pub priority: Option<String>,
    #[arg(long)]
    pub category: Option<String>,
    /// Any field: PATH=VALUE, PATH!=VALUE, PATH>VALUE, PATH>=VALUE, PATH<VALUE, PATH<=VALUE, PATH~TEXT (repeatable).
    #[arg(long = "where", value_name = "FILTER")]
    pub filter: Vec<String>,
    /// Include archived milestones.
    #[arg(long)]
    pub all: bool,
}

impl Selection {
    pub fn filters(self) -> Result<Vec<milestones_client::protocol::Filter>, crate::Failure> {
        crate::input::selection(self.status, self.priority, self.category, &self.filter)
    }
}

#[derive(Debug, Subcommand)]
pub enum GitCommand {
    /// Register the merge driver for milestone files in this clone: .milestones/.gitattributes
    /// (commit it) and `git config merge.milestones.*` (each clone runs this once).
    Setup,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the log's hash chain (storage.audit.immutable_logs): every entry edited, removed,
    /// reordered or added by another program is named; exit 5 when any is.
    Verify,
}

#[derive(Debug, Subcommand)]
pub enum TaskCommand {
    /// Append a task to a milestone.
    Add {
        milestone: String,
        #[arg(long)]
        title: String,
        /// Default: the next free task-N.
        #[arg(long)]
        id: Option<String>,
        /// A task that must be done first (repeatable).
        #[arg(long, value_name = "TASK")]
        depends_on: Vec<String>,
    },
    /// Mark a task in progress.
    Start { milestone: String, task: String },
    /// Mark a task completed.
    Done { milestone: String, task: String },
}

fn parse_timeout(text: &str) -> Result<Duration, String> {
    match text.parse::<f64>() {
        Ok(seconds) if seconds > 0.0 && seconds.is_finite() => Ok(Duration::from_secs_f64(seconds)),
        _ => Err(format!("`{text}` is not a number of seconds above zero")),
    }
}
