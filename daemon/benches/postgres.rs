//! PostgreSQL at scale and with several daemons: a million milestones
//! loaded through the store's bulk import, then the real daemon (release
//! build) measured on a filtered page and a count; the latency LISTEN/NOTIFY
//! adds between two daemons on two project roots; and writes per second
//! with two daemons and eight clients each. The server is one the benchmark
//! starts (`initdb`, fsync on, Unix socket). Figures, not assertions.
//!
//!     cargo build --release --workspace && cargo bench -p milestoned --bench postgres

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use milestoned::config::StorageConfig;
use milestoned::database_url::DatabaseUrl;
use milestoned::layout::ProjectLayout;
use milestoned::storage::{BackendKind, BackendSpec};
use milestones_e2e::bench::{machine, percentiles, write_section};
use milestones_e2e::corpus::{fmt_int, milestone_id, milestone_yaml, Rng};
use milestones_e2e::postgres::PgServer;
use milestones_e2e::protocol::{
    Assignment, Change, DatabaseKind, EventFilter, EventKind, Filter, FilterOp, Query, Request, Response,
    ServerMessage, Value,
};
use milestones_e2e::{Daemon, Project};

const COMMAND: &str = "cargo build --release --workspace && cargo bench -p milestoned --bench postgres";
/// The scale; `PG_BENCH_MILESTONES` may set a smaller one for a quick look
/// (the figures recorded are at a million).
fn scale() -> usize {
    std::env::var("PG_BENCH_MILESTONES").ok().and_then(|n| n.parse().ok()).unwrap_or(1_000_000)
}
const BATCH: usize = 2_000;
const CLIENTS_PER_DAEMON: usize = 8;
const WRITE_SECONDS: u64 = 10;
const LATENCY_SAMPLES: usize = 500;

fn main() {
    let started = Instant::now();
    let server = PgServer::start(true);
    let db = server.database();
    let url = db.url();
    let mut body = String::new();

    let load = load(&url, scale());
    let _ = writeln!(
        body,
        "Loading {} milestones through the store's bulk import (batches of {}, one transaction each): {:.0} s, \
         {:.0} milestones/s; database size {}.\n",
        fmt_int(scale()),
        fmt_int(BATCH),
        load.as_secs_f64(),
        scale() as f64 / load.as_secs_f64(),
        db.psql("SELECT pg_size_pretty(pg_database_size(current_database()))"),
    );
    db.psql("VACUUM ANALYZE milestones");

    let a = Project::on_postgresql(&url);
    let b = Project::on_postgresql(&url);
    let (daemon_a, daemon_b) = (a.start(&[]), b.start(&[]));
    body.push_str(&reads(&daemon_a));
    body.push_str(&cross_daemon_latency(&daemon_a, &daemon_b));
    body.push_str(&writes_per_second(&[&daemon_a, &daemon_b]));
    println!("{body}");
    let section = format!(
        "## PostgreSQL: a million milestones, two daemons\n\n\
         Machine: {} Release build. Run time: {:.1} min. Server: PostgreSQL {}, started by the benchmark \
         (`initdb`, default settings, fsync on), reached by its Unix socket; the daemons are the release \
         `milestoned` on two project roots sharing the database. Figures beside SQLite's at 10,000 and 100,000 \
         milestones are in [Storage backends](#storage-backends).\n\n\
         Command: `{COMMAND}`\n\n{body}",
        machine(),
        started.elapsed().as_secs_f64() / 60.0,
        db.psql("SHOW server_version"),
    );
    write_section("postgresql", &section);
}

/// Fills the database with `n` generated milestones; returns the time taken.
fn load(url: &str, n: usize) -> Duration {
    let dir = tempfile::tempdir().expect("temp dir");
    let layout = ProjectLayout::new(dir.path());
    let config =
        StorageConfig { database_url: Some(DatabaseUrl::parse(url).expect("url")), ..StorageConfig::default() };
    let store = BackendSpec::new(BackendKind::Database(DatabaseKind::Postgresql), &config)
        .open(&layout)
        .expect("open the database");
    let mut rng = Rng::new(0x6d696c65 ^ n as u64);
    let t = Instant::now();
    let mut importing = Duration::ZERO;
    let mut batch = Vec::with_capacity(BATCH);
    for i in 1..=n {
        let yaml = milestone_yaml(i, n, 0..=2, &mut rng, false);
        batch.push(Arc::new(milestoned::yaml::parse_document(&yaml, "bench").expect("generated YAML parses")));
        if batch.len() == BATCH || i == n {
            let i = Instant::now();
            store.import(&batch).expect("import");
            importing += i.elapsed();
            batch.clear();
        }
        if i % 10_000 == 0 {
            println!(
                "loaded {} in {:.0} s ({:.0} s importing)",
                fmt_int(i),
                t.elapsed().as_secs_f64(),
                importing.as_secs_f64()
            );
        }
    }
    t.elapsed()
}

/// Samples `request` on `daemon`: 3 warm-up requests, then `count`.
fn sample(daemon: &Daemon, request: &Request, count: usize) -> (Vec<Duration>, Option<u64>) {
    let mut c = daemon.client();
    let mut total = None;
    let mut samples = Vec::with_capacity(count);
    for i in 0..count + 3 {
        let t = Instant::now();
        let response = c.request(request.clone()).expect("request");
        let took = t.elapsed();
        total = match response {
            Response::Page(page) => Some(page.total),
            Response::Backend(info) => Some(info.milestones),
            _ => total,
        };
        if i >= 3 {
            samples.push(took);
        }
    }
    (samples, total)
}

