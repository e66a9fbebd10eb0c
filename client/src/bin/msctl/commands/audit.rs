//! `msctl audit verify`: the audit log's hash chain, checked by the daemon.

use milestones_client::protocol::{Request, Response};
use milestones_client::Client;

use crate::render::Output;
use crate::{exit, unexpected, Failure};

pub fn verify(client: &mut Client, out: &Output) -> Result<u8, Failure> {
    let report = match client.request(Request::AuditVerify)? {
        Response::AuditReport(report) => report,
        other => return Err(unexpected(other)),
    };
    out.audit(&report);
    Ok(if report.problems.is_empty() { 0 } else { exit::PROBLEMS_FOUND })
}
