//! Who is on the other end of a connection: the socket's peer credentials,
//! and the user name behind a uid (for the event log, and for the roles
//! `storage.access` gives: see [`crate::access`]).

use std::collections::HashMap;
use std::ffi::CStr;
use std::sync::Mutex;

/// The connecting process's identity.
#[derive(Debug, Clone)]
pub struct Peer {
    pub user: String,
    pub uid: u32,
    /// Its group, as the socket reports it.
    pub gid: u32,
}

impl Peer {
    /// The daemon's own user, or root.
    pub fn is_owner(&self) -> bool {
        // SAFETY: geteuid has no preconditions and cannot fail.
        self.uid == 0 || self.uid == unsafe { libc::geteuid() }
    }

    /// The daemon itself acting (the watcher, the scale monitor), named
    /// `user` in the audit log.
    pub fn daemon(user: &str) -> Peer {
        // SAFETY: geteuid and getegid have no preconditions and cannot fail.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        Peer { user: user.to_owned(), uid, gid }
    }
}

/// Resolves uids to user names once and remembers them.
#[derive(Default)]
pub struct UserNames {
    cache: Mutex<HashMap<u32, String>>,
}

impl UserNames {
    pub fn peer(&self, uid: u32, gid: u32) -> Peer {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let user = cache.entry(uid).or_insert_with(|| user_name(uid).unwrap_or_else(|| uid.to_string())).clone();
        Peer { user, uid, gid }
    }
}

fn user_name(uid: u32) -> Option<String> {
    let mut buf = vec![0u8; 4096];
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer refers to live, correctly sized storage owned by
    // this frame; getpwuid_r writes only within `buf`.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr().cast(), buf.len(), &mut result) };
    if rc != 0 || result.is_null() || pwd.pw_name.is_null() {
        return None;
    }
    // SAFETY: on success pw_name points to a NUL-terminated string in `buf`.
    Some(unsafe { CStr::from_ptr(pwd.pw_name) }.to_string_lossy().into_owned())
}
