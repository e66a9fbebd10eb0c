//! Storage backend benchmarks: the real daemon on generated projects of
//! 100, 1,000, 10,000 and 100,000 milestones, measured on the file backend, then
//! migrated to hybrid, to database on SQLite and to database on PostgreSQL
//! (a server the benchmark starts, fsync on) and measured again. Prints one
//! Markdown table per scale and writes them into BENCHMARKS.md.
//!
//!     cargo build --release --workspace && cargo bench -p milestones-e2e --bench backends
//!
//! Figures, not assertions: a failed request or a result that differs
//! between backends is reported next to the tables, never a panic.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use milestones_client::Client;
use milestones_e2e::bench::{machine, percentile, percentiles, run_measured, write_section};
use milestones_e2e::corpus::{fmt_int, generate, milestone_id, milestone_yaml, Rng};
use milestones_e2e::postgres::PgServer;
use milestones_e2e::protocol::{
    Assignment, BackendTarget, Change, DatabaseKind, DocumentInput, Filter, FilterOp, Query, Request, Response, Value,
};
use milestones_e2e::{binary, Daemon, Project};

const COMMAND: &str = "cargo build --release --workspace && cargo bench -p milestones-e2e --bench backends";
const SCALES: [usize; 4] = [100, 1_000, 10_000, 100_000];
const BACKENDS: [&str; 4] = ["file", "hybrid", "database", "postgresql"];
/// Column headings, in `BACKENDS` order.
const HEADINGS: [&str; 4] = ["file", "hybrid", "database (SQLite)", "database (PostgreSQL)"];
/// Daemon starts per backend and scale; the median is reported.
const STARTS: usize = 3;

/// The measured operations, in table order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    List,
    Search,
    Stats,
    Get,
    /// A new milestone that requires nothing: no cycle check.
    Create,
    /// A new milestone that requires 1–2 existing ones: the daemon checks
    /// the dependency graph for a cycle first.
    CreateLinked,
    /// What one scale monitor cycle measures (the `Scale` request computes
    /// the same figures).
    Scale,
    /// `msctl ready`: the most urgent page of open milestones whose
    /// requirements are completed, from the order the daemon keeps.
    Ready,
    /// The same right after another client changed a milestone, so that
    /// the daemon works the order out again.
    ReadyAfterChange,
}

const OPS: [Op; 9] = [
    Op::List,
    Op::Search,
    Op::Stats,
    Op::Get,
    Op::Create,
    Op::CreateLinked,
    Op::Scale,
    Op::Ready,
    Op::ReadyAfterChange,
];

impl Op {
    fn label(self) -> &'static str {
        match self {
            Op::List => "filtered `list` (status = in_progress), page of 50",
            Op::Search => "`search` \"kubernetes\", page of 50",
            Op::Stats => "`stats`",
            Op::Get => "`get` of a random id",
            Op::Create => "`create` (YAML), no requires",
            Op::CreateLinked => "`create` (YAML), 1–2 requires (cycle check)",
            Op::Scale => "scale monitor cycle (`msctl scale`: counts, graph, size, decision)",
            Op::Ready => "`ready`, page of 50 (the order the daemon keeps)",
            Op::ReadyAfterChange => "`ready`, page of 50, right after another client's `update`",
        }
    }

    fn short(self) -> &'static str {
        match self {
            Op::List => "filtered `list`",
            Op::Search => "`search`",
            Op::Stats => "`stats`",
            Op::Get => "`get`",
            Op::Create => "`create`, no requires",
            Op::CreateLinked => "`create` with requires",
            Op::Scale => "scale monitor cycle",
            Op::Ready => "`ready`",
            Op::ReadyAfterChange => "`ready` after a change",
        }
    }

    /// How long to sample: at least `min` requests, then until `budget` is
    /// spent or `max` requests are done.
    fn plan(self) -> (usize, usize, Duration) {
        match self {
            Op::Get => (200, 5_000, Duration::from_secs(2)),
            Op::Create | Op::CreateLinked => (50, 300, Duration::from_secs(10)),
            _ => (15, 2_000, Duration::from_secs(3)),
        }
    }
}

