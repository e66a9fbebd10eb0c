//! Requests about the audit trail: `AuditVerify` checks the hash chain of
//! `logs/storage-events.jsonl` (see [`crate::audit_chain`]).

use milestones_protocol::{AuditProblem, AuditReport};

use super::{MilestoneService, ServiceResult};
use crate::storage::StorageError;

impl MilestoneService {
    /// Reads the whole log and checks every sealed entry, and its end
    /// against the head this daemon last sealed.
    pub(super) fn audit_verify(&self) -> ServiceResult<AuditReport> {
        let path = self.events.path();
        let log = match std::fs::read_to_string(path) {
            Ok(log) => log,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(StorageError::io("read the audit log", path, e).into()),
        };
        let found = crate::audit_chain::verify(&log, self.events.head().as_ref());
        Ok(AuditReport {
            immutable: self.config().immutable_logs,
            entries: found.entries,
            sealed: found.sealed,
            before_sealing: found.before_sealing,
            problems: found
                .findings
                .into_iter()
                .map(|f| AuditProblem { line: f.line, seq: f.seq, message: f.message })
                .collect(),
        })
    }
}
