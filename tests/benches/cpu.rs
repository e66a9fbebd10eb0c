//! CPU per request, as instructions executed, which stay put on a noisy
//! machine where times drift: the daemon runs under valgrind's callgrind
//! with counting off, and counting is switched on (`callgrind_control`)
//! only while a batch of one request is sent. The daemon's instructions
//! per request are the batch's total divided by its size; `msctl`'s own,
//! start-up included, are counted by running one `msctl` under callgrind.
//! Everything the daemon does meanwhile (its watcher, its scale monitor)
//! is counted too; `ping`'s row shows that floor. Installs valgrind when
//! missing. Writes its section of BENCHMARKS.md.
//!
//!     cargo build --release --workspace && cargo bench -p milestones-e2e --bench cpu

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use milestones_e2e::bench::{ensure_installed, machine, migrate_and_settle, msctl, timed, write_section};
use milestones_e2e::corpus::{fmt_int, generate, milestone_id};
use milestones_e2e::Project;

/// Milestones in each project: enough for lists and searches to have work,
/// few enough that the daemon starts under callgrind in seconds.
const SCALE: usize = 1_000;
/// Requests in each counted batch.
const BATCH: usize = 20;
const BACKENDS: [&str; 2] = ["file", "database"];

fn main() {
    let started = Instant::now();
    ensure_installed("valgrind", "valgrind");
    let get = milestone_id(3);
    let leaf = milestone_id(SCALE - 10);
    let update = |n: usize| format!("progress.percentage={}", n % 100);
    let requests: Vec<(String, Vec<String>)> = [
        vec!["ping"],
        vec!["get", &get],
        vec!["list", "--limit", "10"],
        vec!["list", "--sort", "priority", "--limit", "10"],
        vec!["list", "--status", "in_progress", "--limit", "50"],
        vec!["search", "kubernetes", "--limit", "20"],
        vec!["search", "release", "--limit", "20"],
        vec!["ready", "--limit", "20"],
        vec!["stats"],
        vec!["deps", &leaf],
        vec!["update", &get, "--set", "UPDATE"],
    ]
    .into_iter()
    .map(|args| (format!("msctl {}", args.join(" ")), args.into_iter().map(str::to_owned).collect()))
    .collect();

    let mut daemon_counts: Vec<Vec<u64>> = Vec::new();
    for backend in BACKENDS {
        let p = Project::new();
        generate(&p, SCALE);
        if backend != "file" {
            let _daemon = p.start(&[]);
            migrate_and_settle(&p.root, backend);
        }
        let out = tempfile::tempdir().expect("a folder for callgrind's files");
        let mut command = Command::new("valgrind");
        command
            .arg("--tool=callgrind")
            .arg("--instr-atstart=no")
            .arg(format!("--callgrind-out-file={}/daemon.%p", out.path().display()))
            .arg(format!("--log-file={}/valgrind.log", out.path().display()))
            .arg(milestones_e2e::binary("milestoned"));
        let daemon = p.start_command(command, &[]);
        let mut counts = Vec::new();
        for (_, args) in &requests {
            let total = counted(daemon.pid(), out.path(), || {
                for n in 0..BATCH {
                    let args: Vec<String> =
                        args.iter().map(|a| if a == "UPDATE" { update(n) } else { a.clone() }).collect();
                    let args: Vec<&str> = args.iter().map(String::as_str).collect();
                    timed(&mut msctl(&p.root, &args));
                }
            });
            counts.push(total / BATCH as u64);
        }
        println!("{backend}: {counts:?}");
        daemon_counts.push(counts);
    }

    // msctl's own instructions, against a daemon running at full speed.
    let p = Project::new();
    generate(&p, SCALE);
    let _daemon = p.start(&[]);
    let out = tempfile::tempdir().expect("a folder for callgrind's files");
    let mut client_counts = Vec::new();
    for (i, (_, args)) in requests.iter().enumerate() {
        let args: Vec<String> = args.iter().map(|a| if a == "UPDATE" { update(i) } else { a.clone() }).collect();
        let file = out.path().join(format!("msctl.{i}"));
        let mut command = Command::new("valgrind");
        command
            .arg("--tool=callgrind")
            .arg(format!("--callgrind-out-file={}", file.display()))
            .arg(format!("--log-file={}", out.path().join("valgrind.log").display()))
            .arg(milestones_e2e::binary("msctl"))
            .arg("--root")
            .arg(&p.root)
            .arg("--no-autostart")
            .args(&args);
        timed(&mut command);
        client_counts.push(totals(&file));
    }
    report(&requests, &daemon_counts, &client_counts, started.elapsed());
}

