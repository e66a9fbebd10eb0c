//! Migration benchmarks: a generated project of 10,000 and of 100,000
//! milestones is migrated around all twelve directions between file,
//! hybrid, database on SQLite and database on PostgreSQL (a server the
//! benchmark starts, fsync on), by one daemon, while four clients keep
//! updating milestones. For each migration: the wall time at the client,
//! the longest a write waited, and the stall the daemon reports (writes
//! held for the last catch-up and the switch). Prints a Markdown table and
//! writes it into BENCHMARKS.md.
//!
//!     cargo build --release --workspace && cargo bench -p milestones-e2e --bench migration
//!
//! `MIGRATION_BENCH_SCALES=10000` runs one scale; `MIGRATION_BENCH_CHAIN=file,database,file`
//! runs only those migrations, `MIGRATION_BENCH_WRITERS=0` without load
//! (none of them writes BENCHMARKS.md).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use milestones_e2e::bench::{fmt_duration, machine, write_section};
use milestones_e2e::corpus::{fmt_int, generate, milestone_id};
use milestones_e2e::postgres::PgServer;
use milestones_e2e::protocol::{Assignment, BackendTarget, Change, DatabaseKind, Request, Response, Value};
use milestones_e2e::{Daemon, Project};

const COMMAND: &str = "cargo build --release --workspace && cargo bench -p milestones-e2e --bench migration";
const SCALES: [usize; 2] = [10_000, 100_000];
/// Every ordered pair of backends once, each migration starting where the
/// one before ended.
const CHAIN: [&str; 13] = [
    "file",
    "hybrid",
    "database",
    "postgresql",
    "file",
    "database",
    "hybrid",
    "postgresql",
    "database",
    "file",
    "postgresql",
    "hybrid",
    "file",
];
const WRITERS: usize = 4;

/// One migration under load.
struct Measured {
    from: String,
    to: String,
    took: Result<Duration, String>,
    /// From the answer until the old backend's leftovers were removed (the
    /// clean-up runs after the answer, while writes go on).
    clean_up: Duration,
    /// The longest any write waited while the migration ran.
    longest_write: Duration,
    writes: usize,
    /// Writes held for the last catch-up and the switch, as the daemon
    /// measured it.
    stall_ms: Option<u64>,
}

fn main() {
    let scales: Vec<usize> = match std::env::var("MIGRATION_BENCH_SCALES") {
        Ok(list) => list.split(',').map(|n| n.trim().parse().expect("MIGRATION_BENCH_SCALES: numbers")).collect(),
        Err(_) => SCALES.to_vec(),
    };
    let chain: Vec<String> = match std::env::var("MIGRATION_BENCH_CHAIN") {
        Ok(list) => list.split(',').map(|b| b.trim().to_owned()).collect(),
        Err(_) => CHAIN.iter().map(|b| b.to_string()).collect(),
    };
    let writers = std::env::var("MIGRATION_BENCH_WRITERS").map_or(WRITERS, |w| w.parse().expect("a number"));
    let partial = scales != SCALES || chain.len() != CHAIN.len() || writers != WRITERS;
    let server = PgServer::start(true);
    let mut results = Vec::new();
    for &n in &scales {
        let project = Project::new();
        generate(&project, n);
        if chain[0] != "file" {
            panic!("the chain starts on the file backend, where the project is generated");
        }
        // `MIGRATION_BENCH_STEPS=1` prints the daemon's log of each step.
        let steps = std::env::var_os("MIGRATION_BENCH_STEPS").is_some();
        let daemon = project.start(if steps { &["--log-level", "info"][..] } else { &[][..] });
        let mut measured = Vec::new();
        for pair in chain.windows(2) {
            let m = migrate_under_load(&daemon, n, &pair[0], &pair[1], &server.database().url(), writers);
            println!(
                "{} milestones, {} → {}: {} then clean-up {} (longest write {}, {} writes, stall {} ms)",
                fmt_int(n),
                m.from,
                m.to,
                m.took.as_ref().map_or_else(|e| format!("failed: {e}"), |d| fmt_duration(*d)),
                fmt_duration(m.clean_up),
                fmt_duration(m.longest_write),
                m.writes,
                m.stall_ms.map_or("?".to_owned(), |s| s.to_string()),
            );
            let failed = m.took.is_err();
            measured.push(m);
            if failed {
                break;
            }
        }
        let (_, log) = daemon.stop();
        if steps {
            log.lines().filter(|l| l.contains("migration") || l.contains("caught up")).for_each(|l| println!("{l}"));
        }
        results.push((n, measured));
    }
    let table = table(&results);
    println!("{table}");
    if !partial {
        write_section(
            "migration",
            &format!("## Migrations under load\n\nCommand: `{COMMAND}`\n\n{}\n\n{table}", about()),
        );
    }
}

