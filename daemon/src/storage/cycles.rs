//! The dependency-cycle check every backend runs inside its write, so that
//! two writers adding the two halves of a cycle at once cannot both pass it.

use milestones_protocol::Map;

use super::error::{StorageError, StorageResult};
use super::interface::Requirement;

/// Refuses `doc` when its dependencies would close a cycle through it.
/// `previous` is the stored version it replaces: unchanged dependencies need
/// no check. `stored` answers what a milestone requires as the backend holds
/// it now (read inside the write). Walks outward from the document, so the
/// cost is its neighbourhood, not the project.
pub fn refuse_cycle(
    doc: &Map,
    previous: Option<&Map>,
    mut stored: impl FnMut(&str) -> StorageResult<Vec<Requirement>>,
) -> StorageResult<()> {
    if previous.is_some_and(|p| p.get("dependencies") == doc.get("dependencies")) {
        return Ok(());
    }
    if crate::document::requires(doc).next().is_none() && crate::document::enables(doc).next().is_none() {
        return Ok(());
    }
    let id = crate::document::id(doc).unwrap_or_default();
    let own = crate::graph::declared_edges(doc);
    let cycle = crate::graph::find_cycle_through(id, |node| {
        let stored = stored(node)?.into_iter().filter(|r| r.declared_by != id).map(|r| r.to);
        let new = own.iter().filter(|e| e.from == node).map(|e| e.to.clone());
        Ok::<_, StorageError>(stored.chain(new).collect())
    })?;
    match cycle {
        Some(cycle) => Err(StorageError::Cycle(cycle)),
        None => Ok(()),
    }
}