fn reads(daemon: &Daemon) -> String {
    let list = |filters: Vec<Filter>| Request::List { query: Query { filters, limit: Some(50), ..Default::default() } };
    let eq = |path: &str, value: &str| Filter { path: path.into(), op: FilterOp::Eq, value: Value::from(value) };
    let cases = [
        ("filtered `list` (status = in_progress), page of 50", list(vec![eq("status", "in_progress")])),
        (
            "filtered `list` (status = blocked, priority = critical), page of 50",
            list(vec![eq("status", "blocked"), eq("priority", "critical")]),
        ),
        ("`list`, no filter (newest first), page of 50", list(Vec::new())),
        (
            "`search` \"kubernetes\", page of 50",
            Request::List { query: Query { text: Some("kubernetes".into()), limit: Some(50), ..Default::default() } },
        ),
        ("count (`msctl backend`: `SELECT COUNT(*)`)", Request::Backend),
        ("`get` of one id", Request::Get { id: milestone_id(scale() / 2) }),
    ];
    let mut out = format!(
        "### Reads at {} milestones (one client, one request at a time)\n\n| operation | matches | latency |\n| --- | --- | --- |\n",
        fmt_int(scale())
    );
    for (label, request) in cases {
        let (samples, total) = sample(daemon, &request, 100);
        let matches = match (&request, total) {
            (Request::Get { .. }, _) | (_, None) => "—".to_owned(),
            (_, Some(t)) => fmt_int(t as usize),
        };
        let _ = writeln!(out, "| {label} | {matches} | {} |", percentiles(&samples));
    }
    out.push('\n');
    out
}

/// A's update → B's subscriber, one at a time.
fn cross_daemon_latency(a: &Daemon, b: &Daemon) -> String {
    let mut watcher = b.client();
    watcher
        .subscribe(EventFilter { kinds: vec![EventKind::Updated], ..EventFilter::default() })
        .expect("subscribe on B");
    let mut writer = a.client();
    let (mut end_to_end, mut own) = (Vec::new(), Vec::new());
    let mut rng = Rng::new(7);
    for i in 0..LATENCY_SAMPLES + 5 {
        let id = milestone_id(1 + rng.below(scale() as u64) as usize);
        let change = Change::Set(vec![Assignment { path: "bench.seq".into(), value: Value::Int(i as i64) }]);
        let t = Instant::now();
        writer.request(Request::Update { id: id.clone(), change }).expect("update on A");
        let replied = t.elapsed();
        loop {
            match watcher.next_event().expect("event on B") {
                ServerMessage::Event(event) if event.id.as_deref() == Some(&id) => break,
                _ => {}
            }
        }
        if i >= 5 {
            end_to_end.push(t.elapsed());
            own.push(replied);
        }
    }
    format!(
        "### LISTEN/NOTIFY between two daemons\n\n{LATENCY_SAMPLES} updates through daemon A, one at a time, each \
         waited for on a subscriber of daemon B (another project root on the same database).\n\n\
         | what | latency |\n| --- | --- |\n\
         | A's `update` request, sent to answered | {} |\n\
         | A's `update` sent → B's subscriber has the event | {} |\n\n",
        percentiles(&own),
        percentiles(&end_to_end),
    )
}

/// Two daemons, `CLIENTS_PER_DAEMON` clients each, updating random
/// milestones for `WRITE_SECONDS`.
fn writes_per_second(daemons: &[&Daemon]) -> String {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let latencies = std::thread::scope(|scope| {
        let mut handles = Vec::new();
        for (d, daemon) in daemons.iter().enumerate() {
            for c in 0..CLIENTS_PER_DAEMON {
                let (stop, done, failed) = (stop.clone(), done.clone(), failed.clone());
                let mut client = daemon.client();
                handles.push(scope.spawn(move || {
                    let mut rng = Rng::new((d * 100 + c) as u64);
                    let mut latencies = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let id = milestone_id(1 + rng.below(scale() as u64) as usize);
                        let change =
                            Change::Set(vec![Assignment { path: format!("load.d{d}c{c}"), value: Value::Int(1) }]);
                        let t = Instant::now();
                        match client.request(Request::Update { id, change }) {
                            Ok(Response::Document(_)) => {
                                latencies.push(t.elapsed());
                                done.fetch_add(1, Ordering::Relaxed);
                            }
                            _ => {
                                failed.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    latencies
                }));
            }
        }
        std::thread::sleep(Duration::from_secs(WRITE_SECONDS));
        stop.store(true, Ordering::Relaxed);
        handles.into_iter().flat_map(|h| h.join().expect("client thread")).collect::<Vec<_>>()
    });
    let writes = done.load(Ordering::Relaxed);
    format!(
        "### Writes with two daemons\n\n{} daemons × {CLIENTS_PER_DAEMON} clients, each `update` (one field) of a random \
         milestone among {} for {WRITE_SECONDS} s, durable (each acknowledged write is committed).\n\n\
         | writes | writes per second | failed | latency per write |\n| --- | --- | --- | --- |\n\
         | {} | {:.0} | {} | {} |\n\n",
        daemons.len(),
        fmt_int(scale()),
        fmt_int(writes as usize),
        writes as f64 / WRITE_SECONDS as f64,
        failed.load(Ordering::Relaxed),
        percentiles(&latencies),
    )
}
