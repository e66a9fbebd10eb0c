//! Project analytics (seed 001's `getAnalytics`, seed 002's
//! `performance_metrics`): counts, completion times, dependency figures and
//! the daily trend, computed from documents.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use milestones_protocol::{Analytics, Count, DayCount, Map, Value};

use crate::graph::DependencyGraph;

/// How many days the trend covers, today included.
pub const TREND_DAYS: i64 = 30;

/// The three fields counted by value.
#[derive(Debug, Clone, Copy)]
pub enum Dimension {
    Status,
    Priority,
    Category,
}

impl Dimension {
    pub const ALL: [Dimension; 3] = [Dimension::Status, Dimension::Priority, Dimension::Category];

    pub fn field(self) -> &'static str {
        match self {
            Dimension::Status => "status",
            Dimension::Priority => "priority",
            Dimension::Category => "category",
        }
    }
}

/// Accumulates figures from whatever a backend can hand over (whole
/// documents, or rows from SQL aggregates), so every backend finishes them
/// the same way.
#[derive(Clone)]
pub struct AnalyticsBuilder {
    total: u64,
    counts: [BTreeMap<String, u64>; 3],
    durations: Vec<f64>,
    first_day: NaiveDate,
    per_day: BTreeMap<NaiveDate, (u64, u64)>,
    tasks_total: u64,
    tasks_completed: u64,
}

impl AnalyticsBuilder {
    pub fn new(today: NaiveDate) -> Self {
        let first_day = today - chrono::Duration::days(TREND_DAYS - 1);
        AnalyticsBuilder {
            total: 0,
            counts: Default::default(),
            durations: Vec::new(),
            first_day,
            per_day: (0..TREND_DAYS).map(|i| (first_day + chrono::Duration::days(i), (0, 0))).collect(),
            tasks_total: 0,
            tasks_completed: 0,
        }
    }

    /// The first day of the trend. A timestamp whose text sorts before this
    /// day minus two cannot fall in the trend whatever its UTC offset, which
    /// lets SQL backends skip older rows by comparing text.
    pub fn trend_cutoff(&self) -> String {
        (self.first_day - chrono::Duration::days(2)).to_string()
    }

    pub fn add_document(&mut self, doc: &Map) {
        self.total += 1;
        for dimension in Dimension::ALL {
            self.count(dimension, label(doc.get(dimension.field())), 1);
        }
        let (created, completed) = times(doc);
        self.add_times(created, completed);
        let (total, completed) = task_counts(doc);
        self.add_tasks(total, completed);
    }

    pub fn add_total(&mut self, n: u64) {
        self.total += n;
    }

    pub fn count(&mut self, dimension: Dimension, label: String, n: u64) {
        *self.counts[dimension as usize].entry(label).or_insert(0) += n;
    }

    /// One milestone's creation and completion times: its completion time
    /// and its place in the daily trend.
    pub fn add_times(&mut self, created: Option<&str>, completed: Option<&str>) {
        let created = created.and_then(parse_time);
        let completed = completed.and_then(parse_time);
        if let Some(days) = completion_days(created, completed) {
            self.durations.push(days);
        }
        if let Some(day) = created.and_then(|t| self.per_day.get_mut(&t.date_naive())) {
            day.0 += 1;
        }
        if let Some(day) = completed.and_then(|t| self.per_day.get_mut(&t.date_naive())) {
            day.1 += 1;
        }
    }

    /// Sorts the completion times now: a builder kept with only the times
    /// in it, and cloned for each answer, then finishes without sorting
    /// them again (sorting what is sorted is one pass).
    pub fn sort_times(&mut self) {
        self.durations.sort_by(f64::total_cmp);
    }

    pub fn add_tasks(&mut self, total: u64, completed: u64) {
        self.tasks_total += total;
        self.tasks_completed += completed;
    }

    pub fn finish(self, graph: &DependencyGraph) -> Analytics {
        let mut durations = self.durations;
        durations.sort_by(f64::total_cmp);
        let [by_status, by_priority, by_category] = self.counts;
        Analytics {
            total: self.total,
            completed: by_status.get("completed").copied().unwrap_or(0),
            by_status: counts(by_status),
            by_priority: counts(by_priority),
            by_category: counts(by_category),
            average_completion_days: (!durations.is_empty())
                .then(|| durations.iter().sum::<f64>() / durations.len() as f64),
            median_completion_days: median(&durations),
            tasks_total: self.tasks_total,
            tasks_completed: self.tasks_completed,
            dependencies: graph.figures(),
            per_day: self
                .per_day
                .into_iter()
                .map(|(date, (created, completed))| DayCount { date: date.to_string(), created, completed })
                .collect(),
        }
    }
}

