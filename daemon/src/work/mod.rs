//! What can be worked on now (`msctl ready`) and what waits on what
//! (`msctl blocked`): the rules, over one small [`WorkNode`] per milestone
//! that a store reads in one query (`Storage::work_nodes`) and a
//! [`WorkIndex`] keeps between requests.
//!
//! - A milestone is open unless it is completed, cancelled or archived; it
//!   is ready when every milestone it requires is completed (a requirement
//!   that does not exist is never completed), else blocked by those.
//! - With tasks: a task of an open milestone that is not completed or
//!   cancelled is ready when every task its `depends_on` names (in the same
//!   milestone) is completed.
//! - Most urgent first: by priority, then by the length of the longest
//!   chain of open work waiting on it (its critical path), then by id.

mod index;

use milestones_protocol::{Map, Value};

pub use self::index::WorkIndex;

/// The statuses that close a milestone.
const CLOSED: [&str; 3] = ["completed", "cancelled", "archived"];

/// The statuses that close a task.
const TASK_CLOSED: [&str; 2] = ["completed", "cancelled"];

/// What the rules need of one milestone, whatever its status: a store
/// reads these (`Storage::work_nodes`) instead of whole documents, and a
/// [`WorkIndex`] keeps them between requests.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkNode {
    pub id: String,
    pub title: String,
    /// `None`: planning.
    pub status: Option<String>,
    pub priority: Option<String>,
    /// The edges its document declares, as (milestone, what it requires):
    /// its `requires`, and its `enables` the other way round.
    pub declares: Vec<(String, String)>,
    /// Its tasks, when asked for and it is open.
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

impl WorkNode {
    /// The node of a document; `None` for one without an id.
    pub fn of(doc: &Map, with_tasks: bool) -> Option<WorkNode> {
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
        let id = id?;
        let mut declares = Vec::new();
        if let Some(dependencies) = dependencies {
            let ids = |key: &str| dependencies.get(key).and_then(Value::as_list).unwrap_or_default();
            for required in ids("requires").iter().filter_map(Value::as_str) {
                declares.push((id.to_owned(), required.to_owned()));
            }
            for enabled in ids("enables").iter().filter_map(Value::as_str) {
                declares.push((enabled.to_owned(), id.to_owned()));
            }
        }
        let tasks = match (with_tasks && is_open(status), tasks) {
            (true, Some(tasks)) => tasks.iter().filter_map(task_state).collect(),
            _ => Vec::new(),
        };
        Some(WorkNode {
            id: id.to_owned(),
            title: title.unwrap_or_default().to_owned(),
            status: status.map(str::to_owned),
            priority: priority.map(str::to_owned),
            declares,
            tasks,
        })
    }

    pub(crate) fn is_open(&self) -> bool {
        is_open(self.status.as_deref())
    }
}

/// Where a priority puts a milestone: most urgent first, none given last.
pub(crate) fn rank(priority: Option<&str>) -> u8 {
    match priority {
        Some("critical") => 0,
        Some("high") => 1,
        Some("medium") => 2,
        Some("low") => 3,
        _ => 4,
    }
}

/// Whether a task of `status` is still to do.
pub(crate) fn task_is_open(status: &str) -> bool {
    !TASK_CLOSED.contains(&status)
}

/// For each item, the length of the longest chain of items that wait on
/// it, itself included: 1 when nothing waits on it. `waiting_on_me[i]`
/// lists the items that wait on item `i`. A cycle is counted once around.
pub(crate) fn chain_lengths(waiting_on_me: &[Vec<u32>]) -> Vec<u64> {
    const UNSEEN: u64 = 0;
    const ON_PATH: u64 = u64::MAX;
    let mut lengths = vec![UNSEEN; waiting_on_me.len()];
    let mut stack = Vec::new();
    for start in 0..waiting_on_me.len() {
        if lengths[start] != UNSEEN {
            continue;
        }
        // Depth first without recursion: deep chains must not overflow.
        stack.push((start, false));
        while let Some((i, expanded)) = stack.pop() {
            if expanded {
                let longest = waiting_on_me[i]
                    .iter()
                    .map(|&n| lengths[n as usize])
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
            let next = waiting_on_me[i].iter().map(|&n| n as usize).filter(|&n| lengths[n] == UNSEEN);
            stack.extend(next.map(|n| (n, false)));
        }
    }
    lengths
}

#[cfg(test)]
mod tests {
    use milestones_protocol::{WorkItem, WorkReport};

    use super::*;

    fn doc(yaml: &str) -> Map {
        crate::yaml::parse_document(yaml, "test").unwrap()
    }

    fn report_of(docs: &[Map], with_tasks: bool) -> WorkReport {
        let nodes: Vec<WorkNode> = docs.iter().filter_map(|d| WorkNode::of(d, with_tasks)).collect();
        WorkIndex::new(nodes, with_tasks).report(with_tasks)
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
        let report = report_of(&docs, false);
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
        let report = report_of(&docs, true);
        assert_eq!(ids(&report.ready), ["t2"]);
        assert_eq!(report.ready[0].chain, 2);
        assert_eq!(ids(&report.blocked), ["t3"]);
        assert_eq!(report.blocked[0].waiting_on, ["t2"]);
    }

    #[test]
    fn a_cycle_does_not_hang() {
        let docs = [doc("id: a\ndependencies: {requires: [b]}\n"), doc("id: b\ndependencies: {requires: [a]}\n")];
        let report = report_of(&docs, false);
        assert!(report.ready.is_empty());
        assert_eq!(ids(&report.blocked), ["a", "b"]);
    }
}
