//! Generated projects for the benchmarks: about 1 KB per milestone (30%
//! planning, 30% in progress, 10% blocked, 30% completed; 0–5 tasks; 0–2
//! `requires` on earlier milestones; every 100th title mentions
//! Kubernetes), deterministic for a given size.

use std::fmt::Write as _;
use std::ops::RangeInclusive;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::Project;

/// Writes `n` milestone files straight into `.milestones/active/` and
/// `completed/`; returns their total size.
pub fn generate(project: &Project, n: usize) -> u64 {
    let ms = project.milestones();
    for dir in ["active", "completed", "logs", "config"] {
        std::fs::create_dir_all(ms.join(dir)).unwrap();
    }
    let mut rng = Rng::new(0x6d696c65 ^ n as u64);
    let mut bytes = 0;
    for i in 1..=n {
        let yaml = milestone_yaml(i, n, 0..=2, &mut rng, false);
        let folder = if yaml.contains("\nstatus: \"completed\"") { "completed" } else { "active" };
        bytes += yaml.len() as u64;
        std::fs::write(ms.join(folder).join(format!("{}.yaml", milestone_id(i))), yaml).unwrap();
    }
    bytes
}

pub fn milestone_id(i: usize) -> String {
    format!("milestone-{i:06}")
}

const ADJECTIVES: &[&str] = &[
    "Faster",
    "Resilient",
    "Unified",
    "Incremental",
    "Secure",
    "Streamlined",
    "Modular",
    "Observable",
    "Portable",
    "Automated",
    "Simplified",
    "Scalable",
];
const NOUNS: &[&str] = &[
    "billing",
    "search",
    "onboarding",
    "checkout",
    "reporting",
    "auth",
    "storage",
    "notification",
    "export",
    "sync",
    "scheduler",
    "dashboard",
    "payments",
    "audit",
    "cache",
    "gateway",
];
const THINGS: &[&str] =
    &["pipeline", "service", "API", "workflow", "module", "layer", "backend", "client", "index", "queue"];
const VERBS: &[&str] =
    &["Rework", "Replace", "Harden", "Document", "Profile", "Split", "Migrate", "Simplify", "Measure", "Redesign"];
const TEAMS: &[&str] = &["platform", "payments", "growth", "infra", "mobile", "data", "web", "security"];
const PEOPLE: &[&str] = &["alice", "bruno", "chen", "dana", "emeka", "farah", "goran", "hana", "ivan", "jun"];
const CATEGORIES: &[&str] = &[
    "feature",
    "bugfix",
    "infrastructure",
    "documentation",
    "security",
    "performance",
    "refactoring",
    "testing",
    "release",
    "research",
];
const PRIORITIES: &[&str] = &["low", "medium", "high", "critical"];
const TASK_STATUSES: &[&str] = &["pending", "in_progress", "completed"];
const DAY: u64 = 86_400;