/// One backend at one scale.
#[derive(Default)]
struct Figures {
    /// Every start, spawn to serving.
    starts: Vec<Duration>,
    rss_kib: Option<u64>,
    peak_kib: Option<u64>,
    /// The migration into this backend, wall time at the client.
    migration: Option<Result<Duration, String>>,
    /// `msctl export` of every milestone: wall time and msctl's peak RSS.
    export: Option<Result<(Duration, u64), String>>,
    ops: Vec<(Op, Result<Vec<Duration>, String>)>,
    /// Matches reported by `list`, `search` and `stats` (compared across backends).
    list_total: Option<u64>,
    search_total: Option<u64>,
    stats_total: Option<u64>,
}

impl Figures {
    fn samples(&self, op: Op) -> Option<&Vec<Duration>> {
        self.ops.iter().find(|(o, _)| *o == op).and_then(|(_, r)| r.as_ref().ok())
    }
}

struct Scale {
    n: usize,
    yaml_bytes: u64,
    backends: Vec<Figures>,
    /// The 1-minute load average, sampled before each backend's measurements.
    load: Vec<f64>,
}

fn main() {
    let started = Instant::now();
    let mut anomalies = Vec::new();
    let mut scales = Vec::new();
    let server = PgServer::start(true);
    for n in SCALES {
        let t = Instant::now();
        let db = server.database();
        let scale = run_scale(n, &db.url(), &mut anomalies);
        println!("{} milestones: {:.0} s\n{}", fmt_int(n), t.elapsed().as_secs_f64(), scale_table(&scale));
        scales.push(scale);
    }
    report(&scales, &anomalies, started.elapsed());
}

/// Generates a project of `n` milestones and measures it on each backend in
/// turn: file, then migrated to hybrid, to database, to PostgreSQL at `url`.
fn run_scale(n: usize, url: &str, anomalies: &mut Vec<String>) -> Scale {
    let project = Project::new();
    let yaml_bytes = generate(&project, n);
    let mut backends: Vec<Figures> = Vec::new();
    // The migration into the next backend, done by the previous daemon.
    let mut incoming = None;
    let mut load = Vec::new();
    for (b, backend) in BACKENDS.into_iter().enumerate() {
        load.extend(load_average());
        let mut fig = Figures { migration: incoming.take(), ..Default::default() };
        if matches!(fig.migration, Some(Err(_))) {
            backends.push(fig);
            break;
        }
        let Some(daemon) = start_measured(&project, backend, n, &mut fig, anomalies) else {
            backends.push(fig);
            break;
        };
        measure(&daemon, n, b, &mut fig, anomalies);
        fig.export = Some(export(&project, n));
        if let Some(Err(e)) = &fig.export {
            anomalies.push(format!("{} milestones, {backend}: export failed: {e}", fmt_int(n)));
        }
        fig.peak_kib = proc_status_kib(daemon.pid(), "VmHWM");
        if let Some(next) = BACKENDS.get(b + 1) {
            let migrated = migrate(&daemon, n, next, url);
            if let Err(e) = &migrated {
                anomalies.push(format!("{} milestones: migrating {backend} → {next} failed: {e}", fmt_int(n)));
            }
            incoming = Some(migrated);
        }
        let (code, stderr) = daemon.stop();
        if code != Some(0) {
            anomalies.push(format!(
                "{} milestones, {backend}: the daemon exited with {code:?}: {}",
                fmt_int(n),
                stderr.trim()
            ));
        }
        backends.push(fig);
    }
    compare_totals(n, &backends, anomalies);
    Scale { n, yaml_bytes, backends, load }
}

fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg").ok()?.split_whitespace().next()?.parse().ok()
}

