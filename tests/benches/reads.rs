//! Every read command of `msctl` against `msctl ping`, as a user meets
//! them: whole processes against a running daemon, each command taking
//! turns with `ping` so that a drifting machine moves both alike. Issue
//! 16's aim is a ratio: at most 3× `ping` on the file backend at 10,000
//! milestones, at most 2× on hybrid and on SQLite at 100,000.
//!
//! A generated project of 10,000 milestones is measured on the file
//! backend; one of 100,000 on the file backend, then migrated to hybrid,
//! then to the database backend on SQLite. "First after an update" times
//! the command right after an `update` (of a milestone's progress, or of
//! its requirements), when what was derived from every milestone must be
//! brought up to date. Writes its section of BENCHMARKS.md.
//!
//!     cargo build --release --workspace && cargo bench -p milestones-e2e --bench reads

use std::path::Path;
use std::time::{Duration, Instant};

use milestones_e2e::bench::{
    fmt_duration, machine, median_ratio, migrate_and_settle, msctl, percentile, timed, write_section,
};
use milestones_e2e::corpus::{fmt_int, generate, milestone_id};
use milestones_e2e::Project;

/// Turns of each command (and as many of `ping`).
const TURNS: usize = 15;
/// Turns of a command timed right after an update.
const TURNS_AFTER_CHANGE: usize = 5;

/// One command's times beside `ping`'s, taken in turns.
struct Row {
    command: String,
    times: Vec<Duration>,
    ping: Vec<Duration>,
}

impl Row {
    fn ratio(&self) -> f64 {
        median_ratio(&self.times, &self.ping)
    }
}

/// The rows of one backend at one scale, and the ratio it must keep to.
struct Table {
    backend: &'static str,
    scale: usize,
    aim: f64,
    rows: Vec<Row>,
}

fn main() {
    let started = Instant::now();
    let mut tables = Vec::new();

    let small = Project::new();
    generate(&small, 10_000);
    let daemon = small.start(&[]);
    tables.push(measure(&small.root, "file", 10_000, 3.0));
    drop(daemon);

    let large = Project::new();
    generate(&large, 100_000);
    let _daemon = large.start(&[]);
    tables.push(measure(&large.root, "file", 100_000, f64::NAN));
    for (backend, aim) in [("hybrid", 2.0), ("database", 2.0)] {
        migrate_and_settle(&large.root, backend);
        tables.push(measure(
            &large.root,
            if backend == "database" { "database (SQLite)" } else { backend },
            100_000,
            aim,
        ));
    }
    report(&tables, started.elapsed());
}

