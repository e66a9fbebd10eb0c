//! `RequestMetrics`: what the daemon measures of its own requests, for the
//! scale monitor: latency per request kind, reads and writes per minute
//! over the last hour, and who made them. Recording is a short critical
//! section (a push into a bounded ring, two counters), so measuring costs
//! the requests nothing they would notice.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Latencies kept per request kind.
const KEPT: usize = 1_024;

/// Per-minute buckets kept (an hour).
const MINUTES: usize = 60;

#[derive(Default)]
pub struct RequestMetrics {
    inner: Mutex<Inner>,
}

struct Inner {
    started: Instant,
    kinds: HashMap<&'static str, Samples>,
    /// (minute since start, reads, writes), newest last.
    minutes: VecDeque<(u64, u64, u64)>,
    /// Each user's latest request.
    users: HashMap<String, Instant>,
}

impl Default for Inner {
    fn default() -> Self {
        Inner { started: Instant::now(), kinds: HashMap::new(), minutes: VecDeque::new(), users: HashMap::new() }
    }
}

#[derive(Default)]
struct Samples {
    count: u64,
    recent: VecDeque<Duration>,
}

/// Figures over the last hour and the latencies kept.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestFigures {
    pub users_last_hour: Vec<String>,
    pub writes_last_hour: u64,
    pub reads_per_minute: f64,
    pub writes_per_second: f64,
    /// By kind name.
    pub latencies: Vec<KindLatency>,
    /// The mean latency of the reads that query (list, search, stats,
    /// deps), for the slow-query rule.
    pub mean_query: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct KindLatency {
    pub kind: String,
    pub count: u64,
    /// p50, p90, p95, p99 of the latencies kept.
    pub percentiles: [Duration; 4],
    pub mean: Duration,
}

/// Request kinds that read many milestones.
const QUERIES: &[&str] = &["list", "stats", "deps", "validate"];

impl RequestMetrics {
    /// Records one request.
    pub fn record(&self, kind: &'static str, user: &str, took: Duration, writes: bool) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let minute = now.duration_since(inner.started).as_secs() / 60;
        match inner.minutes.back_mut() {
            Some(last) if last.0 == minute => {
                if writes {
                    last.2 += 1
                } else {
                    last.1 += 1
                }
            }
            _ => {
                inner.minutes.push_back((minute, u64::from(!writes), u64::from(writes)));
                while inner.minutes.len() > MINUTES {
                    inner.minutes.pop_front();
                }
            }
        }
        let samples = inner.kinds.entry(kind).or_default();
        samples.count += 1;
        if samples.recent.len() == KEPT {
            samples.recent.pop_front();
        }
        samples.recent.push_back(took);
        if let Some(seen) = inner.users.get_mut(user) {
            *seen = now;
        } else {
            inner.users.insert(user.to_owned(), now);
        }
    }

    pub fn figures(&self) -> RequestFigures {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let hour = Duration::from_secs(3600);
        inner.users.retain(|_, seen| now.duration_since(*seen) < hour);
        let minute = now.duration_since(inner.started).as_secs() / 60;
        let recent = |within: u64| inner.minutes.iter().filter(move |m| minute - m.0 < within);
        let (reads, writes) = recent(60).fold((0, 0), |(r, w), m| (r + m.1, w + m.2));
        let writes_last_minute: u64 = recent(1).map(|m| m.2).sum();
        // Over the time actually observed, for a daemon younger than an hour.
        let observed_minutes = (now.duration_since(inner.started).as_secs_f64() / 60.0).clamp(1.0, 60.0);
        let into_minute = (now.duration_since(inner.started).as_secs_f64() % 60.0).max(1.0);
        let mut users: Vec<String> = inner.users.keys().cloned().collect();
        users.sort();
        let mut latencies: Vec<KindLatency> = inner
            .kinds
            .iter()
            .map(|(kind, s)| {
                let mut sorted: Vec<Duration> = s.recent.iter().copied().collect();
                sorted.sort();
                let at = |q: f64| sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)];
                KindLatency {
                    kind: (*kind).to_owned(),
                    count: s.count,
                    percentiles: [at(0.50), at(0.90), at(0.95), at(0.99)],
                    mean: sorted.iter().sum::<Duration>() / sorted.len().max(1) as u32,
                }
            })
            .collect();
        latencies.sort_by(|a, b| a.kind.cmp(&b.kind));
        let query: Vec<Duration> =
            QUERIES.iter().filter_map(|k| inner.kinds.get(k)).flat_map(|s| s.recent.iter().copied()).collect();
        let mean_query = (!query.is_empty()).then(|| query.iter().sum::<Duration>() / query.len() as u32);
        RequestFigures {
            users_last_hour: users,
            writes_last_hour: writes,
            reads_per_minute: reads as f64 / observed_minutes,
            writes_per_second: writes_last_minute as f64 / into_minute.min(60.0),
            latencies,
            mean_query,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_users_rates_and_percentiles() {
        let m = RequestMetrics::default();
        for i in 1..=100u64 {
            m.record("get", if i % 2 == 0 { "ada" } else { "bo" }, Duration::from_millis(i), false);
        }
        m.record("update", "cy", Duration::from_millis(5), true);
        let f = m.figures();
        assert_eq!(f.users_last_hour, ["ada", "bo", "cy"]);
        assert_eq!(f.writes_last_hour, 1);
        assert!((f.reads_per_minute - 100.0).abs() < 1e-9, "{f:?}");
        let get = f.latencies.iter().find(|l| l.kind == "get").unwrap();
        assert_eq!(get.count, 100);
        assert_eq!(get.percentiles, [51, 91, 96, 100].map(Duration::from_millis));
        assert_eq!(get.mean, Duration::from_micros(50_500));
        assert_eq!(f.mean_query, None, "get is not a query");
    }
}