/// A milestone's creation and completion timestamps, as written.
fn times(doc: &Map) -> (Option<&str>, Option<&str>) {
    let time = |field| doc.get(field).and_then(Value::as_str);
    (time("created_at"), time("completed_at"))
}

/// How long a milestone took, in days, when it has both times.
fn completion_days(created: Option<DateTime<Utc>>, completed: Option<DateTime<Utc>>) -> Option<f64> {
    Some((completed? - created?).num_seconds() as f64 / 86_400.0)
}

/// What `stats` needs of every milestone, kept as sums that a store updates
/// as milestones come and go, so that it answers `stats` without reading
/// every document again. Finished by [`AnalyticsTally::builder`] as
/// [`AnalyticsBuilder::add_document`] would have for each.
#[derive(Default)]
pub struct AnalyticsTally {
    total: i64,
    counts: [HashMap<String, i64>; 3],
    /// Completion times in days (by their bits: `f64` is not `Eq`).
    durations: HashMap<u64, i64>,
    /// Milestones created and completed on each (UTC) day.
    per_day: HashMap<NaiveDate, (i64, i64)>,
    tasks_total: i64,
    tasks_completed: i64,
}

impl AnalyticsTally {
    pub fn add(&mut self, doc: &Map) {
        self.apply(doc, 1);
    }

    pub fn remove(&mut self, doc: &Map) {
        self.apply(doc, -1);
    }

    fn apply(&mut self, doc: &Map, sign: i64) {
        fn tally<K: Eq + std::hash::Hash>(counts: &mut HashMap<K, i64>, key: K, n: i64) {
            use std::collections::hash_map::Entry;
            match counts.entry(key) {
                Entry::Occupied(mut held) => {
                    *held.get_mut() += n;
                    if *held.get() == 0 {
                        held.remove();
                    }
                }
                Entry::Vacant(empty) => {
                    empty.insert(n);
                }
            }
        }
        self.total += sign;
        for (dimension, counts) in Dimension::ALL.iter().zip(&mut self.counts) {
            tally(counts, label(doc.get(dimension.field())), sign);
        }
        let (created, completed) = times(doc);
        let (created, completed) = (created.and_then(parse_time), completed.and_then(parse_time));
        if let Some(days) = completion_days(created, completed) {
            tally(&mut self.durations, days.to_bits(), sign);
        }
        if let Some(day) = created {
            self.per_day.entry(day.date_naive()).or_default().0 += sign;
        }
        if let Some(day) = completed {
            self.per_day.entry(day.date_naive()).or_default().1 += sign;
        }
        let (tasks, done) = task_counts(doc);
        self.tasks_total += sign * tasks as i64;
        self.tasks_completed += sign * done as i64;
    }

    /// A builder holding every milestone tallied, for `today`.
    pub fn builder(&self, today: NaiveDate) -> AnalyticsBuilder {
        let whole = |n: i64| u64::try_from(n).unwrap_or(0);
        let mut builder = AnalyticsBuilder::new(today);
        builder.add_total(whole(self.total));
        for (dimension, counts) in Dimension::ALL.iter().zip(&self.counts) {
            for (label, n) in counts {
                builder.count(*dimension, label.clone(), whole(*n));
            }
        }
        for (bits, n) in &self.durations {
            builder.durations.extend(std::iter::repeat_n(f64::from_bits(*bits), whole(*n) as usize));
        }
        for (day, (created, completed)) in builder.per_day.iter_mut() {
            let (c, d) = self.per_day.get(day).copied().unwrap_or_default();
            *created += whole(c);
            *completed += whole(d);
        }
        builder.add_tasks(whole(self.tasks_total), whole(self.tasks_completed));
        builder
    }
}

/// How a counted field's value is shown: its text, `(none)` when absent,
/// or its type in brackets.
pub fn label(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => "(none)".to_owned(),
        Some(other) => format!("({})", other.type_name()),
    }
}

/// A task list's size and how many of its tasks are completed.
pub fn task_counts(doc: &Map) -> (u64, u64) {
    let tasks = doc.get("tasks").and_then(Value::as_list).unwrap_or(&[]);
    let completed = tasks
        .iter()
        .filter(|t| t.as_map().and_then(|t| t.get("status")).and_then(Value::as_str) == Some("completed"))
        .count();
    (tasks.len() as u64, completed as u64)
}

