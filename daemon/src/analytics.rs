//! Project analytics (seed 001's `getAnalytics`, seed 002's
//! `performance_metrics`): counts, completion times, dependency figures and
//! the daily trend, computed from documents.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate};
use milestones_protocol::{Analytics, Count, DayCount, DependencyFigures, Map, Value};

use crate::graph::DependencyGraph;

/// How many days the trend covers, today included.
pub const TREND_DAYS: i64 = 30;

pub fn compute<'a>(docs: impl Iterator<Item = &'a Map>, today: NaiveDate) -> Analytics {
    let docs: Vec<&Map> = docs.collect();
    let mut by_status = BTreeMap::new();
    let mut by_priority = BTreeMap::new();
    let mut by_category = BTreeMap::new();
    let mut durations = Vec::new();
    let (mut tasks_total, mut tasks_completed) = (0u64, 0u64);
    let first_day = today - chrono::Duration::days(TREND_DAYS - 1);
    let mut per_day: BTreeMap<NaiveDate, (u64, u64)> =
        (0..TREND_DAYS).map(|i| (first_day + chrono::Duration::days(i), (0, 0))).collect();

    for doc in &docs {
        *by_status.entry(text(doc, "status")).or_insert(0u64) += 1;
        *by_priority.entry(text(doc, "priority")).or_insert(0u64) += 1;
        *by_category.entry(text(doc, "category")).or_insert(0u64) += 1;
        let created = doc.get("created_at").and_then(parse_time);
        let completed = doc.get("completed_at").and_then(parse_time);
        if let (Some(c), Some(d)) = (created, completed) {
            durations.push((d - c).num_seconds() as f64 / 86_400.0);
        }
        if let Some(day) = created.and_then(|t| per_day.get_mut(&t.date_naive())) {
            day.0 += 1;
        }
        if let Some(day) = completed.and_then(|t| per_day.get_mut(&t.date_naive())) {
            day.1 += 1;
        }
        for task in doc.get("tasks").and_then(Value::as_list).unwrap_or(&[]) {
            tasks_total += 1;
            if task.as_map().and_then(|t| t.get("status")).and_then(Value::as_str) == Some("completed") {
                tasks_completed += 1;
            }
        }
    }

    let graph = DependencyGraph::build(docs.iter().copied(), None);
    let edges = graph.edges();
    let mut per_milestone: BTreeMap<&str, u64> = BTreeMap::new();
    for e in &edges {
        *per_milestone.entry(&e.from).or_default() += 1;
    }
    durations.sort_by(f64::total_cmp);
    Analytics {
        total: docs.len() as u64,
        completed: by_status.get("completed").copied().unwrap_or(0),
        by_status: counts(by_status),
        by_priority: counts(by_priority),
        by_category: counts(by_category),
        average_completion_days: (!durations.is_empty())
            .then(|| durations.iter().sum::<f64>() / durations.len() as f64),
        median_completion_days: median(&durations),
        tasks_total,
        tasks_completed,
        dependencies: DependencyFigures {
            total: edges.len() as u64,
            milestones_with_dependencies: per_milestone.len() as u64,
            max_per_milestone: per_milestone.values().copied().max().unwrap_or(0),
            longest_chain: graph.longest_chain(),
        },
        per_day: per_day
            .into_iter()
            .map(|(date, (created, completed))| DayCount { date: date.to_string(), created, completed })
            .collect(),
    }
}

fn text(doc: &Map, field: &str) -> String {
    match doc.get(field) {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => "(none)".to_owned(),
        Some(other) => format!("({})", other.type_name()),
    }
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
pub fn parse_time(v: &Value) -> Option<DateTime<chrono::Utc>> {
    let s = v.as_str()?;
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&chrono::Utc));
    }
    let date = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    Some(date.and_hms_opt(0, 0, 0)?.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let a = compute(docs.iter(), today);
        assert_eq!(a.total, 3);
        assert_eq!(a.by_status[0], Count { key: "completed".into(), count: 2 });
        assert_eq!(a.average_completion_days, Some(3.0));
        assert_eq!(a.median_completion_days, Some(3.0));
        assert_eq!((a.tasks_total, a.tasks_completed), (2, 1));
        assert_eq!(a.dependencies, DependencyFigures { total: 3, milestones_with_dependencies: 2, max_per_milestone: 2, longest_chain: 3 });
        assert_eq!(a.per_day.len(), 30);
        assert_eq!(a.per_day.last().unwrap(), &DayCount { date: "2026-11-20".into(), created: 1, completed: 0 });
        let nov3 = a.per_day.iter().find(|d| d.date == "2026-11-03").unwrap();
        assert_eq!(nov3.completed, 1);
    }
}
