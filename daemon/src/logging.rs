//! The daemon's log: `tracing` to stderr (the log file once detached), at a
//! level that `--log-level`, then `MILESTONED_LOG`, then `storage.log_level`
//! in `storage-config.yaml` decide, and that SIGHUP can change without a
//! restart.

use std::sync::Mutex;

use tracing::level_filters::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, reload, Registry};

/// Where the level came from decides whether a reload may change it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Flag,
    Environment,
    Config,
    Default,
}

pub struct Logging {
    handle: reload::Handle<LevelFilter, Registry>,
    state: Mutex<(LevelFilter, Source)>,
}

impl Logging {
    /// Installs the subscriber. `flag` is `--log-level`; an invalid
    /// `MILESTONED_LOG` is an error, not a silent default.
    pub fn init(flag: Option<LevelFilter>) -> Result<Logging, String> {
        let env = match std::env::var("MILESTONED_LOG") {
            Ok(v) if !v.trim().is_empty() => {
                Some(crate::config::parse_level(&v).map_err(|e| format!("MILESTONED_LOG: {e}"))?)
            }
            _ => None,
        };
        let (level, source) = match (flag, env) {
            (Some(level), _) => (level, Source::Flag),
            (None, Some(level)) => (level, Source::Environment),
            (None, None) => (LevelFilter::INFO, Source::Default),
        };
        let (filter, handle) = reload::Layer::new(level);
        tracing_subscriber::registry()
            .with(filter)
            .with(
                fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_target(false)
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
            )
            .init();
        Ok(Logging { handle, state: Mutex::new((level, source)) })
    }

    /// Applies the level from the configuration, unless the command line
    /// or the environment chose one. Returns the level in force.
    pub fn apply_config(&self, configured: Option<LevelFilter>) -> LevelFilter {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if matches!(state.1, Source::Flag | Source::Environment) {
            return state.0;
        }
        let (level, source) = match configured {
            Some(level) => (level, Source::Config),
            None => (LevelFilter::INFO, Source::Default),
        };
        if level != state.0 {
            if let Err(e) = self.handle.reload(level) {
                tracing::warn!(error = %e, "cannot change the log level");
                return state.0;
            }
            tracing::info!(level = %level, "log level changed");
        }
        *state = (level, source);
        level
    }

    pub fn level(&self) -> LevelFilter {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).0
    }
}
