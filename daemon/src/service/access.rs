//! Checking callers against `storage.access` ([`crate::access`]): the role
//! of each caller (remembered until the list is read again), the refusal
//! of a request its role does not cover (logged in the audit trail with
//! the user), and the socket's mode after each reading of the list.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use milestones_protocol::Request;
use serde_json::json;

use super::{MilestoneService, ServiceError, ServiceResult};
use crate::access::Role;
use crate::peer::Peer;

/// Each caller's role, by (uid, gid): the generation of the settings it
/// was worked out under, and when.
pub(super) type Roles = std::sync::Mutex<HashMap<(u32, u32), (u64, Instant, Option<Role>)>>;

/// How long a role is trusted before the group database is asked again
/// (someone taken out of a group loses its role within this).
const ROLE_LIFETIME: Duration = Duration::from_secs(30);

impl MilestoneService {
    /// What `peer` may do here; `None`: it may not connect.
    pub fn role_of(&self, peer: &Peer) -> Option<Role> {
        let key = (peer.uid, peer.gid);
        let (list, generation) = {
            let settings = self.settings.read().unwrap_or_else(|p| p.into_inner());
            let roles = self.roles.lock().unwrap_or_else(|p| p.into_inner());
            let known = roles.get(&key).filter(|(g, at, _)| *g == settings.generation && at.elapsed() < ROLE_LIFETIME);
            if let Some((_, _, role)) = known {
                return *role;
            }
            (settings.config.access.clone(), settings.generation)
        };
        // Worked out with no lock held: the group database may be slow
        // (LDAP), and other callers need not wait for it.
        let role = list.role_of(peer);
        self.roles.lock().unwrap_or_else(|p| p.into_inner()).insert(key, (generation, Instant::now(), role));
        role
    }

    /// Refuses `request` unless `peer`'s role covers it; a refusal changes
    /// nothing and is recorded in the audit trail.
    pub fn authorize(&self, request: &Request, kind: &str, peer: &Peer) -> ServiceResult<()> {
        let needed = Role::needed_for(request);
        let role = self.role_of(peer);
        if role.is_some_and(|r| r >= needed) {
            return Ok(());
        }
        let message = match role {
            Some(role) => format!(
                "permission denied: {} is a {} on this project; {kind} needs the {} role (storage.access in {})",
                peer.user,
                role.name(),
                needed.name(),
                super::CONFIG_FILE
            ),
            None => format!(
                "permission denied: {} is not on this project's access list (storage.access in {})",
                peer.user,
                super::CONFIG_FILE
            ),
        };
        let details = json!({ "request": kind, "role": role.map(Role::name), "needed": needed.name() });
        self.log("permission_denied", "", peer, details);
        Err(ServiceError::Denied(message))
    }

    /// Opens the socket as far as the list needs (see
    /// [`crate::access::AccessList::open_socket`]); systemd's socket is
    /// systemd's to set.
    pub(super) fn open_socket(&self) {
        if self.endpoint.socket_activated || self.endpoint.socket.is_empty() {
            return;
        }
        let path = std::path::Path::new(&self.endpoint.socket);
        let opened = self.settings.read().unwrap_or_else(|p| p.into_inner()).config.access.open_socket(path);
        match opened {
            Ok(mode) => tracing::debug!(socket = %path.display(), mode = format!("{mode:o}"), "socket mode set"),
            Err(e) => tracing::warn!(socket = %path.display(), error = %e, "cannot set the socket's mode"),
        }
    }
}
