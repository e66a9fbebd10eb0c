//! What can be worked on now (`msctl ready`) and what waits on what
//! (`msctl blocked`): the rules, given the open milestones a store reads
//! in one query ([`OpenMilestone`]; see `Storage::open_work`).
//!
//! - A milestone is open unless it is completed, cancelled or archived; it
//!   is ready when every milestone it requires is completed (a requirement
//!   that does not exist is never completed), else blocked by those.
//! - With tasks: a task of an open milestone that is not completed or
//!   cancelled is ready when every task its `depends_on` names (in the same
//!   milestone) is completed.
//! - Most urgent first: by priority, then by the length of the longest
//!   chain of open work waiting on it (its critical path), then by id.

use std::collections::{HashMap, HashSet};

use milestones_protocol::{Map, Value, WorkItem, WorkReport};

/// The statuses that close a milestone.
const CLOSED: [&str; 3] = ["completed", "cancelled", "archived"];

/// The statuses that close a task.
const TASK_CLOSED: [&str; 2] = ["completed", "cancelled"];

/// An open milestone as a store reads it for [`report`].
#[derive(Debug, Clone, PartialEq)]
pub struct OpenMilestone {
    pub id: String,
    pub title: String,
    pub status: String,
    pub priority: Option<String>,
    /// The milestones it requires that are not completed, each once.
    pub waiting_on: Vec<String>,
    /// Its tasks, when asked for.
    pub tasks: Vec<TaskState>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TaskState {
    pub id: String,
    pub title: String,
    pub status: String,
    pub depends_on: Vec<String>,
}

/// Whether a milestone of `status` (none: planning) is open.
pub fn is_open(status: Option<&str>) -> bool {
    status.is_none_or(|s| !CLOSED.contains(&s))
}

/// A task as a document holds it; `None` for one without an id.
pub fn task_state(task: &Value) -> Option<TaskState> {
    let task = task.as_map()?;
    let text = |key: &str| task.get(key).and_then(Value::as_str).unwrap_or_default().to_owned();
    let depends_on = match task.get("depends_on") {
        Some(Value::List(ids)) => ids.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        Some(Value::String(id)) => vec![id.clone()],
        _ => Vec::new(),
    };
    Some(TaskState {
        id: task.get("id")?.as_str()?.to_owned(),
        title: text("title"),
        status: text("status"),
        depends_on,
    })
}

/// Gathers the open milestones from every document of a store, for a
/// store that reads its documents rather than querying.
#[derive(Debug, Default)]
pub struct OpenMilestones {
    with_tasks: bool,
    completed: HashSet<String>,
    requires: HashMap<String, Vec<String>>,
    open: Vec<OpenMilestone>,
}

impl OpenMilestones {
    pub fn new(with_tasks: bool) -> Self {
        OpenMilestones { with_tasks, ..OpenMilestones::default() }
    }

    pub fn add(&mut self, doc: &Map) {
        // One pass over the document's keys: this runs for every milestone.
        let (mut id, mut title, mut status, mut priority, mut tasks, mut dependencies) =
            (None, None, None, None, None, None);
        for (key, value) in doc.iter() {
            match key.as_str() {
                "id" => id = value.as_str(),
                "title" => title = value.as_str(),
                "status" => status = value.as_str(),
                "priority" => priority = value.as_str(),
                "tasks" => tasks = value.as_list(),
                "dependencies" => dependencies = value.as_map(),
                _ => {}
            }
        }
        let Some(id) = id else { return };
        if let Some(dependencies) = dependencies {
            let ids = |key: &str| dependencies.get(key).and_then(Value::as_list).unwrap_or_default();
            let requires = ids("requires").iter().filter_map(Value::as_str);
            self.requires.entry(id.to_owned()).or_default().extend(requires.map(str::to_owned));
            for enabled in ids("enables").iter().filter_map(Value::as_str) {
                self.requires.entry(enabled.to_owned()).or_default().push(id.to_owned());
            }
        }
        if status == Some("completed") {
            self.completed.insert(id.to_owned());
        }
        if !is_open(status) {
            return;
        }
        let tasks = match (self.with_tasks, tasks) {
            (true, Some(tasks)) => tasks.iter().filter_map(task_state).collect(),
            _ => Vec::new(),
        };
        self.open.push(OpenMilestone {
            id: id.to_owned(),
            title: title.unwrap_or_default().to_owned(),
            status: status.unwrap_or("planning").to_owned(),
            priority: priority.map(str::to_owned),
            waiting_on: Vec::new(),
            tasks,
        });
    }

