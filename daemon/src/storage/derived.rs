//! `Derived`: what a store works out from every milestone at once (the
//! dependency graph with its cycles and critical path, and `msctl stats`),
//! kept for the requests that follow until the milestones change. Each
//! store decides what "changed" means: SQLite forgets it when `PRAGMA
//! data_version` moves, but brings the graph up to date from the log of
//! its changes; the file backend, which sees every change, keeps the graph
//! up to date itself. Both forget the rest.

use std::sync::Arc;

use chrono::NaiveDate;
use milestones_protocol::Analytics;

use super::error::StorageResult;
use crate::graph::DependencyGraph;

#[derive(Default)]
pub struct Derived {
    graph: Option<Arc<DependencyGraph>>,
    /// `stats`, and the day it was computed for (its trend ends that day).
    analytics: Option<(NaiveDate, Analytics)>,
}

impl Derived {
    /// Forgets everything but the graph, which the caller takes to bring
    /// up to date itself (`None`: none was kept).
    pub fn take_graph(&mut self) -> Option<Arc<DependencyGraph>> {
        std::mem::take(self).graph
    }

    /// Keeps `graph` (what it has not worked out is worked out on first
    /// use).
    pub fn keep_graph(&mut self, graph: Arc<DependencyGraph>) {
        self.graph = Some(graph);
    }

    /// The graph, built by `build` the first time.
    pub fn graph(
        &mut self,
        build: impl FnOnce() -> StorageResult<DependencyGraph>,
    ) -> StorageResult<&Arc<DependencyGraph>> {
        match &mut self.graph {
            Some(graph) => Ok(graph),
            empty @ None => {
                let graph = build()?;
                // Now, while it is built, rather than by a request.
                graph.work_out();
                Ok(empty.insert(Arc::new(graph)))
            }
        }
    }

    /// `stats` for `today`, computed by `compute` (from the graph `build`
    /// makes, if it is not there yet) the first time that day.
    pub fn analytics(
        &mut self,
        today: NaiveDate,
        build: impl FnOnce() -> StorageResult<DependencyGraph>,
        compute: impl FnOnce(&DependencyGraph) -> StorageResult<Analytics>,
    ) -> StorageResult<Analytics> {
        if let Some((day, analytics)) = &self.analytics {
            if *day == today {
                return Ok(analytics.clone());
            }
        }
        let analytics = compute(self.graph(build)?)?;
        self.analytics = Some((today, analytics.clone()));
        Ok(analytics)
    }
}