/// Every read command on the project at `root`, in turns with `ping`.
fn measure(root: &Path, backend: &'static str, scale: usize, aim: f64) -> Table {
    let get = milestone_id(3);
    // Late milestones require earlier ones and few require them.
    let leaf = milestone_id(scale - 10);
    let commands: Vec<Vec<&str>> = vec![
        vec!["get", &get],
        vec!["list", "--limit", "10"],
        vec!["list", "--sort", "priority", "--limit", "10"],
        vec!["list", "--sort=-priority", "--limit", "10"],
        vec!["list", "--sort", "title", "--limit", "10"],
        vec!["list", "--sort", "status", "--limit", "10"],
        vec!["list", "--sort", "category", "--limit", "10"],
        vec!["list", "--sort", "updated_at", "--limit", "10"],
        vec!["list", "--sort=-completed_at", "--limit", "10"],
        vec!["list", "--sort", "id", "--limit", "10"],
        vec!["list", "--status", "in_progress", "--limit", "50"],
        vec!["list", "--priority", "critical", "--limit", "50"],
        vec!["list", "--category", "security", "--limit", "50"],
        vec!["list", "--status", "blocked", "--priority", "low", "--limit", "20"],
        vec!["list", "--status", "blocked", "--priority", "low", "--category", "security", "--limit", "20"],
        vec!["list", "--status", "planned", "--limit", "20"],
        vec!["search", "kubernetes", "--limit", "20"],
        vec!["search", "release", "--limit", "20"],
        vec!["ready", "--limit", "20"],
        vec!["blocked", "--limit", "20"],
        vec!["stats"],
        vec!["deps", &leaf],
    ];
    let mut rows = Vec::new();
    for args in &commands {
        rows.push(in_turns(root, args, None));
    }
    // An update that changes no edge and no time (what most are), and one
    // that adds or removes an edge every other turn.
    let progress = |_: usize| vec!["update".to_owned(), get.clone(), "--set".into(), "progress.percentage=40".into()];
    let edge = |turn: usize| {
        let requires = if turn.is_multiple_of(2) { format!("[{}]", milestone_id(1)) } else { "[]".to_owned() };
        vec!["update".to_owned(), get.clone(), "--set".into(), format!("dependencies.requires={requires}")]
    };
    let updates: [Before<'_>; 2] =
        [(&progress, "an `update` of its progress"), (&edge, "an `update` of its requirements")];
    for (update, what) in updates {
        for args in [vec!["stats"], vec!["deps", &leaf]] {
            rows.push(in_turns(root, &args, Some((update, what))));
        }
    }
    let table = Table { backend, scale, aim, rows };
    for row in &table.rows {
        println!("{backend} at {scale}: {}: {:.2}x ping", row.command, row.ratio());
    }
    table
}

/// The command run (not timed) before each turn of one timed right after
/// a change, by turn, and what it is.
type Before<'a> = (&'a dyn Fn(usize) -> Vec<String>, &'a str);

/// `args` and `ping` in turns, each turn after `before` when given (not
/// timed); one untimed turn first, so that caches are warm alike.
fn in_turns(root: &Path, args: &[&str], before: Option<Before<'_>>) -> Row {
    let turns = if before.is_some() { TURNS_AFTER_CHANGE } else { TURNS };
    timed(&mut msctl(root, args));
    let (mut times, mut ping) = (Vec::with_capacity(turns), Vec::with_capacity(turns));
    for turn in 0..turns {
        ping.push(timed(&mut msctl(root, &["ping"])));
        if let Some((before, _)) = before {
            let before = before(turn);
            timed(&mut msctl(root, &before.iter().map(String::as_str).collect::<Vec<_>>()));
        }
        times.push(timed(&mut msctl(root, args)));
    }
    let mut command = format!("`msctl {}`", args.join(" "));
    if let Some((_, what)) = before {
        command.push_str(&format!(", first after {what}"));
    }
    Row { command, times, ping }
}

fn report(tables: &[Table], took: Duration) {
    let mut section = String::from("## Every read against `msctl ping`\n\n");
    section.push_str(&format!(
        "Machine: {} Release build. Run time: {:.1} min.\n\n\
         Command: `cargo build --release --workspace && cargo bench -p milestones-e2e --bench reads`\n\n\
         Whole processes against a running daemon, on generated projects (as in [Storage backends](#storage-backends)). \
         Each command takes {TURNS} turns with `msctl ping` after one untimed turn; the ratio is the command's p50 \
         over `ping`'s p50 from the same turns. \"First after an `update`\" runs an untimed `msctl update` of \
         `milestone-000003` before each of {TURNS_AFTER_CHANGE} turns: of its progress (no edge and no time \
         changes, as with most writes), or of its requirements (an edge comes or goes every turn). The 100,000 \
         project is measured on the file backend, then migrated to hybrid, then to the database backend on \
         SQLite, each measured once the migration's clean-up has ended. \
         Issue 16 aims at 3× on the file backend at 10,000 and 2× on hybrid and SQLite at 100,000; rows over it \
         are marked.\n\n",
        machine(),
        took.as_secs_f64() / 60.0
    ));
    for table in tables {
        let aim = if table.aim.is_nan() { "no aim".to_owned() } else { format!("aim {:.0}×", table.aim) };
        section.push_str(&format!("### {} at {} milestones ({aim})\n\n", table.backend, fmt_int(table.scale)));
        section.push_str("| command | p50 | `ping` p50 | ratio |\n| --- | --- | --- | --- |\n");
        for row in &table.rows {
            let ratio = row.ratio();
            let over = if ratio > table.aim { " **over**" } else { "" };
            section.push_str(&format!(
                "| {} | {} | {} | {ratio:.2}×{over} |\n",
                row.command,
                fmt_duration(percentile(&row.times, 0.5)),
                fmt_duration(percentile(&row.ping, 0.5)),
            ));
        }
        section.push('\n');
    }
    write_section("reads", &section);
}