    pub fn finish(mut self) -> Vec<OpenMilestone> {
        for milestone in &mut self.open {
            let mut waiting = self.requires.remove(&milestone.id).unwrap_or_default();
            waiting.retain(|r| !self.completed.contains(r));
            waiting.sort();
            waiting.dedup();
            milestone.waiting_on = waiting;
        }
        self.open
    }
}

/// Ready and blocked work, most urgent first.
pub fn report(open: Vec<OpenMilestone>, tasks: bool) -> WorkReport {
    let mut items = if tasks { task_items(&open) } else { milestone_items(open) };
    let rank = |p: &Option<String>| match p.as_deref() {
        Some("critical") => 0,
        Some("high") => 1,
        Some("medium") => 2,
        Some("low") => 3,
        _ => 4,
    };
    items.sort_by(|a, b| {
        rank(&a.priority)
            .cmp(&rank(&b.priority))
            .then(b.chain.cmp(&a.chain))
            .then_with(|| a.milestone.cmp(&b.milestone))
            .then_with(|| a.task.cmp(&b.task))
    });
    let (ready, blocked) = items.into_iter().partition(|i| i.waiting_on.is_empty());
    WorkReport { ready, blocked }
}

fn milestone_items(open: Vec<OpenMilestone>) -> Vec<WorkItem> {
    let chains = chain_lengths(open.iter().map(|m| (m.id.as_str(), m.waiting_on.as_slice())));
    open.into_iter()
        .zip(chains)
        .map(|(m, chain)| WorkItem {
            chain,
            milestone: m.id,
            task: None,
            title: m.title,
            status: m.status,
            priority: m.priority,
            waiting_on: m.waiting_on,
        })
        .collect()
}

fn task_items(open: &[OpenMilestone]) -> Vec<WorkItem> {
    let mut items = Vec::new();
    for milestone in open {
        let done: HashSet<&str> =
            milestone.tasks.iter().filter(|t| t.status == "completed").map(|t| t.id.as_str()).collect();
        let open_tasks: Vec<(&TaskState, Vec<String>)> = milestone
            .tasks
            .iter()
            .filter(|t| !TASK_CLOSED.contains(&t.status.as_str()))
            .map(|t| {
                let mut waiting: Vec<String> =
                    t.depends_on.iter().filter(|d| !done.contains(d.as_str())).cloned().collect();
                waiting.dedup();
                (t, waiting)
            })
            .collect();
        let chains = chain_lengths(open_tasks.iter().map(|(t, w)| (t.id.as_str(), w.as_slice())));
        for ((task, waiting_on), chain) in open_tasks.into_iter().zip(chains) {
            items.push(WorkItem {
                milestone: milestone.id.clone(),
                task: Some(task.id.clone()),
                title: task.title.clone(),
                status: task.status.clone(),
                priority: milestone.priority.clone(),
                chain,
                waiting_on,
            });
        }
    }
    items
}

/// For each open item, in order, the length of the longest chain of open
/// items that wait on it, itself included: 1 when nothing waits on it. A
/// cycle is counted once around.
fn chain_lengths<'a>(items: impl Iterator<Item = (&'a str, &'a [String])>) -> Vec<u64> {
    let items: Vec<(&str, &[String])> = items.collect();
    let index: HashMap<&str, usize> = items.iter().enumerate().map(|(i, (id, _))| (*id, i)).collect();
    // Who waits on each item, by position.
    let mut waiting_on_me: Vec<Vec<usize>> = vec![Vec::new(); items.len()];
    for (i, (_, waits)) in items.iter().enumerate() {
        for w in waits.iter().filter_map(|w| index.get(w.as_str())) {
            waiting_on_me[*w].push(i);
        }
    }
    const UNSEEN: u64 = 0;
    const ON_PATH: u64 = u64::MAX;
    let mut lengths = vec![UNSEEN; items.len()];
    let mut stack = Vec::new();
    for start in 0..items.len() {
        if lengths[start] != UNSEEN {
            continue;
        }
        // Depth first without recursion: deep chains must not overflow.
        stack.push((start, false));
        while let Some((i, expanded)) = stack.pop() {
            if expanded {
                let longest = waiting_on_me[i]
                    .iter()
                    .map(|&n| lengths[n])
                    .filter(|&l| l != ON_PATH && l != UNSEEN)
                    .max()
                    .unwrap_or(0);
                lengths[i] = longest + 1;
                continue;
            }
            if lengths[i] != UNSEEN {
                continue;
            }
            lengths[i] = ON_PATH;
            stack.push((i, true));
            stack.extend(waiting_on_me[i].iter().filter(|&&n| lengths[n] == UNSEEN).map(|&n| (n, false)));
        }
    }
    lengths
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(yaml: &str) -> Map {
        crate::yaml::parse_document(yaml, "test").unwrap()
    }

