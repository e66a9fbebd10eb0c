//! Who may do what (`storage.access`): the roles given to users and groups
//! besides the project's owner, the role each request needs, and the mode
//! of the socket that lets them reach the daemon at all. The socket's mode
//! only opens the door; every connection and every request is checked
//! against the caller's role from its peer credentials.

use std::ffi::CString;
use std::path::Path;

use milestones_protocol::{Request, Value};

use crate::peer::Peer;

/// What a caller may do; each role may do what the one before it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Reads: get, list, search, stats, deps, ready, watch, health, export.
    Reader,
    /// Also changes milestones: create, update, delete, complete, tasks,
    /// import.
    Writer,
    /// Also the project's storage: migrate, rollback, upgrade.
    Admin,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Writer => "writer",
            Role::Admin => "admin",
        }
    }

    fn parse(name: &str) -> Option<Role> {
        [Role::Reader, Role::Writer, Role::Admin].into_iter().find(|r| r.name() == name)
    }

    /// The role `request` needs.
    pub fn needed_for(request: &Request) -> Role {
        match request {
            Request::Ping
            | Request::Get { .. }
            | Request::List { .. }
            | Request::Deps { .. }
            | Request::Validate { .. }
            | Request::Stats
            | Request::Backend
            | Request::Status
            | Request::Subscribe { .. }
            | Request::DatabaseHealth
            | Request::DatabaseTls
            | Request::Scale
            | Request::MigrationHistory
            | Request::MigrationPlan { url: None, .. }
            | Request::MigrationStatus
            | Request::AuditVerify
            | Request::Work { .. }
            | Request::WorkPage { .. } => Role::Reader,
            Request::Create { .. }
            | Request::Update { .. }
            | Request::Delete { .. }
            | Request::Complete { .. }
            | Request::TaskAdd { .. }
            | Request::TaskSetStatus { .. }
            | Request::Import { .. } => Role::Writer,
            // A plan with a URL connects to the server it names.
            Request::Upgrade { .. }
            | Request::MigrationPlan { url: Some(_), .. }
            | Request::Migrate { .. }
            | Request::MigrateTo { .. }
            | Request::MigrateRollback { .. } => Role::Admin,
        }
    }
}

/// Who a line of `storage.access` is about.
#[derive(Debug, Clone, PartialEq)]
pub enum Grantee {
    User(String),
    Group(String),
}

/// `storage.access`: the roles of users and groups other than the owner.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AccessList {
    pub grants: Vec<(Grantee, Role)>,
}

impl AccessList {
    /// `storage.access` as written; the error names the entry at fault.
    pub fn parse(value: Option<&Value>) -> Result<AccessList, String> {
        let entries = match value {
            None | Some(Value::Null) => return Ok(AccessList::default()),
            Some(Value::List(entries)) => entries,
            Some(other) => {
                return Err(format!(
                    "storage.access must be a list such as [{{user: alice, role: writer}}], not a {}",
                    other.type_name()
                ))
            }
        };
        let mut grants = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            let at = format!("storage.access[{i}]");
            let Some(entry) = entry.as_map() else {
                return Err(format!("{at} must be a mapping such as {{user: alice, role: writer}}"));
            };
            if let Some(key) = entry.keys().find(|k| !["user", "group", "role"].contains(&k.as_str())) {
                return Err(format!("{at}.{key} is not a setting; an entry has `user` or `group`, and `role`"));
            }
            let text = |key: &str| match entry.get(key) {
                None => Ok(None),
                Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim().to_owned())),
                Some(_) => Err(format!("{at}.{key} must be a name")),
            };
            let who = match (text("user")?, text("group")?) {
                (Some(user), None) => Grantee::User(user),
                (None, Some(group)) => Grantee::Group(group),
                _ => return Err(format!("{at} names either a `user` or a `group`")),
            };
            let role = text("role")?.ok_or_else(|| format!("{at} needs a `role`: reader, writer or admin"))?;
            let role = Role::parse(&role)
                .ok_or_else(|| format!("{at}.role: `{role}` is not a role; roles are reader, writer and admin"))?;
            grants.push((who, role));
        }
        Ok(AccessList { grants })
    }

    /// The role of the process at the other end: `admin` for the daemon's
    /// own user and root; else the highest the list gives its user, its
    /// group (from the socket), or a group the group database lists it
    /// in; `None` when the list gives it nothing.
    pub fn role_of(&self, peer: &Peer) -> Option<Role> {
        if peer.is_owner() {
            return Some(Role::Admin);
        }
        let mut groups: Option<Vec<u32>> = None;
        let mut best = None;
        for (who, role) in &self.grants {
            let matches = match who {
                Grantee::User(name) => *name == peer.user || *name == peer.uid.to_string(),
                Grantee::Group(name) => group_id(name).is_some_and(|gid| {
                    gid == peer.gid || groups.get_or_insert_with(|| groups_of(&peer.user, peer.gid)).contains(&gid)
                }),
            };
            if matches {
                best = best.max(Some(*role));
            }
        }
        best
    }

    /// Makes the socket at `path` reachable by those the list names, and
    /// no further: owner-only (0600) with no list; group-only (0660, the
    /// socket handed to that group) when the list names one group and no
    /// user; else anyone may connect (0666) and the peer check decides.
    pub fn open_socket(&self, path: &Path) -> std::io::Result<u32> {
        use std::os::unix::fs::PermissionsExt;
        let only_group = match self.grants.as_slice() {
            [] => None,
            grants => {
                let mut groups = grants.iter().map(|(who, _)| match who {
                    Grantee::Group(name) => group_id(name),
                    Grantee::User(_) => None,
                });
                let first = groups.next().flatten();
                first.filter(|g| groups.all(|other| other == Some(*g)))
            }
        };
        let mode = match (self.grants.is_empty(), only_group) {
            (true, _) => 0o600,
            (false, Some(gid)) if std::os::unix::fs::chown(path, None, Some(gid)).is_ok() => 0o660,
            (false, _) => 0o666,
        };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
        Ok(mode)
    }
}

