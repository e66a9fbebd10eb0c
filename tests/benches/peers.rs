//! msctl beside what people would otherwise use, on the same data in the
//! same run: seed 003's own shell functions (bash, `yq`; create, read, list
//! at 100 and 1,000 milestones) and Taskwarrior 2.6 (add, info, a list of
//! 300, modify, count at 1,000 and 10,000 tasks). Every command is timed as
//! a whole process, the two tools taking turns so that a drifting machine
//! affects both alike; msctl talks to a daemon on the file backend, what a
//! new project starts on. Installs `taskwarrior` and `yq` from the
//! distribution's packages when they are missing. Writes its section of
//! BENCHMARKS.md.
//!
//!     cargo build --release --workspace && cargo bench -p milestones-e2e --bench peers

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use milestones_e2e::bench::{
    ensure_installed, fmt_duration, machine, median_ratio, msctl, percentile, timed as run, write_section,
};
use milestones_e2e::corpus::{fmt_int, generate, milestone_id};
use milestones_e2e::Project;

/// Seed 003's functions, sourced by every shell command.
const SEED_SHELL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/peers/seed-003.sh");

/// One command of each tool, timed the same number of times.
struct Comparison {
    peer: &'static str,
    scale: usize,
    peer_command: String,
    msctl_command: String,
    peer_times: Vec<Duration>,
    msctl_times: Vec<Duration>,
}

impl Comparison {
    fn ratio(&self) -> f64 {
        median_ratio(&self.peer_times, &self.msctl_times)
    }
}

fn main() {
    let started = Instant::now();
    for (program, package) in [("task", "taskwarrior"), ("yq", "yq")] {
        ensure_installed(program, package);
    }
    let mut rows = Vec::new();
    for scale in [100, 1_000] {
        rows.extend(against_seed_shell(scale));
    }
    for scale in [1_000, 10_000] {
        rows.extend(against_taskwarrior(scale));
    }
    report(&rows, started.elapsed());
}

/// Seed 003's file backend against msctl, on a generated project of
/// `scale` milestones.
fn against_seed_shell(scale: usize) -> Vec<Comparison> {
    let p = Project::new();
    generate(&p, scale);
    let _daemon = p.start(&[]);
    let shell = |script: String| {
        let mut command = Command::new("bash");
        command.arg("-c").arg(format!(". '{SEED_SHELL}'; {script}")).current_dir(&p.root);
        command
    };
    let msctl = |args: &[&str]| msctl(&p.root, args);
    // A milestone in active/, where the seed's functions look.
    let read = first_active(&p.milestones().join("active"));
    let runs_of_list = if scale > 100 { 3 } else { 5 };
    vec![
        compare(
            "seed 003 shell",
            scale,
            ("create_milestone_file ID YAML", "msctl create --id ID --title T"),
            15,
            |n| shell(format!("create_milestone_file shell-{n} 'id: shell-{n}\ntitle: Shell {n}\nstatus: planning'")),
            |n| msctl(&["create", "--id", &format!("cli-{n}"), "--title", &format!("Cli {n}")]),
        ),
        compare(
            "seed 003 shell",
            scale,
            (&format!("read_milestone_file {read}"), &format!("msctl get {read}")),
            15,
            |_| shell(format!("read_milestone_file {read}")),
            |_| msctl(&["get", &read]),
        ),
        compare(
            "seed 003 shell",
            scale,
            ("list_milestones_file all", "msctl list"),
            runs_of_list,
            |_| shell("list_milestones_file all".to_owned()),
            |_| msctl(&["list"]),
        ),
    ]
}

/// Taskwarrior against msctl, each holding the same `scale` generated
/// milestones (as tasks: title, project, priority, status, dates).
fn against_taskwarrior(scale: usize) -> Vec<Comparison> {
    let p = Project::new();
    generate(&p, scale);
    let home = tempfile::tempdir().expect("a folder for Taskwarrior");
    let taskrc = home.path().join("taskrc");
    let data = home.path().join("data");
    std::fs::write(&taskrc, format!("data.location={}\nconfirmation=off\n", data.display())).expect("write taskrc");
    let task = |args: &[&str]| {
        let mut command = Command::new("task");
        command.env("TASKRC", &taskrc).args(args);
        command
    };
    let import = home.path().join("import.json");
    std::fs::write(&import, as_taskwarrior_tasks(&p)).expect("write the tasks to import");
    run(&mut task(&["import", &import.display().to_string()]));
    let _daemon = p.start(&[]);
    let msctl = |args: &[&str]| msctl(&p.root, args);
    let priority = |n: usize| if n.is_multiple_of(2) { ("H", "high") } else { ("L", "low") };
    let id = milestone_id(5);
    vec![
        compare(
            "Taskwarrior 2.6",
            scale,
            ("task add T project:P priority:M", "msctl create --title T --category P --priority medium"),
            15,
            |n| task(&["add", &format!("Added {n}"), "project:bench", "priority:M"]),
            |n| msctl(&["create", "--title", &format!("Added {n}"), "--category", "bench", "--priority", "medium"]),
        ),
        compare(
            "Taskwarrior 2.6",
            scale,
            ("task 5 info", &format!("msctl get {id}")),
            15,
            |_| task(&["5", "info"]),
            |_| msctl(&["get", &id]),
        ),
        compare(
            "Taskwarrior 2.6",
            scale,
            ("task limit:300 list", "msctl list --limit 300"),
            15,
            |_| task(&["limit:300", "list"]),
            |_| msctl(&["list", "--limit", "300"]),
        ),
        compare(
            "Taskwarrior 2.6",
            scale,
            ("task 5 modify priority:H (then L)", &format!("msctl update {id} --set priority=high (then low)")),
            15,
            |n| task(&["5", "modify", &format!("priority:{}", priority(n).0)]),
            |n| msctl(&["update", &id, "--set", &format!("priority={}", priority(n).1)]),
        ),
        compare(
            "Taskwarrior 2.6",
            scale,
            ("task count", "msctl stats"),
            15,
            |_| task(&["count"]),
            |_| msctl(&["stats"]),
        ),
    ]
}

