//! `msctl watch`: subscribe to the daemon's changes and print them until
//! interrupted.

use milestones_client::protocol::{EventFilter, ServerMessage};
use milestones_client::{Client, ClientError};

use crate::input::event_kind;
use crate::render::Output;
use crate::Failure;

/// Prints every change matching the filters; returns only on a failure.
pub fn run(
    client: &mut Client,
    out: &Output,
    id: Vec<String>,
    status: Vec<String>,
    kind: Vec<String>,
) -> Result<u8, Failure> {
    let filter = EventFilter { ids: id, statuses: status, kinds: kind.iter().map(|k| event_kind(k)).collect() };
    client.subscribe(filter)?;
    loop {
        match client.next_event()? {
            ServerMessage::Event(event) => out.event(&event),
            ServerMessage::Lagged { missed } => out.lagged(missed),
            // The daemon ends the stream with a refusal (access taken away).
            ServerMessage::Reply { result: Err(e), .. } => return Err(ClientError::Daemon(e).into()),
            ServerMessage::Reply { .. } => {}
        }
    }
}