/// Starts the daemon `STARTS` times and keeps the last one running; checks
/// it serves `backend` with `n` milestones.
fn start_measured(
    project: &Project,
    backend: &str,
    n: usize,
    fig: &mut Figures,
    anomalies: &mut Vec<String>,
) -> Option<Daemon> {
    let mut daemon = None;
    for i in 0..STARTS {
        let (d, took) = match start(project) {
            Ok(started) => started,
            Err(e) => {
                anomalies.push(format!("{} milestones, {backend}: {e}", fmt_int(n)));
                return None;
            }
        };
        fig.starts.push(took);
        if i + 1 < STARTS {
            let _ = d.stop();
        } else {
            daemon = Some(d);
        }
    }
    let daemon = daemon?;
    fig.rss_kib = proc_status_kib(daemon.pid(), "VmRSS");
    match daemon.client().request(Request::Backend) {
        Ok(Response::Backend(info))
            if backend.starts_with(&info.backend) || info.database.as_deref() == Some(backend) =>
        {
            if info.milestones != n as u64 {
                anomalies.push(format!("{} milestones: the {backend} backend holds {}", fmt_int(n), info.milestones));
            }
        }
        Ok(Response::Backend(info)) => anomalies.push(format!(
            "{} milestones: expected the {backend} backend with {n} milestones, the daemon reports {} with {}",
            fmt_int(n),
            info.backend,
            info.milestones
        )),
        other => anomalies.push(format!("{} milestones, {backend}: `backend` answered {other:?}", fmt_int(n))),
    }
    Some(daemon)
}

/// Spawn to the first successful handshake.
fn start(project: &Project) -> Result<(Daemon, Duration), String> {
    let t = Instant::now();
    let daemon = project.spawn(&[]);
    loop {
        if Client::connect(&daemon.socket, "bench").is_ok() {
            return Ok((daemon, t.elapsed()));
        }
        if exited(daemon.pid()) {
            let (code, stderr) = daemon.wait();
            return Err(format!("the daemon exited with {code:?} while starting: {}", stderr.trim()));
        }
        if t.elapsed() > Duration::from_secs(300) {
            return Err("the daemon did not serve within 300 s".into());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn exited(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.rsplit_once(')').is_none_or(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])))
        .unwrap_or(true)
}

/// A `kB` line of `/proc/<pid>/status` (`VmRSS`, `VmHWM`).
fn proc_status_kib(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(key) && l[key.len()..].starts_with(':'))?;
    line[key.len() + 1..].trim().trim_end_matches("kB").trim().parse().ok()
}

