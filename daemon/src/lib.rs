//! The milestone daemon as a library: what `milestoned` runs, and what the
//! storage conformance suite and the multi-writer tests drive in-process.
//!
//! Layers, each importing only from those below it (ARCHITECTURE.md draws
//! them):
//!
//! 0. the `milestones-document` crate: `document`, `document_limits`,
//!    `yaml` and `merge` (the merge driver's), re-exported under those names;
//! 1. leaves: `atomic`, `audit_chain`, `layout`, `database_url`, `search`, `query`,
//!    `graph`, `analytics`, `rules`, `work`, `config`, `event_log`, `change_feed`,
//!    `peer`, `injected`: the document rules and plain helpers, each
//!    with its own error type;
//! 2. `storage`: the seam: the `Storage` trait, `BackendSpec` (the one
//!    factory) and the backends behind it;
//! 3. `migration`: moving every milestone between backends through the
//!    factory;
//! 4. `service`: what each request does, one file per request family;
//! 5. `watcher`, `server`, `connection`, `connection_slots`, `listener`, `scale::monitor`: what
//!    feeds the service (outside edits, clients, the scale monitor's cycles;
//!    `scale::decision` and `request_metrics` are leaves), and `hooks`,
//!    which listens to it;
//! 6. `lifecycle` (with `detach`, `instance`, `logging`, `signals`): start-up
//!    and shutdown.

pub mod access;
pub mod analytics;
pub mod atomic;
pub mod audit_chain;
pub mod change_feed;
pub mod config;
pub mod config_follower;
pub mod connection;
pub mod connection_slots;
pub mod database_password;
pub mod database_tls;
pub mod database_url;
pub mod detach;
pub mod event_log;
pub mod freed_memory;
pub mod graph;
pub mod hooks;
pub mod injected;
pub mod instance;
pub mod layout;
pub mod lifecycle;
pub mod listener;
pub mod logging;
pub mod migration;
pub mod peer;
pub mod query;
pub mod request_metrics;
pub mod rules;
pub mod scale;
pub mod search;
pub mod server;
pub mod service;
pub mod signals;
pub mod stoppable;
pub mod storage;
pub mod watcher;
pub mod work;

/// The document rules and its YAML, in their own crate so that `msctl`'s
/// merge driver shares them; named here as the daemon always has.
pub use milestones_document::{document, document_limits, merge, yaml};
