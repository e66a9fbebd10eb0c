//! Checking milestoned's replies: the milestone document most requests
//! answer with.

use milestones_client::protocol::{Map, Response, Value};

use crate::{unexpected, Failure};

/// The document in `response`, or a failure when the daemon answered
/// something else.
pub fn expect_document(response: Response) -> Result<Map, Failure> {
    match response {
        Response::Document(Value::Map(doc)) => Ok(doc),
        other => Err(unexpected(other)),
    }
}