fn measure(daemon: &Daemon, n: usize, backend: usize, fig: &mut Figures, anomalies: &mut Vec<String>) {
    let mut c = daemon.client();
    let mut other = daemon.client();
    let list = Request::List {
        query: Query {
            filters: vec![Filter { path: "status".into(), op: FilterOp::Eq, value: Value::from("in_progress") }],
            limit: Some(50),
            ..Default::default()
        },
    };
    let search =
        Request::List { query: Query { text: Some("kubernetes".into()), limit: Some(50), ..Default::default() } };
    let mut rng = Rng::new(0x5eed ^ ((n as u64) << 8) ^ backend as u64);
    // Ids of the documents created here, purged afterwards so every backend
    // is measured on the same `n` milestones.
    let first_new = n + 1 + backend * 1_000;
    let mut created = Vec::new();
    for op in OPS {
        let result = sample(op, |i| {
            let request = match op {
                Op::List => list.clone(),
                Op::Search => search.clone(),
                Op::Stats => Request::Stats,
                Op::Scale => Request::Scale,
                Op::Ready => Request::WorkPage { tasks: false, blocked: false, offset: 0, limit: 50 },
                Op::ReadyAfterChange => {
                    // Untimed, by another connection: a change the order
                    // must take in.
                    let id = milestone_id(1 + rng.below(n as u64) as usize);
                    let touch = Assignment { path: "bench_touched".into(), value: Value::from(i as i64) };
                    other
                        .request(Request::Update { id, change: Change::Set(vec![touch]) })
                        .map_err(|e| e.to_string())?;
                    Request::WorkPage { tasks: false, blocked: false, offset: 0, limit: 50 }
                }
                Op::Get => Request::Get { id: milestone_id(1 + rng.below(n as u64) as usize) },
                Op::Create | Op::CreateLinked => {
                    let (id, requires) =
                        if op == Op::Create { (first_new + i, 0..=0) } else { (first_new + 500 + i, 1..=2) };
                    created.push(milestone_id(id));
                    Request::Create { input: DocumentInput::Yaml(milestone_yaml(id, n, requires, &mut rng, true)) }
                }
            };
            let t = Instant::now();
            let response = c.request(request).map_err(|e| e.to_string())?;
            let took = t.elapsed();
            match (op, response) {
                (Op::List, Response::Page(p)) => fig.list_total = Some(p.total),
                (Op::Search, Response::Page(p)) => fig.search_total = Some(p.total),
                (Op::Stats, Response::Stats(s)) => fig.stats_total = Some(s.total),
                (Op::Scale, Response::Scale(_)) => {}
                (Op::Ready | Op::ReadyAfterChange, Response::WorkPage(page)) if page.items.len() == 50 => {}
                (Op::Get | Op::Create | Op::CreateLinked, Response::Document(_)) => {}
                (_, other) => return Err(format!("unexpected answer {other:?}")),
            }
            Ok(took)
        });
        if let Err(e) = &result {
            anomalies.push(format!("{} milestones, {}: {} failed: {e}", fmt_int(n), BACKENDS[backend], op.short()));
        }
        fig.ops.push((op, result));
    }
    for id in created {
        if let Err(e) = c.request(Request::Delete { id: id.clone(), purge: true }) {
            anomalies.push(format!("{} milestones, {}: purging {id} failed: {e}", fmt_int(n), BACKENDS[backend]));
        }
    }
}

/// `msctl export --format yaml` of every milestone into a file, as a user
/// runs it; checks the file holds `n` documents.
fn export(project: &Project, n: usize) -> Result<(Duration, u64), String> {
    let out = project.root.join("export.yaml");
    let cost = run_measured(
        std::process::Command::new(binary("msctl"))
            .arg("--root")
            .arg(&project.root)
            .args(["export", "--format", "yaml", "--out"])
            .arg(&out)
            .env("MSCTL_NO_AUTOSTART", "1")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null()),
    )
    .map_err(|e| format!("cannot run msctl: {e}"))?;
    if !cost.status.success() {
        return Err(format!("msctl export exited with {}", cost.status));
    }
    let text = std::fs::read_to_string(&out).map_err(|e| format!("cannot read the export: {e}"))?;
    let _ = std::fs::remove_file(&out);
    let documents = text.lines().filter(|l| l.starts_with("id: ") || l.starts_with("- id: ")).count();
    if documents != n {
        return Err(format!("the export holds {documents} documents, not {n}"));
    }
    Ok((cost.wall, cost.peak_rss_kib))
}

/// Runs `op` as its plan says. Read operations get three untimed warm-up
/// requests first (prepared statements, page cache).
fn sample(op: Op, mut run: impl FnMut(usize) -> Result<Duration, String>) -> Result<Vec<Duration>, String> {
    let (min, max, budget) = op.plan();
    if !matches!(op, Op::Create | Op::CreateLinked) {
        for i in 0..3 {
            run(i)?;
        }
    }
    let t = Instant::now();
    let mut samples = Vec::with_capacity(max);
    while samples.len() < max && (samples.len() < min || t.elapsed() < budget) {
        samples.push(run(samples.len())?);
    }
    Ok(samples)
}