/// Instructions the daemon `pid` executed while `work` ran.
fn counted(pid: u32, out: &Path, work: impl FnOnce()) -> u64 {
    let control = |arg: &str| {
        let status = Command::new("callgrind_control").arg(arg).arg(pid.to_string()).output();
        let status = status.expect("run callgrind_control");
        assert!(status.status.success(), "callgrind_control {arg}: {}", String::from_utf8_lossy(&status.stderr));
    };
    control("--zero");
    control("--instr=on");
    work();
    control("--instr=off");
    control("--dump");
    // Each dump is a new file, numbered after the process id.
    let newest = std::fs::read_dir(out)
        .expect("read callgrind's folder")
        .map(|e| e.expect("an entry").path())
        .filter_map(|p| Some((dump_number(&p)?, p)))
        .max()
        .expect("a dump")
        .1;
    totals(&newest)
}

/// N of a dump named `daemon.PID.N` (the file without N is written at
/// exit).
fn dump_number(path: &Path) -> Option<u64> {
    let name = path.file_name()?.to_str()?;
    match name.split('.').collect::<Vec<_>>()[..] {
        ["daemon", _, n] => n.parse().ok(),
        _ => None,
    }
}

/// The instructions a callgrind file counts: its `totals:` line (a dump
/// asked for while the program runs has `summary: 0` before it), else its
/// `summary:`.
fn totals(file: &Path) -> u64 {
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("read {}: {e}", file.display()));
    let line =
        |prefix: &str| text.lines().find_map(|l| l.strip_prefix(prefix)?.split_whitespace().next()?.parse().ok());
    line("totals:").or_else(|| line("summary:")).unwrap_or_else(|| panic!("no totals in {}", file.display()))
}

fn report(requests: &[(String, Vec<String>)], daemon: &[Vec<u64>], client: &[u64], took: Duration) {
    let mut section = String::from("## CPU per request (instructions)\n\n");
    section.push_str(&format!(
        "Machine: {} Release build. Run time: {:.1} min.\n\n\
         Command: `cargo build --release --workspace && cargo bench -p milestones-e2e --bench cpu`\n\n\
         Instructions counted by valgrind's callgrind, on generated projects of {} milestones (as in \
         [Storage backends](#storage-backends)). The daemon runs under callgrind with counting switched on \
         (`callgrind_control`) only while {BATCH} requests of one kind are sent; the figure is that total over \
         {BATCH}, and includes whatever else the daemon did meanwhile (`ping`'s row is that floor). `msctl`'s own \
         column is one whole `msctl` process under callgrind, start-up included, against a daemon on the file \
         backend. The `update` sets `progress.percentage`.\n\n",
        machine(),
        took.as_secs_f64() / 60.0,
        fmt_int(SCALE)
    ));
    section.push_str("| command | daemon, file backend | daemon, database (SQLite) | `msctl` itself |\n");
    section.push_str("| --- | --- | --- | --- |\n");
    for (i, (label, _)) in requests.iter().enumerate() {
        let label = label.replace("UPDATE", "progress.percentage=N");
        section.push_str(&format!(
            "| `{label}` | {} | {} | {} |\n",
            fmt_int(daemon[0][i] as usize),
            fmt_int(daemon[1][i] as usize),
            fmt_int(client[i] as usize)
        ));
    }
    section.push('\n');
    write_section("cpu", &section);
}
