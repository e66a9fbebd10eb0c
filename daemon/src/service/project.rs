//! Requests about the project as a whole: `Deps`, `Validate`, `Upgrade`,
//! `Stats`.

use std::collections::HashSet;
use std::sync::Arc;

use milestones_protocol::{Analytics, DepsReport, Problem, Severity, Target, UpgradeOutcome, ValidationReport};
use serde_json::json;

use super::outside_edits::RESCAN;
use super::{Edit, MilestoneService, ServiceError, ServiceResult};
use crate::document;
use crate::graph::DependencyGraph;
use crate::peer::Peer;
use crate::rules;
use crate::storage::StorageError;

impl MilestoneService {
    pub(super) fn deps(&self, id: Option<&str>) -> ServiceResult<DepsReport> {
        let graph = self.graph()?;
        // One milestone's part of the graph carries the edges within it
        // (all a picture of it draws), not every edge of the project.
        let (focus, (edges, missing)) = match id {
            Some(id) => {
                self.stored(id)?;
                let focus = graph.focus(id);
                let within = graph.edges_within(&focus);
                (Some(focus), within)
            }
            None => (None, (graph.edges(), graph.missing())),
        };
        Ok(DepsReport {
            milestones: graph.node_count() as u64,
            edges,
            missing,
            cycles: graph.cycles(),
            critical_path: graph.critical_path(),
            focus,
        })
    }

    pub(super) fn validate(&self, target: &Target) -> ServiceResult<ValidationReport> {
        let graph = self.graph()?;
        let mut problems = Vec::new();
        let checked = match target {
            Target::One(id) => {
                let stored = self.stored(id)?;
                problems.extend(self.problems().into_iter().filter(|p| p.id.as_deref() == Some(id.as_str())));
                problems.extend(rules::check_document(&stored.doc));
                problems.extend(rules::check_graph(&graph, Some(id)));
                1
            }
            Target::All => {
                let file_problems = self.problems();
                let mut served = HashSet::new();
                let mut document_problems = Vec::new();
                let mut unreadable = Vec::new();
                self.storage().walk(
                    &mut |doc| {
                        served.extend(document::id(doc).map(str::to_owned));
                        document_problems.extend(rules::check_document(doc));
                    },
                    // One record that cannot be read is reported, and the
                    // others are still checked.
                    &mut |e| {
                        let StorageError::Unreadable { id, message } = e else { return Err(e) };
                        let field = None;
                        unreadable.push(Problem {
                            id: Some(id),
                            file: None,
                            severity: Severity::Error,
                            field,
                            message,
                        });
                        Ok(())
                    },
                )?;
                served.extend(unreadable.iter().filter_map(|p| p.id.clone()));
                document_problems.append(&mut unreadable);
                // A broken file whose last good version is served is one
                // milestone, not two.
                let unserved = file_problems
                    .iter()
                    .filter(|p| p.file.as_deref() != Some(RESCAN) && p.file.as_deref() != Some(super::CONFIG_FILE))
                    .filter(|p| p.id.as_ref().is_none_or(|id| !served.contains(id)))
                    .count();
                let checked = (served.len() + unserved) as u64;
                problems.extend(file_problems);
                problems.extend(document_problems);
                problems.extend(rules::check_graph(&graph, None));
                checked
            }
        };
        Ok(ValidationReport { checked, problems })
    }

    /// Every problem with the stored data that is not a document's own:
    /// files that do not load, files dropped into a database backend's
    /// folders that could not be imported, folders a rescan could not read.
    pub(super) fn problems(&self) -> Vec<Problem> {
        let storage = self.storage();
        let mut problems = storage.files().map(|f| f.problems()).unwrap_or_default();
        problems.extend(self.outside_problems.read().unwrap_or_else(|p| p.into_inner()).iter().cloned());
        problems.extend(self.hook_problems.read().unwrap_or_else(|p| p.into_inner()).iter().map(|(_, p)| p.clone()));
        if self.settings.read().unwrap_or_else(|p| p.into_inner()).config.password_in_tracked_file {
            problems.push(Problem {
                id: None,
                file: Some(super::CONFIG_FILE.to_owned()),
                severity: milestones_protocol::Severity::Warning,
                field: Some("storage.database.url".to_owned()),
                message: "the database URL holds a password, in a file the team commits to git; take it out and \
                          give the daemon the password by ~/.pgpass (or PGPASSFILE), \
                          storage.database.password_env or storage.database.password_file"
                    .to_owned(),
            });
        }
        problems.sort_by(|a, b| a.file.cmp(&b.file));
        problems
    }

    /// Adds the enhanced sections with the template's defaults; changes
    /// nothing else, not even `updated_at`.
    pub(super) fn upgrade(&self, target: &Target, peer: &Peer) -> ServiceResult<Vec<UpgradeOutcome>> {
        let ids = match target {
            Target::One(id) => vec![id.clone()],
            Target::All => self.storage().ids()?,
        };
        let mut outcomes = Vec::new();
        for id in ids {
            let mut added = Vec::new();
            // A file with a long flow list (`tasks: [{...}, {...}]`, as
            // milestoned once wrote them) is written again, which puts such
            // lists one item per line.
            let tidy = match self.storage().files() {
                Some(files) => files.needs_tidying(&id)?,
                None => false,
            };
            let upgraded = self.modify(&id, peer, |current| {
                let mut doc = current.clone();
                added = rules::upgrade(&mut doc);
                if added.is_empty() && !tidy {
                    return Ok(None);
                }
                let details = json!({ "added": added, "tidied": tidy });
                Ok(Some(Edit { doc, event: "milestone_upgraded", details, touched: Vec::new(), stamped: false }))
            });
            match upgraded {
                Ok(_) => {}
                // Removed since the ids were read: nothing left to upgrade.
                Err(ServiceError::NotFound(_)) if matches!(target, Target::All) => continue,
                Err(e) => return Err(e),
            }
            if !added.is_empty() || matches!(target, Target::One(_)) {
                outcomes.push(UpgradeOutcome { id, added });
            }
        }
        outcomes.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(outcomes)
    }

    /// What can be worked on now, and what waits on what.
    pub(super) fn work(&self, tasks: bool) -> ServiceResult<milestones_protocol::WorkReport> {
        Ok(self.open_work.read(&self.storage(), &self.feed, tasks, |index| index.report(tasks))?)
    }

    /// A page of [`Self::work`]'s ready or blocked items.
    pub(super) fn work_page(
        &self,
        tasks: bool,
        blocked: bool,
        offset: u64,
        limit: u64,
    ) -> ServiceResult<milestones_protocol::WorkPage> {
        let page = |index: &mut crate::work::WorkIndex| index.page(tasks, blocked, offset, limit);
        Ok(self.open_work.read(&self.storage(), &self.feed, tasks, page)?)
    }

    pub(super) fn stats(&self) -> ServiceResult<Analytics> {
        Ok(self.storage().analytics(chrono::Utc::now().date_naive())?)
    }

    fn graph(&self) -> ServiceResult<Arc<DependencyGraph>> {
        Ok(self.storage().dependency_graph()?)
    }
}