/// A document of about 1 KB. Every 100th title mentions Kubernetes (the
/// search target). Statuses: 30% planning, 30% in progress, 10% blocked, 30%
/// completed. It requires a number of milestones in `requires`, picked among
/// earlier ids of the first `base` milestones, so there are no cycles. A
/// `fresh` document is what a user creates: planning or in progress, no
/// timestamps (the daemon sets them).
pub fn milestone_yaml(i: usize, base: usize, requires: RangeInclusive<u64>, rng: &mut Rng, fresh: bool) -> String {
    let pick = |rng: &mut Rng, list: &[&'static str]| list[rng.below(list.len() as u64) as usize];
    let noun = pick(rng, NOUNS);
    let thing = pick(rng, THINGS);
    let title = if i.is_multiple_of(100) {
        format!("{} {noun} {thing} on Kubernetes", pick(rng, ADJECTIVES))
    } else {
        format!("{} {noun} {thing}", pick(rng, ADJECTIVES))
    };
    let team = pick(rng, TEAMS);
    let description = format!(
        "{} the {noun} {thing} so that the {team} team can ship changes without waiting on a release train. \
         {} the {} {} first, then {} the {} {} behind a flag and compare error rates for two weeks before \
         the old path is removed.",
        pick(rng, VERBS),
        pick(rng, VERBS),
        pick(rng, NOUNS),
        pick(rng, THINGS),
        pick(rng, VERBS).to_lowercase(),
        pick(rng, NOUNS),
        pick(rng, THINGS),
    );
    let roll = rng.below(10);
    let status = match (fresh, roll) {
        (true, 0..=4) | (false, 0..=2) => "planning",
        (true, _) | (false, 3..=5) => "in_progress",
        (false, 6) => "blocked",
        (false, _) => "completed",
    };
    let now = unix_now();
    let created = now - rng.below(90 * DAY);
    let updated = created + rng.below(now - created + 1);

    let mut y = String::with_capacity(1_400);
    let _ = writeln!(y, "id: \"{}\"", milestone_id(i));
    let _ = writeln!(y, "title: \"{title}\"");
    let _ = writeln!(y, "description: \"{description}\"");
    let _ = writeln!(y, "status: \"{status}\"");
    let _ = writeln!(y, "priority: \"{}\"", pick(rng, PRIORITIES));
    let _ = writeln!(y, "category: \"{}\"", pick(rng, CATEGORIES));
    if !fresh {
        let _ = writeln!(y, "created_at: \"{}\"", rfc3339(created));
        let _ = writeln!(y, "updated_at: \"{}\"", rfc3339(updated));
        if status == "completed" {
            let _ = writeln!(y, "completed_at: \"{}\"", rfc3339(updated));
        }
    }
    let _ = writeln!(y, "owner:\n  team: \"{team}\"\n  lead: \"{}\"", pick(rng, PEOPLE));
    let start = created + rng.below(7 * DAY);
    let _ = writeln!(
        y,
        "timeline:\n  estimated_start: \"{}\"\n  estimated_end: \"{}\"\n  estimated_hours: {}",
        &rfc3339(start)[..10],
        &rfc3339(start + (7 + rng.below(50)) * DAY)[..10],
        8 * (1 + rng.below(20)),
    );
    let tasks = rng.below(6);
    let mut done = 0;
    let mut task_yaml = String::new();
    for t in 1..=tasks {
        let task_status = match status {
            "completed" => "completed",
            "planning" => "pending",
            _ => pick(rng, TASK_STATUSES),
        };
        done += u64::from(task_status == "completed");
        let _ = write!(
            task_yaml,
            "\n  - id: \"task-{t}\"\n    title: \"{} the {} {}\"\n    status: \"{task_status}\"",
            pick(rng, VERBS),
            pick(rng, NOUNS),
            pick(rng, THINGS)
        );
    }
    let percentage = (done * 100).checked_div(tasks).unwrap_or(0);
    let _ = writeln!(y, "progress:\n  percentage: {percentage}\n  tasks_completed: {done}\n  total_tasks: {tasks}");
    if tasks == 0 {
        let _ = writeln!(y, "tasks: []");
    } else {
        let _ = writeln!(y, "tasks:{task_yaml}");
    }
    let earlier = i.min(base + 1) - 1;
    let wanted = (requires.start() + rng.below(requires.end() - requires.start() + 1)) as usize;
    let wanted = wanted.min(earlier);
    let mut requires: Vec<String> = Vec::new();
    while requires.len() < wanted {
        let dep = milestone_id(1 + rng.below(earlier as u64) as usize);
        if !requires.contains(&dep) {
            requires.push(dep);
        }
    }
    let quoted: Vec<String> = requires.iter().map(|r| format!("\"{r}\"")).collect();
    let _ = writeln!(y, "dependencies:\n  requires: [{}]\n  enables: []", quoted.join(", "));
    y
}

/// SplitMix64: small, deterministic, good enough for test data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..bound` (`bound` > 0).
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// `YYYY-MM-DDTHH:MM:SSZ` for seconds since the epoch (Hinnant's
/// civil-from-days).
fn rfc3339(secs: u64) -> String {
    let days = (secs / DAY) as i64;
    let rem = secs % DAY;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3_600, rem % 3_600 / 60, rem % 60)
}

/// `1,000,000`.
pub fn fmt_int(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