fn counts(map: BTreeMap<String, u64>) -> Vec<Count> {
    let mut v: Vec<Count> = map.into_iter().map(|(key, count)| Count { key, count }).collect();
    v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.key.cmp(&b.key)));
    v
}

fn median(sorted: &[f64]) -> Option<f64> {
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

/// Reads a timestamp as documents write them: RFC 3339, or a bare date
/// (taken as midnight UTC).
pub fn parse_time(s: &str) -> Option<DateTime<chrono::Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&chrono::Utc));
    }
    let date = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    Some(date.and_hms_opt(0, 0, 0)?.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use milestones_protocol::DependencyFigures;

    /// Kept sums give what reading every document gives, through
    /// additions, removals and milestones that took the same time.
    #[test]
    fn a_tally_finishes_as_the_documents_would() {
        let doc = |y: &str| crate::yaml::parse_document(y, "t").unwrap();
        let docs = [
            doc("id: a\nstatus: completed\ncreated_at: '2026-11-01T00:00:00Z'\ncompleted_at: '2026-11-03T00:00:00Z'\n"),
            doc("id: b\nstatus: completed\ncreated_at: '2026-11-01T00:00:00Z'\ncompleted_at: '2026-11-03T00:00:00Z'\n"),
            doc("id: c\nstatus: blocked\npriority: 3\ncreated_at: '2026-11-20T10:00:00Z'\ntasks: [{status: completed}, {}]\n"),
            doc("id: d\nstatus: planning\ncategory: ops\ncreated_at: '2025-01-01T00:00:00Z'\n"),
            doc("id: e\nstatus: completed\ncreated_at: '2026-11-01T00:00:00Z'\ncompleted_at: '2026-11-06T00:00:00Z'\n"),
        ];
        let today = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
        let graph = DependencyGraph::default();
        let mut tally = AnalyticsTally::default();
        docs.iter().for_each(|d| tally.add(d));
        tally.remove(&docs[3]);
        tally.add(&docs[3]);
        tally.remove(&docs[2]);
        let mut expected = AnalyticsBuilder::new(today);
        [&docs[0], &docs[1], &docs[3], &docs[4]].iter().for_each(|d| expected.add_document(d));
        assert_eq!(tally.builder(today).finish(&graph), expected.finish(&graph));
    }

    #[test]
    fn counts_times_and_trend() {
        let docs: Vec<Map> = [
            "id: a\nstatus: completed\npriority: high\ncreated_at: '2026-11-01T00:00:00Z'\ncompleted_at: '2026-11-03T00:00:00Z'\n",
            "id: b\nstatus: completed\npriority: high\ncreated_at: '2026-11-01T00:00:00Z'\ncompleted_at: '2026-11-05T00:00:00Z'\ndependencies: {requires: [a]}\n",
            "id: c\nstatus: planning\ncreated_at: '2026-11-20T10:00:00Z'\ntasks: [{id: t, status: completed}, {id: u}]\ndependencies: {requires: [a, b]}\n",
        ]
        .iter()
        .map(|y| crate::yaml::parse_document(y, "t").unwrap())
        .collect();
        let today = NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
        let mut builder = AnalyticsBuilder::new(today);
        let mut graph = DependencyGraph::default();
        for doc in &docs {
            builder.add_document(doc);
            graph.add_document(doc);
        }
        let a = builder.finish(&graph);
        assert_eq!(a.total, 3);
        assert_eq!(a.by_status[0], Count { key: "completed".into(), count: 2 });
        assert_eq!(a.average_completion_days, Some(3.0));
        assert_eq!(a.median_completion_days, Some(3.0));
        assert_eq!((a.tasks_total, a.tasks_completed), (2, 1));
        assert_eq!(
            a.dependencies,
            DependencyFigures { total: 3, milestones_with_dependencies: 2, max_per_milestone: 2, longest_chain: 3 }
        );
        assert_eq!(a.per_day.len(), 30);
        assert_eq!(a.per_day.last().unwrap(), &DayCount { date: "2026-11-20".into(), created: 1, completed: 0 });
        let nov3 = a.per_day.iter().find(|d| d.date == "2026-11-03").unwrap();
        assert_eq!(nov3.completed, 1);
    }
}
