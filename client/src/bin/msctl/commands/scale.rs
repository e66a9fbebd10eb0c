//! `msctl scale`: the scale monitor's dashboard (seed 004's).

use milestones_client::protocol::{Request, Response};
use milestones_client::Client;

use crate::render::Output;
use crate::{unexpected, Failure};

pub fn scale(client: &mut Client, out: &Output) -> Result<u8, Failure> {
    match client.request(Request::Scale)? {
        Response::Scale(report) => out.scale(&report),
        other => return Err(unexpected(other)),
    }
    Ok(0)
}
