//! Tasks inside a milestone: `task add`, `task start` and `task done`.

use milestones_client::protocol::{NewTask, Request};
use milestones_client::Client;

use crate::args::TaskCommand;
use crate::render::Output;
use crate::reply::expect_document;
use crate::Failure;

/// `msctl task ...`: one request, then the milestone it changed.
pub fn run(client: &mut Client, out: &Output, task: TaskCommand) -> Result<u8, Failure> {
    let (request, verb) = match task {
        TaskCommand::Add { milestone, title, id, depends_on } => {
            (Request::TaskAdd { milestone, task: NewTask { id, title, depends_on } }, "task added to")
        }
        TaskCommand::Start { milestone, task } => {
            (Request::TaskSetStatus { milestone, task, status: "in_progress".into() }, "task started in")
        }
        TaskCommand::Done { milestone, task } => {
            (Request::TaskSetStatus { milestone, task, status: "completed".into() }, "task done in")
        }
    };
    let doc = expect_document(client.request(request)?)?;
    out.changed(&doc, verb);
    Ok(0)
}