fn migrate(daemon: &Daemon, n: usize, to: &str, url: &str) -> Result<Duration, String> {
    let request = match to {
        "hybrid" => Request::Migrate { target: BackendTarget::Hybrid },
        "database" => Request::Migrate { target: BackendTarget::Database(DatabaseKind::Sqlite) },
        "postgresql" => {
            Request::MigrateTo { target: BackendTarget::Database(DatabaseKind::Postgresql), url: Some(url.to_owned()) }
        }
        _ => Request::Migrate { target: BackendTarget::File },
    };
    let mut c = daemon.client();
    let t = Instant::now();
    match c.request(request) {
        Ok(Response::Migrated(report)) if report.milestones == n as u64 => Ok(t.elapsed()),
        Ok(Response::Migrated(report)) => Err(format!("{} milestones migrated, {n} expected", report.milestones)),
        Ok(other) => Err(format!("unexpected answer {other:?}")),
        Err(e) => Err(e.to_string()),
    }
}

type Total = fn(&Figures) -> Option<u64>;

/// Every backend must see the same milestones: same matches for the same
/// query.
fn compare_totals(n: usize, backends: &[Figures], anomalies: &mut Vec<String>) {
    let list: Total = |f| f.list_total;
    let search: Total = |f| f.search_total;
    let stats: Total = |f| f.stats_total;
    for (what, get) in [("list", list), ("search", search), ("stats total", stats)] {
        let seen: Vec<String> =
            backends.iter().zip(BACKENDS).filter_map(|(f, b)| get(f).map(|t| format!("{b} {t}"))).collect();
        let values: Vec<u64> = backends.iter().filter_map(get).collect();
        if values.windows(2).any(|w| w[0] != w[1]) {
            anomalies.push(format!(
                "{} milestones: {what} matches differ between backends: {}",
                fmt_int(n),
                seen.join(", ")
            ));
        }
    }
}

// ---------------------------------------------------------------------------
// Report

