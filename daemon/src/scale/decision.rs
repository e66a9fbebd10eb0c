//! The scale decision, as pure functions of the figures: seed 001's
//! complexity score, seed 004's optimal backend (thresholds from
//! `storage-config.yaml`, slow queries forcing an upgrade), seed 002's
//! downscale rule (one tier at a time, only once the project is under half
//! the thresholds that brought it up: no flapping around a threshold), and
//! seed 004's migration confidence.

use std::time::Duration;

use milestones_protocol::Thresholds;

/// The tiers, smallest first, as `storage-backend.txt` names them.
pub const TIERS: [&str; 3] = ["file", "hybrid", "database"];

/// What the decision is made from.
#[derive(Debug, Clone, PartialEq)]
pub struct Figures {
    pub milestones: u64,
    pub users: u64,
    pub dependencies: u64,
    pub dependency_depth: u64,
    pub data_bytes: u64,
    pub queries_per_minute: f64,
    pub writes_per_second: f64,
    /// The mean latency of queries lately, for the slow-query rule.
    pub mean_query: Option<Duration>,
}

/// How query latency has moved over the last monitor cycles (seed 004).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trend {
    Degrading,
    StableSlow,
    StableNormal,
    StableFast,
    Unknown,
}

impl Trend {
    /// From the mean query latencies (ms) of recent cycles, oldest first:
    /// the newer half against the older half.
    pub fn of(recent: &[f64]) -> Trend {
        if recent.len() < 2 {
            return Trend::Unknown;
        }
        let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len() as f64;
        let (older, newer) = recent.split_at(recent.len() / 2);
        let (older, newer) = (mean(older), mean(newer));
        if newer > older * 1.2 {
            Trend::Degrading
        } else if newer > 500.0 {
            Trend::StableSlow
        } else if newer < 100.0 {
            Trend::StableFast
        } else {
            Trend::StableNormal
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub optimal: &'static str,
    pub reason: String,
    /// 0–100; 0 when the current backend is optimal.
    pub confidence: u64,
}

/// Seed 001's complexity score. Its coordination complexity is taken as
/// the dependencies per milestone.
pub fn complexity(f: &Figures) -> f64 {
    let coordination = if f.milestones == 0 { 0.0 } else { f.dependencies as f64 / f.milestones as f64 };
    f.milestones as f64 * 2.0
        + f.dependency_depth as f64 * 5.0
        + f.users as f64 * 3.0
        + f.data_bytes as f64 / (1024.0 * 1024.0) / 10.0
        + coordination * 10.0
        + f.queries_per_minute * 1.5
        + f.writes_per_second * 2.0
}

/// The backend the figures call for, from `current` (a name of [`TIERS`]),
/// and the confidence of moving there.
pub fn decide(current: &str, f: &Figures, t: &Thresholds, on_current: Duration, trend: Trend) -> Decision {
    let here = TIERS.iter().position(|b| *b == current).unwrap_or(0);
    let (mut wanted, mut reason) = if f.milestones >= t.hybrid_to_database_milestones {
        (2, format!("{} milestones, at or over {}", f.milestones, t.hybrid_to_database_milestones))
    } else if f.users >= t.hybrid_to_database_users {
        (2, format!("{} users in the last hour, at or over {}", f.users, t.hybrid_to_database_users))
    } else if f.milestones >= t.file_to_hybrid_milestones {
        (1, format!("{} milestones, at or over {}", f.milestones, t.file_to_hybrid_milestones))
    } else if f.users >= t.file_to_hybrid_users {
        (1, format!("{} users in the last hour, at or over {}", f.users, t.file_to_hybrid_users))
    } else {
        (0, format!("{} milestones and {} users, under every threshold", f.milestones, f.users))
    };
    // Slow queries force an upgrade (seed 004).
    let slow = f.mean_query.map_or(0.0, |d| d.as_secs_f64() * 1e3);
    if slow > 1000.0 && wanted < 2 && here < 2 {
        (wanted, reason) = (2, format!("queries take {slow:.0} ms on average, over 1000 ms"));
    } else if slow > 500.0 && wanted < 1 && here == 0 {
        (wanted, reason) = (1, format!("queries take {slow:.0} ms on average, over 500 ms"));
    }
    if wanted < here {
        // Down one tier, and only well under the thresholds that brought
        // the project up (seed 002).
        let (milestones, users) = match here {
            2 => (t.hybrid_to_database_milestones, t.hybrid_to_database_users),
            _ => (t.file_to_hybrid_milestones, t.file_to_hybrid_users),
        };
        if f.milestones < milestones / 2 && f.users < users / 2 {
            wanted = here - 1;
            reason = format!(
                "{} milestones and {} users, under half of {milestones} and {users}: scale down",
                f.milestones, f.users
            );
        } else {
            wanted = here;
        }
    }
    if wanted == here {
        return Decision { optimal: TIERS[here], reason: format!("{reason}: {} fits", TIERS[here]), confidence: 0 };
    }
    Decision { optimal: TIERS[wanted], reason, confidence: confidence(here, wanted, f, t, on_current, trend) }
}

/// Seed 004's confidence: time on the current backend, how far past the
/// threshold the project is, and the performance trend.
fn confidence(here: usize, wanted: usize, f: &Figures, t: &Thresholds, on_current: Duration, trend: Trend) -> u64 {
    let mut score: i64 = 0;
    let hours = on_current.as_secs() / 3600;
    score += match hours {
        h if h > 24 => 30,
        h if h > 2 => 15,
        _ => 0,
    };
    // Overage, by milestones or by users, whichever is further.
    let over = |value: u64, threshold: u64| value as i64 - threshold as i64;
    let (past, steps) = if wanted > here {
        match wanted {
            2 => (
                over(f.milestones, t.hybrid_to_database_milestones).max(over(f.users, t.hybrid_to_database_users)),
                [25, 10],
            ),
            _ => (over(f.milestones, t.file_to_hybrid_milestones).max(over(f.users, t.file_to_hybrid_users)), [10, 5]),
        }
    } else {
        let half = match here {
            2 => t.hybrid_to_database_milestones / 2,
            _ => t.file_to_hybrid_milestones / 2,
        };
        (half as i64 - f.milestones as i64, [10, 5])
    };
    score += match past {
        p if p > steps[0] => 40,
        p if p > steps[1] => 25,
        p if p > 0 => 15,
        _ => 0,
    };
    score += match trend {
        Trend::Degrading => 30,
        Trend::StableSlow => 20,
        Trend::StableFast => -10,
        Trend::StableNormal | Trend::Unknown => 0,
    };
    score.clamp(0, 100) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Thresholds = Thresholds {
        file_to_hybrid_milestones: 25,
        hybrid_to_database_milestones: 100,
        file_to_hybrid_users: 5,
        hybrid_to_database_users: 20,
    };

    fn figures(milestones: u64, users: u64) -> Figures {
        Figures {
            milestones,
            users,
            dependencies: 0,
            dependency_depth: 0,
            data_bytes: 0,
            queries_per_minute: 0.0,
            writes_per_second: 0.0,
            mean_query: None,
        }
    }

    const DAY: Duration = Duration::from_secs(25 * 3600);

    #[test]
    fn thresholds_pick_the_tier_and_confidence_grows_with_time_and_overage() {
        let up = decide("file", &figures(40, 1), &T, DAY, Trend::Unknown);
        assert_eq!((up.optimal, up.confidence), ("hybrid", 70));
        let fresh = decide("file", &figures(26, 1), &T, Duration::ZERO, Trend::Unknown);
        assert_eq!((fresh.optimal, fresh.confidence), ("hybrid", 15));
        let degrading = decide("file", &figures(26, 1), &T, DAY, Trend::Degrading);
        assert_eq!(degrading.confidence, 75);
        assert_eq!(decide("file", &figures(3, 30), &T, DAY, Trend::Unknown).optimal, "database", "users count too");
        assert_eq!(decide("hybrid", &figures(60, 1), &T, DAY, Trend::Unknown).optimal, "hybrid");
    }

    #[test]
    fn slow_queries_force_an_upgrade() {
        let mut f = figures(3, 1);
        f.mean_query = Some(Duration::from_millis(700));
        assert_eq!(decide("file", &f, &T, DAY, Trend::Unknown).optimal, "hybrid");
        f.mean_query = Some(Duration::from_millis(1500));
        assert_eq!(decide("hybrid", &f, &T, DAY, Trend::Unknown).optimal, "database");
    }

    #[test]
    fn scaling_down_waits_for_half_the_threshold_and_goes_one_tier() {
        assert_eq!(decide("database", &figures(60, 1), &T, DAY, Trend::Unknown).optimal, "database");
        let down = decide("database", &figures(10, 1), &T, DAY, Trend::Unknown);
        assert_eq!(down.optimal, "hybrid", "{down:?}");
        assert_eq!(decide("hybrid", &figures(20, 1), &T, DAY, Trend::Unknown).optimal, "hybrid");
        assert_eq!(decide("hybrid", &figures(5, 1), &T, DAY, Trend::Unknown).optimal, "file");
    }

    #[test]
    fn trend_and_complexity() {
        assert_eq!(Trend::of(&[10.0, 10.0, 30.0, 30.0]), Trend::Degrading);
        assert_eq!(Trend::of(&[600.0, 600.0]), Trend::StableSlow);
        assert_eq!(Trend::of(&[20.0, 20.0]), Trend::StableFast);
        assert_eq!(Trend::of(&[1.0]), Trend::Unknown);
        let mut f = figures(10, 2);
        f.dependencies = 5;
        f.dependency_depth = 3;
        f.writes_per_second = 1.0;
        // 20 + 15 + 6 + 0 + 5 + 0 + 2
        assert!((complexity(&f) - 48.0).abs() < 1e-9);
    }
}
