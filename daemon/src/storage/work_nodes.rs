//! `Storage::work_nodes` on a SQL backend: the query SQLite and PostgreSQL
//! both answer, and the folding of its rows (and of the tasks query's,
//! which each engine writes its own way) into [`WorkNode`]s.

use milestones_protocol::Value;

use crate::work::WorkNode;

/// Each milestone with each edge its document declares (one row each; one
/// row with none when it declares none), by id. The title of a closed
/// milestone is not needed.
pub(super) const WORK_NODES: &str = "SELECT m.id,
        CASE WHEN m.status IS NULL OR m.status NOT IN ('completed', 'cancelled', 'archived') THEN m.title END,
        m.status, m.priority, d.milestone_id, d.depends_on
    FROM milestones m
    LEFT JOIN milestone_dependencies d ON d.declared_by = m.id
    ORDER BY m.id";

/// The nodes, built row by row from [`WORK_NODES`] and then from a query of
/// the open milestones' tasks as JSON (id, task), both ordered by id.
#[derive(Default)]
pub(super) struct WorkNodeRows {
    nodes: Vec<WorkNode>,
    /// Where the tasks' rows have got to in `nodes`.
    at: usize,
}

impl WorkNodeRows {
    /// One row of [`WORK_NODES`].
    pub fn milestone(
        &mut self,
        id: String,
        title: Option<String>,
        status: Option<String>,
        priority: Option<String>,
        declares: (Option<String>, Option<String>),
    ) {
        if self.nodes.last().is_none_or(|m| m.id != id) {
            self.nodes.push(WorkNode {
                id,
                title: title.unwrap_or_default(),
                status,
                priority,
                declares: Vec::new(),
                tasks: Vec::new(),
            });
        }
        if let (Some(m), (Some(from), Some(to))) = (self.nodes.last_mut(), declares) {
            m.declares.push((from, to));
        }
    }

    /// One task of an open milestone, as JSON. One that is not a task with
    /// an id is left out, as [`crate::work::task_state`] says.
    pub fn task(&mut self, id: &str, task: &str) {
        while self.nodes.get(self.at).is_some_and(|m| m.id.as_str() < id) {
            self.at += 1;
        }
        let task = serde_json::from_str::<Value>(task).ok();
        if let (Some(m), Some(task)) = (self.nodes.get_mut(self.at).filter(|m| m.id == id), task) {
            m.tasks.extend(crate::work::task_state(&task));
        }
    }

    pub fn finish(self) -> Vec<WorkNode> {
        self.nodes
    }
}
