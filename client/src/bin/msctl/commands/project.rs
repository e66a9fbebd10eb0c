//! Commands about the milestones as a set: the dependency graph (`deps`),
//! the schema rules (`validate`), the template's sections (`upgrade`) and
//! analytics (`stats`).

use milestones_client::protocol::{Request, Response, Severity};
use milestones_client::Client;

use crate::args::WorkPageArgs;
use crate::input::target_of;
use crate::render::Output;
use crate::{exit, unexpected, Failure};

/// `msctl deps`: the graph, or one milestone's neighbourhood; with
/// `--check`, exit 5 on cycles or missing milestones.
pub fn deps(client: &mut Client, out: &Output, id: Option<String>, check: bool) -> Result<u8, Failure> {
    match client.request(Request::Deps { id })? {
        Response::Deps(report) => {
            out.deps(&report);
            if check && (!report.cycles.is_empty() || !report.missing.is_empty()) {
                return Ok(exit::PROBLEMS_FOUND);
            }
        }
        other => return Err(unexpected(other)),
    }
    Ok(0)
}

/// `msctl ready` / `msctl blocked` (`--tasks`: tasks across milestones):
/// the most urgent page of them.
pub fn work(client: &mut Client, out: &Output, tasks: bool, blocked: bool, page: WorkPageArgs) -> Result<u8, Failure> {
    let limit = (!page.all).then_some(page.limit);
    out.work(&client.work(tasks, blocked, page.offset, limit)?, blocked);
    Ok(0)
}

/// `msctl validate`: the problems of one milestone or all; exit 5 on errors.
pub fn validate(client: &mut Client, out: &Output, id: Option<String>, all: bool) -> Result<u8, Failure> {
    let target = target_of(id, all, "validate")?;
    match client.request(Request::Validate { target })? {
        Response::Validation(report) => {
            out.validation(&report);
            if report.problems.iter().any(|p| p.severity == Severity::Error) {
                return Ok(exit::PROBLEMS_FOUND);
            }
        }
        other => return Err(unexpected(other)),
    }
    Ok(0)
}

/// `msctl upgrade`: add the enhanced sections to one milestone or all.
pub fn upgrade(client: &mut Client, out: &Output, id: Option<String>, all: bool) -> Result<u8, Failure> {
    let target = target_of(id, all, "upgrade")?;
    match client.request(Request::Upgrade { target })? {
        Response::Upgraded(outcomes) => out.upgraded(&outcomes),
        other => return Err(unexpected(other)),
    }
    Ok(0)
}

/// `msctl stats`: the project's analytics.
pub fn stats(client: &mut Client, out: &Output) -> Result<u8, Failure> {
    match client.request(Request::Stats)? {
        Response::Stats(stats) => out.stats(&stats),
        other => return Err(unexpected(other)),
    }
    Ok(0)
}