/// The id of the group `name`, from the group database.
fn group_id(name: &str) -> Option<u32> {
    let name = CString::new(name).ok()?;
    // A group with many members (LDAP, sssd) needs a larger buffer.
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        // SAFETY: an all-zero group is a valid out-parameter.
        let mut group: libc::group = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::group = std::ptr::null_mut();
        // SAFETY: every pointer refers to live, correctly sized storage
        // owned by this frame; getgrnam_r writes only within `buf`.
        let rc =
            unsafe { libc::getgrnam_r(name.as_ptr(), &mut group, buf.as_mut_ptr().cast(), buf.len(), &mut result) };
        match rc {
            libc::ERANGE if buf.len() < 16 * 1024 * 1024 => buf.resize(buf.len() * 4, 0),
            0 if !result.is_null() => return Some(group.gr_gid),
            _ => return None,
        }
    }
}

/// Every group the group database lists `user` in, with `primary`.
fn groups_of(user: &str, primary: u32) -> Vec<u32> {
    let Ok(name) = CString::new(user) else { return vec![primary] };
    let mut groups = vec![0 as libc::gid_t; 64];
    loop {
        let mut count = groups.len() as libc::c_int;
        // SAFETY: `groups` holds `count` entries; getgrouplist writes at
        // most that many and says how many it needed.
        let rc = unsafe { libc::getgrouplist(name.as_ptr(), primary, groups.as_mut_ptr(), &mut count) };
        if rc >= 0 {
            groups.truncate(usize::try_from(count).unwrap_or(0));
            return groups;
        }
        if usize::try_from(count).unwrap_or(0) <= groups.len() {
            return vec![primary];
        }
        groups.resize(usize::try_from(count).unwrap_or(0), 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(yaml: &str) -> Result<AccessList, String> {
        let doc = crate::yaml::parse_document(&format!("id: x\naccess: {yaml}\n"), "test").unwrap();
        AccessList::parse(doc.get("access"))
    }

    #[test]
    fn entries_are_read_and_mistakes_named() {
        let parsed = list("[{user: alice, role: writer}, {group: devs, role: reader}]").unwrap();
        assert_eq!(
            parsed.grants,
            [(Grantee::User("alice".into()), Role::Writer), (Grantee::Group("devs".into()), Role::Reader)]
        );
        let err = |yaml: &str| list(yaml).unwrap_err();
        assert!(err("[{user: a, role: boss}]").contains("storage.access[0].role: `boss` is not a role"));
        assert!(err("[{user: a, group: b, role: reader}]").contains("storage.access[0] names either"));
        assert!(err("[{user: a}]").contains("needs a `role`"));
        assert!(err("[{user: a, role: reader, until: 2027}]").contains("storage.access[0].until is not a setting"));
        assert!(err("{user: a}").contains("must be a list"));
    }

    #[test]
    fn the_owner_is_admin_and_others_get_the_highest_grant() {
        let parsed = list("[{user: alice, role: reader}, {user: alice, role: writer}]").unwrap();
        let peer = |user: &str, uid| Peer { user: user.into(), uid, gid: 54_999 };
        // SAFETY: geteuid has no preconditions and cannot fail.
        let me = unsafe { libc::geteuid() };
        assert_eq!(parsed.role_of(&peer("me", me)), Some(Role::Admin));
        assert_eq!(parsed.role_of(&peer("alice", 54_321)), Some(Role::Writer));
        assert_eq!(parsed.role_of(&peer("bob", 54_322)), None);
    }
}