fn mib(kib: Option<u64>) -> String {
    kib.map_or("—".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
}

fn scale_table(scale: &Scale) -> String {
    let cell = |b: usize, f: &dyn Fn(&Figures) -> String| scale.backends.get(b).map_or("—".into(), f);
    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    let mut row = |what: String, f: &dyn Fn(&Figures) -> String| {
        rows.push((what, (0..BACKENDS.len()).map(|b| cell(b, f)).collect()))
    };
    row(format!("start-up to serving (median of {STARTS}; min–max)"), &|f| {
        if f.starts.is_empty() {
            return "failed".into();
        }
        let mut s = f.starts.clone();
        s.sort();
        format!("{:.0} ms ({:.0}–{:.0})", ms(s[s.len() / 2]), ms(s[0]), ms(s[s.len() - 1]))
    });
    row("RSS after start-up".into(), &|f| mib(f.rss_kib));
    row("peak RSS after the measurements (VmHWM)".into(), &|f| mib(f.peak_kib));
    for op in OPS {
        let mut label = op.label().to_owned();
        let total = |get: Total| scale.backends.iter().find_map(get);
        match op {
            Op::List => {
                label += &total(|f| f.list_total).map_or(String::new(), |t| format!(", {} match", fmt_int(t as usize)))
            }
            Op::Search => {
                label +=
                    &total(|f| f.search_total).map_or(String::new(), |t| format!(", {} match", fmt_int(t as usize)))
            }
            _ => {}
        }
        row(label, &move |f| match f.ops.iter().find(|(o, _)| *o == op) {
            Some((_, Ok(samples))) => percentiles(samples),
            Some((_, Err(e))) => format!("failed: {}", e.replace('|', "/")),
            None => "—".into(),
        });
    }
    row("`msctl export --format yaml` of every milestone, whole process: wall time · msctl's peak RSS".into(), &|f| {
        match &f.export {
            Some(Ok((wall, kib))) => format!("{:.2} s · {}", wall.as_secs_f64(), mib(Some(*kib))),
            Some(Err(_)) => "failed".into(),
            None => "—".into(),
        }
    });
    row("migration into this backend (client wall time)".into(), &|f| match &f.migration {
        Some(Ok(wall)) => format!("{:.2} s", wall.as_secs_f64()),
        Some(Err(_)) => "failed".into(),
        None => "—".into(),
    });
    let mut t = format!(
        "### {} milestones ({:.1} MiB of YAML, {:.2} KiB per file)\n\n| operation | {} |\n| --- |{}\n",
        fmt_int(scale.n),
        scale.yaml_bytes as f64 / 1048576.0,
        scale.yaml_bytes as f64 / scale.n as f64 / 1024.0,
        HEADINGS.join(" | "),
        " --- |".repeat(BACKENDS.len()),
    );
    for (what, cells) in rows {
        let _ = writeln!(t, "| {what} | {} |", cells.join(" | "));
    }
    t
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Two figures closer than this factor count as a tie.
const TIE: f64 = 1.2;

/// Sentences computed from the figures of this run: for each pair of
/// backends, which one is ahead at each scale and where that changes, plus
/// how each backend's p50 grows from the smallest to the largest scale.
fn reading(scales: &[Scale]) -> String {
    let mut out = format!(
        "### Reading the figures\n\nComputed from the tables above, p50 against p50; figures within {:.0}% of each other count as a tie.\n\n",
        (TIE - 1.0) * 100.0
    );
    for op in OPS {
        let p50 = move |f: &Figures| f.samples(op).map(|x| percentile(x, 0.5).as_secs_f64());
        let mut line = format!("- {}: {}", op.short(), compare(scales, &p50, "faster"));
        if let (Some(first), Some(last)) = (scales.first(), scales.last()) {
            let growth: Vec<String> = (0..BACKENDS.len())
                .filter_map(|b| {
                    Some(format!("{} {:.1}x", BACKENDS[b], p50(last.backends.get(b)?)? / p50(first.backends.get(b)?)?))
                })
                .collect();
            if !growth.is_empty() && first.n != last.n {
                let _ =
                    write!(line, " Growth from {} to {}: {}.", fmt_int(first.n), fmt_int(last.n), growth.join(", "));
            }
        }
        out.push_str(&line);
        out.push('\n');
    }
    let startup = |f: &Figures| {
        let mut s = f.starts.clone();
        s.sort();
        s.get(s.len() / 2).map(Duration::as_secs_f64)
    };
    let _ = writeln!(out, "- start-up (median): {}", compare(scales, &startup, "faster"));
    let _ = writeln!(out, "- RSS after start-up: {}", compare(scales, &|f| f.rss_kib.map(|k| k as f64), "smaller"));
    out
}

/// Compares every pair of backends on `value` (lower is better) across the
/// scales: one sentence per pair.
fn compare(scales: &[Scale], value: &dyn Fn(&Figures) -> Option<f64>, better: &str) -> String {
    let mut sentences = Vec::new();
    let pairs = (0..BACKENDS.len()).flat_map(|a| (a + 1..BACKENDS.len()).map(move |b| (a, b)));
    for (a, b) in pairs {
        // Per scale: the scale, the backend ahead (None for a tie), by how much.
        let per_scale: Vec<(usize, Option<usize>, f64)> = scales
            .iter()
            .filter_map(|s| {
                let (x, y) = (value(s.backends.get(a)?)?, value(s.backends.get(b)?)?);
                let (ahead, ratio) = if x <= y { (a, y / x) } else { (b, x / y) };
                Some((s.n, (ratio >= TIE).then_some(ahead), ratio))
            })
            .collect();
        if per_scale.is_empty() {
            continue;
        }
        let (lo, hi) = per_scale.iter().fold((f64::MAX, 0f64), |(lo, hi), p| (lo.min(p.2), hi.max(p.2)));
        let first = per_scale[0].1;
        let sentence = if per_scale.iter().all(|p| p.1 == first) {
            match first {
                None => format!("{} and {} tie at every scale", BACKENDS[a], BACKENDS[b]),
                Some(w) => {
                    let l = if w == a { b } else { a };
                    let by = if format!("{lo:.1}") == format!("{hi:.1}") {
                        format!("{hi:.1}x")
                    } else {
                        format!("{lo:.1}x to {hi:.1}x")
                    };
                    format!("{} is {better} than {} at every scale ({by})", BACKENDS[w], BACKENDS[l])
                }
            }
        } else {
            let steps: Vec<String> = per_scale
                .iter()
                .map(|(n, w, r)| match w {
                    None => format!("tie at {}", fmt_int(*n)),
                    Some(w) => format!("{} {r:.1}x {better} at {}", BACKENDS[*w], fmt_int(*n)),
                })
                .collect();
            let mut notes = Vec::new();
            for pair in per_scale.windows(2) {
                let between = format!("between {} and {}", fmt_int(pair[0].0), fmt_int(pair[1].0));
                match (pair[0].1, pair[1].1) {
                    (Some(x), Some(y)) if x != y => {
                        notes.push(format!("crossover {between}: {} overtakes {}", BACKENDS[y], BACKENDS[x]))
                    }
                    (None, Some(y)) => notes.push(format!("{} pulls ahead {between}", BACKENDS[y])),
                    (Some(x), None) => notes.push(format!("{}'s lead disappears {between}", BACKENDS[x])),
                    _ => {}
                }
            }
            format!("{} vs {}: {} ({})", BACKENDS[a], BACKENDS[b], steps.join(", "), notes.join("; "))
        };
        sentences.push(sentence);
    }
    format!("{}.", sentences.join("; "))
}

fn report(scales: &[Scale], anomalies: &[String], took: Duration) {
    let loads: Vec<f64> = scales.iter().flat_map(|s| s.load.iter().copied()).collect();
    let load = match (loads.iter().copied().reduce(f64::min), loads.iter().copied().reduce(f64::max)) {
        (Some(lo), Some(hi)) => format!(" 1-minute load average before each backend's measurements: {lo:.2}–{hi:.2}."),
        _ => String::new(),
    };
    let mut body = String::new();
    for s in scales {
        body.push_str(&scale_table(s));
        body.push('\n');
    }
    body.push_str(&reading(scales));
    if !anomalies.is_empty() {
        body.push_str("\n### Anomalies on this run\n\n");
        for a in anomalies {
            let _ = writeln!(body, "- {a}");
        }
    }
    println!("{body}\nrun time {:.1} min", took.as_secs_f64() / 60.0);
    let (read_min, read_max, read_budget) = Op::List.plan();
    let (get_min, get_max, get_budget) = Op::Get.plan();
    let (create_min, create_max, create_budget) = Op::Create.plan();
    let section = format!(
        "## Storage backends\n\n\
         Machine: {} Release build. Run time: {:.1} min.{load}\n\n\
         Command: `{COMMAND}`\n\n\
         Each scale is a generated project (about 1 KB per milestone: 30% planning, 30% in progress, 10% blocked, \
         30% completed; 0–5 tasks; 0–2 `requires` on earlier milestones; every 100th title mentions Kubernetes) \
         measured on `file`, then migrated to `hybrid` (the daemon restarted), then to `database` on SQLite (restarted), \
         then to `database` on PostgreSQL (restarted; a local server the benchmark starts with `initdb`, fsync on, \
         reached by its Unix socket). \
         One in-process client, one request at a time. Read operations: 3 warm-up requests, then at least {read_min} and \
         up to {read_max} requests or {}s (`get`: {get_min}–{get_max} or {}s); each `create` kind: {create_min}–{create_max} or {}s, \
         durable, purged afterwards so every backend is measured on the same milestones. Start-up is spawn to the first \
         successful handshake, with the files in the page cache. n is shown where fewer than 100 samples were taken.\n\n\
         {body}",
        machine(),
        took.as_secs_f64() / 60.0,
        read_budget.as_secs(),
        get_budget.as_secs(),
        create_budget.as_secs(),
    );
    write_section("backends", &section);
}