    fn gathered(docs: &[Map], with_tasks: bool) -> Vec<OpenMilestone> {
        let mut open = OpenMilestones::new(with_tasks);
        docs.iter().for_each(|d| open.add(d));
        open.finish()
    }

    fn ids(items: &[WorkItem]) -> Vec<String> {
        items.iter().map(|i| i.task.clone().unwrap_or_else(|| i.milestone.clone())).collect()
    }

    /// A diamond (top needs left and right, both need base) beside a chain
    /// whose first link is done.
    #[test]
    fn a_diamond_and_a_chain() {
        let docs = [
            doc("id: base\nstatus: in_progress\npriority: medium\n"),
            doc("id: left\nstatus: planning\ndependencies: {requires: [base]}\n"),
            doc("id: right\nstatus: planning\ndependencies: {requires: [base]}\n"),
            doc("id: top\nstatus: planning\ndependencies: {requires: [left, right]}\n"),
            doc("id: c1\nstatus: completed\n"),
            doc("id: c2\nstatus: planning\npriority: medium\ndependencies: {requires: [c1]}\n"),
            doc("id: c3\nstatus: planning\ndependencies: {requires: [c2, gone]}\n"),
            doc("id: dropped\nstatus: cancelled\n"),
            doc("id: urgent\nstatus: blocked\npriority: critical\n"),
        ];
        let report = report(gathered(&docs, false), false);
        // base heads a chain of three (base, left|right, top); c2 of two.
        assert_eq!(ids(&report.ready), ["urgent", "base", "c2"]);
        assert_eq!(report.ready[1].chain, 3);
        assert_eq!(report.ready[2].chain, 2);
        assert_eq!(ids(&report.blocked), ["left", "right", "c3", "top"]);
        let c3 = report.blocked.iter().find(|i| i.milestone == "c3").unwrap();
        assert_eq!(c3.waiting_on, ["c2", "gone"], "a requirement that does not exist blocks");
        let top = report.blocked.iter().find(|i| i.milestone == "top").unwrap();
        assert_eq!(top.waiting_on, ["left", "right"]);
    }

    #[test]
    fn tasks_wait_on_the_tasks_they_depend_on() {
        let docs = [doc("id: m\nstatus: in_progress\ntasks:\n- {id: t1, title: One, status: completed}\n\
             - {id: t2, title: Two, status: pending, depends_on: [t1]}\n\
             - {id: t3, title: Three, status: pending, depends_on: [t2]}\n\
             - {id: t4, title: Four, status: cancelled}\n")];
        let report = report(gathered(&docs, true), true);
        assert_eq!(ids(&report.ready), ["t2"]);
        assert_eq!(report.ready[0].chain, 2);
        assert_eq!(ids(&report.blocked), ["t3"]);
        assert_eq!(report.blocked[0].waiting_on, ["t2"]);
    }

    #[test]
    fn a_cycle_does_not_hang() {
        let docs = [doc("id: a\ndependencies: {requires: [b]}\n"), doc("id: b\ndependencies: {requires: [a]}\n")];
        let report = report(gathered(&docs, false), false);
        assert!(report.ready.is_empty());
        assert_eq!(ids(&report.blocked), ["a", "b"]);
    }
}