/// Times `runs` turns of the peer's command then msctl's (`n`: the turn).
fn compare(
    peer: &'static str,
    scale: usize,
    (peer_command, msctl_command): (&str, &str),
    runs: usize,
    mut peer_run: impl FnMut(usize) -> Command,
    mut msctl_run: impl FnMut(usize) -> Command,
) -> Comparison {
    // One untimed turn each: caches warm alike.
    run(&mut peer_run(runs));
    run(&mut msctl_run(runs));
    let (mut peer_times, mut msctl_times) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
    for n in 0..runs {
        peer_times.push(run(&mut peer_run(n)));
        msctl_times.push(run(&mut msctl_run(n)));
    }
    let comparison = Comparison {
        peer,
        scale,
        peer_command: peer_command.to_owned(),
        msctl_command: msctl_command.to_owned(),
        peer_times,
        msctl_times,
    };
    println!("{peer} at {scale}: {peer_command}: {}", ratio(comparison.ratio()));
    comparison
}

fn first_active(active: &Path) -> String {
    let mut names: Vec<PathBuf> =
        std::fs::read_dir(active).expect("read active/").map(|e| e.expect("an entry of active/").path()).collect();
    names.sort();
    names[0].file_stem().and_then(|s| s.to_str()).expect("a milestone file name").to_owned()
}

/// The project's milestones as a Taskwarrior import: description from the
/// title, project from the category, H/M/L from the priority, completed
/// milestones completed, the others pending, with their creation dates.
fn as_taskwarrior_tasks(p: &Project) -> String {
    let mut tasks = Vec::new();
    for folder in ["active", "completed"] {
        for entry in std::fs::read_dir(p.milestones().join(folder)).expect("read a milestone folder") {
            let text = std::fs::read_to_string(entry.expect("a milestone file").path()).expect("read a milestone");
            let doc: serde_json::Value = serde_norway::from_str(&text).expect("a generated milestone");
            let text_of = |field: &str| doc[field].as_str().unwrap_or("").to_owned();
            let stamp = |field: &str| text_of(field).replace(['-', ':'], "");
            let priority = match text_of("priority").as_str() {
                "critical" | "high" => "H",
                "medium" => "M",
                _ => "L",
            };
            let n = tasks.len() + 1;
            let mut task = serde_json::json!({
                "uuid": format!("{n:08x}-0000-4000-8000-000000000000"),
                "description": text_of("title"),
                "project": text_of("category"),
                "priority": priority,
                "entry": stamp("created_at"),
                "modified": stamp("updated_at"),
                "status": "pending",
            });
            if text_of("status") == "completed" {
                task["status"] = "completed".into();
                task["end"] = stamp("updated_at").into();
            }
            tasks.push(task);
        }
    }
    serde_json::Value::Array(tasks).to_string()
}

/// `12x`, or `1.4x` under ten.
fn ratio(r: f64) -> String {
    if r < 10.0 {
        format!("{r:.1}x")
    } else {
        format!("{r:.0}x")
    }
}

fn report(rows: &[Comparison], took: Duration) {
    let mut body = String::from("## Beside the tools people would otherwise use\n\n");
    body.push_str(&format!(
        "Machine: {} Release build. Run time: {:.1} min.\n\n",
        machine(),
        took.as_secs_f64() / 60.0
    ));
    body.push_str("Command: `cargo build --release --workspace && cargo bench -p milestones-e2e --bench peers`\n\n");
    body.push_str(
        "Each command is one whole process, timed from spawn to exit with its output read, the peer's and msctl's \
         taking turns after one untimed turn each. msctl talks to a running daemon on the file backend over the \
         same generated milestones ([Storage backends](#storage-backends)); the shell functions are seed 003's \
         (`tests/peers/seed-003.sh`, with Debian's `yq`), and Taskwarrior holds the same milestones as tasks \
         (imported). `msctl list` lists every milestone, where the seed's function reads `active/` only. Ratio: \
         the peer's p50 over msctl's.\n\n",
    );
    body.push_str("| peer | scale | peer's command | msctl's command | runs | peer p50 | msctl p50 | ratio |\n");
    body.push_str("| --- | --- | --- | --- | --- | --- | --- | --- |\n");
    for r in rows {
        body.push_str(&format!(
            "| {} | {} | `{}` | `{}` | {} | {} | {} | {} |\n",
            r.peer,
            fmt_int(r.scale),
            r.peer_command,
            r.msctl_command,
            r.peer_times.len(),
            fmt_duration(percentile(&r.peer_times, 0.5)),
            fmt_duration(percentile(&r.msctl_times, 0.5)),
            ratio(r.ratio()),
        ));
    }
    body.push('\n');
    print!("{body}");
    write_section("peers", &body);
}
