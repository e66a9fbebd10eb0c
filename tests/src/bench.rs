//! What the benchmark harnesses share: percentiles, a description of the
//! machine, timing whole processes, and writing a section of
//! `BENCHMARKS.md` between its markers.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// The `q` quantile (0.0–1.0) of `samples`.
pub fn percentile(samples: &[Duration], q: f64) -> Duration {
    let mut s = samples.to_vec();
    s.sort();
    s[((s.len() as f64 * q) as usize).min(s.len() - 1)]
}

/// How many times longer `slower`'s median is than `faster`'s, for two
/// commands timed in the same run.
pub fn median_ratio(slower: &[Duration], faster: &[Duration]) -> f64 {
    percentile(slower, 0.5).as_secs_f64() / percentile(faster, 0.5).as_secs_f64()
}

/// A duration in the unit that reads best.
pub fn fmt_duration(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us >= 1e6 {
        format!("{:.2} s", us / 1e6)
    } else if us >= 1000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else {
        format!("{us:.1} µs")
    }
}

/// `p50 … · p99 …`, with the sample count when under 100.
pub fn percentiles(samples: &[Duration]) -> String {
    let few = if samples.len() < 100 { format!(" (n={})", samples.len()) } else { String::new() };
    format!("p50 {} · p99 {}{few}", fmt_duration(percentile(samples, 0.50)), fmt_duration(percentile(samples, 0.99)))
}

/// `N cores, CPU model. Date: YYYY-MM-DD.`
pub fn machine() -> String {
    let host = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let date = Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    format!("{cores} cores, {host}. Date: {date}.")
}

/// Replaces the section between `<!-- NAME:start -->` and `<!-- NAME:end -->`
/// in BENCHMARKS.md with `body` (appending it when absent).
pub fn write_section(name: &str, body: &str) {
    let (start, end) = (format!("<!-- {name}:start -->"), format!("<!-- {name}:end -->"));
    let section = format!("{start}\n{body}{end}\n");
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../BENCHMARKS.md");
    let current = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        "# Benchmarks\n\nFigures written by the benchmark harnesses; each section names the command that produced it.\n\n".into()
    });
    let updated = match (current.find(&start), current.find(&end)) {
        (Some(a), Some(b)) if a < b => {
            let after = (b + end.len() + 1).min(current.len());
            format!("{}{section}{}", &current[..a], &current[after..])
        }
        _ => format!("{current}\n{section}"),
    };
    std::fs::write(&path, updated).expect("write BENCHMARKS.md");
    println!("written to {}", path.display());
}

/// What a whole process took: its exit status, its wall time and its peak
/// resident memory.
pub struct ProcessCost {
    pub status: std::process::ExitStatus,
    pub wall: Duration,
    pub peak_rss_kib: u64,
}

/// Runs `command` to its end and measures it. The peak is the process's
/// own high-water mark (`VmHWM`), read every few milliseconds while it
/// runs: `wait4`'s figure would also count the pages of this process,
/// which the child shares until it starts the program.
pub fn run_measured(command: &mut Command) -> std::io::Result<ProcessCost> {
    let start = std::time::Instant::now();
    let mut child = command.spawn()?;
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_rss_kib = 0;
    let status = loop {
        // `spawn` returns once the program has started: this is its memory.
        // Once it has exited the line is gone, and the last reading stands.
        let text = std::fs::read_to_string(&status_file).unwrap_or_default();
        let hwm = text.lines().find_map(|l| l.strip_prefix("VmHWM:"));
        if let Some(kib) = hwm.and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok()) {
            peak_rss_kib = kib;
        }
        if let Some(status) = child.try_wait()? {
            break status;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Ok(ProcessCost { status, wall: start.elapsed(), peak_rss_kib })
}

/// Runs `command` to its end, its output read and dropped; its wall time.
/// A command that fails stops the benchmark: its time would mean nothing.
pub fn timed(command: &mut Command) -> Duration {
    let t = std::time::Instant::now();
    let out = command.output().unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    let took = t.elapsed();
    assert!(out.status.success(), "{command:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    took
}

/// `msctl --root ROOT --no-autostart ARGS...`, as a user would type it.
pub fn msctl(root: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(crate::binary("msctl"));
    command.arg("--root").arg(root).arg("--no-autostart").args(args);
    command
}

/// Installs `package` when `program` is not on the PATH (the machine is
/// Debian-like; as root, or with password-less sudo).
pub fn ensure_installed(program: &str, package: &str) {
    let found = Command::new("sh").arg("-c").arg(format!("command -v {program}")).output();
    if found.is_ok_and(|o| o.status.success()) {
        return;
    }
    println!("installing {package} for {program}");
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let apt_get = |args: &[&str]| {
        let mut command = if root { Command::new("apt-get") } else { Command::new("sudo") };
        if !root {
            command.args(["-n", "apt-get"]);
        }
        command.env("DEBIAN_FRONTEND", "noninteractive").args(args).status().is_ok_and(|s| s.success())
    };
    // A fresh machine's package lists may be empty.
    let installed = apt_get(&["update", "-q"]) && apt_get(&["install", "-y", "-q", "--no-install-recommends", package]);
    assert!(installed, "cannot install {package} (needed for {program}); install it and run the benchmark again");
}

/// `msctl migrate BACKEND`, then waits until the old backend's files are
/// gone (they go after the answer): figures taken meanwhile would share
/// the disk and the cores with that clean-up.
pub fn migrate_and_settle(root: &Path, backend: &str) {
    timed(&mut msctl(root, &["migrate", backend]));
    crate::eventually("the migration's clean-up ends", Duration::from_secs(600), || {
        let out = msctl(root, &["migrate", "status", "--json"]).output().expect("msctl migrate status");
        String::from_utf8_lossy(&out.stdout).trim() == "null"
    });
}
