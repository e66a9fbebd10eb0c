//! `Storage::open_work` on a SQL backend: the query SQLite and PostgreSQL
//! both answer, and the folding of its rows (and of the tasks query's,
//! which each engine writes its own way) into [`OpenMilestone`]s.

use milestones_protocol::Value;

use crate::work::OpenMilestone;

/// Each open milestone with each requirement that is not completed (one row
/// each; one row with none when nothing holds it), by id. Both engines'
/// `milestone_dependencies` hold the edges `enables` declares as well.
pub(super) const OPEN_WORK: &str = "SELECT m.id, m.title, m.status, m.priority, d.depends_on
    FROM milestones m
    LEFT JOIN milestone_dependencies d ON d.milestone_id = m.id
        AND NOT EXISTS (SELECT 1 FROM milestones t WHERE t.id = d.depends_on AND t.status = 'completed')
    WHERE m.status IS NULL OR m.status NOT IN ('completed', 'cancelled', 'archived')
    ORDER BY m.id, d.depends_on";

/// The open milestones, built row by row from [`OPEN_WORK`] and then from
/// a query of their tasks as JSON (id, task), both ordered by id.
#[derive(Default)]
pub(super) struct OpenWorkRows {
    open: Vec<OpenMilestone>,
    /// Where the tasks' rows have got to in `open`.
    at: usize,
}

impl OpenWorkRows {
    /// One row of [`OPEN_WORK`].
    pub fn milestone(
        &mut self,
        id: String,
        title: Option<String>,
        status: Option<String>,
        priority: Option<String>,
        waits_on: Option<String>,
    ) {
        if self.open.last().is_none_or(|m| m.id != id) {
            self.open.push(OpenMilestone {
                id,
                title: title.unwrap_or_default(),
                status: status.unwrap_or_else(|| "planning".to_owned()),
                priority,
                waiting_on: Vec::new(),
                tasks: Vec::new(),
            });
        }
        if let (Some(m), Some(w)) = (self.open.last_mut(), waits_on) {
            if !m.waiting_on.contains(&w) {
                m.waiting_on.push(w);
            }
        }
    }

    /// One task of an open milestone, as JSON. One that is not a task with
    /// an id is left out, as [`crate::work::task_state`] says.
    pub fn task(&mut self, id: &str, task: &str) {
        while self.open.get(self.at).is_some_and(|m| m.id.as_str() < id) {
            self.at += 1;
        }
        let task = serde_json::from_str::<Value>(task).ok();
        if let (Some(m), Some(task)) = (self.open.get_mut(self.at).filter(|m| m.id == id), task) {
            m.tasks.extend(crate::work::task_state(&task));
        }
    }

    pub fn finish(self) -> Vec<OpenMilestone> {
        self.open
    }
}