fn about() -> String {
    format!(
        "{} A generated project (as for the backends benchmark) is migrated by one daemon around all twelve \
         directions, each migration starting where the one before ended, while {WRITERS} clients update \
         milestones back to back (one request at a time each). Time is the client's wall time for the \
         `migrate` request, which is answered at the switch; *clean-up* is how long the old backend's \
         leftovers took to go after that (writes flow meanwhile; the next migration waits for it); *longest write* is the longest any update waited while the migration ran; *stall* \
         is how long the daemon held writes for the last catch-up, its check and the switch. PostgreSQL is a \
         local server started by the benchmark (fsync on), reached by its Unix socket; each migration into it \
         copies into an empty database.",
        machine()
    )
}

fn table(results: &[(usize, Vec<Measured>)]) -> String {
    let mut out = String::from("| migration |");
    let mut rule = String::from("| --- |");
    for (n, _) in results {
        out.push_str(&format!(" {} milestones: time · clean-up · longest write · stall |", fmt_int(*n)));
        rule.push_str(" --- |");
    }
    out.push('\n');
    out.push_str(&rule);
    out.push('\n');
    let rows = results.iter().map(|(_, m)| m.len()).max().unwrap_or(0);
    for row in 0..rows {
        let Some(first) = results.iter().find_map(|(_, m)| m.get(row)) else { continue };
        out.push_str(&format!("| {} → {} |", first.from, first.to));
        for (_, measured) in results {
            match measured.get(row) {
                Some(m) => match &m.took {
                    Ok(took) => out.push_str(&format!(
                        " {} · {} · {} · {} |",
                        fmt_duration(*took),
                        fmt_duration(m.clean_up),
                        fmt_duration(m.longest_write),
                        m.stall_ms.map_or("?".to_owned(), |s| format!("{s} ms"))
                    )),
                    Err(e) => out.push_str(&format!(" failed: {e} |")),
                },
                None => out.push_str(" — |"),
            }
        }
        out.push('\n');
    }
    out
}

fn request(to: &str, url: &str) -> Request {
    match to {
        "hybrid" => Request::Migrate { target: BackendTarget::Hybrid },
        "database" => Request::Migrate { target: BackendTarget::Database(DatabaseKind::Sqlite) },
        "postgresql" => {
            Request::MigrateTo { target: BackendTarget::Database(DatabaseKind::Postgresql), url: Some(url.to_owned()) }
        }
        _ => Request::Migrate { target: BackendTarget::File },
    }
}

fn migrate_under_load(daemon: &Daemon, n: usize, from: &str, to: &str, url: &str, writers: usize) -> Measured {
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..writers)
        .map(|w| {
            let (stop, socket) = (stop.clone(), daemon.socket.clone());
            std::thread::spawn(move || {
                let mut client = milestones_e2e::Client::connect(&socket, "bench").expect("connect");
                let (mut longest, mut writes) = (Duration::ZERO, 0);
                let mut k = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    k += 1;
                    let id = milestone_id(1 + (w * 7919 + k * 104_729) % n);
                    let change = Change::Set(vec![Assignment {
                        path: format!("bench.writer_{w}"),
                        value: Value::Int(k as i64),
                    }]);
                    let t = Instant::now();
                    match client.request(Request::Update { id, change }) {
                        Ok(Response::Document(_)) => {}
                        other => panic!("a write failed during the migration {other:?}"),
                    }
                    longest = longest.max(t.elapsed());
                    writes += 1;
                }
                (longest, writes)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut client = daemon.client();
    let t = Instant::now();
    let took = match client.request(request(to, url)) {
        Ok(Response::Migrated(report)) if report.milestones == n as u64 => Ok(t.elapsed()),
        Ok(Response::Migrated(report)) => Err(format!("{} milestones migrated, {n} expected", report.milestones)),
        Ok(other) => Err(format!("unexpected answer {other:?}")),
        Err(e) => Err(e.to_string()),
    };
    let answered = Instant::now();
    while let Ok(Response::MigrationStatus(Some(_))) = client.request(Request::MigrationStatus) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let clean_up = answered.elapsed();
    stop.store(true, Ordering::Relaxed);
    let (mut longest_write, mut writes) = (Duration::ZERO, 0);
    for w in writers {
        let (longest, count) = w.join().expect("a writer panicked");
        longest_write = longest_write.max(longest);
        writes += count;
    }
    let stall_ms = match client.request(Request::MigrationHistory) {
        Ok(Response::MigrationHistory(records)) => records.last().and_then(|r| r.write_stall_ms),
        _ => None,
    };
    Measured { from: from.to_owned(), to: to.to_owned(), took, clean_up, longest_write, writes, stall_ms }
}
