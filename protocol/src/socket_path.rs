//! Where a project's daemon listens. The daemon and every client derive the
//! same path from the project root, so nothing needs to be configured.

use std::path::{Path, PathBuf};

/// The socket's file name inside `.milestones/`.
pub const SOCKET_FILE: &str = "milestoned.sock";

/// Longest socket path we bind: Linux allows 107 bytes, macOS 103; stay under
/// both.
pub const MAX_SOCKET_PATH: usize = 100;

/// `.milestones/milestoned.sock` when it fits in a Unix socket address,
/// otherwise a short path under `$XDG_RUNTIME_DIR` (or the temp dir) named
/// after a hash of the root.
pub fn default_socket_path(root: &Path) -> PathBuf {
    let preferred = root.join(".milestones").join(SOCKET_FILE);
    if preferred.as_os_str().len() <= MAX_SOCKET_PATH {
        return preferred;
    }
    runtime_dir().join(format!("{:016x}.sock", fnv1a(root.as_os_str().as_encoded_bytes())))
}

/// The private folder that holds sockets whose preferred path is too long.
pub fn runtime_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) if !dir.is_empty() && Path::new(&dir).join("milestoned").as_os_str().len() < 60 => {
            Path::new(&dir).join("milestoned")
        }
        // SAFETY: geteuid has no preconditions and cannot fail.
        _ => PathBuf::from(format!("/tmp/milestoned-{}", unsafe { libc::geteuid() })),
    }
}

/// FNV-1a, 64 bits: stable across releases and platforms, unlike std's hasher.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_roots_use_the_project_folder() {
        assert_eq!(default_socket_path(Path::new("/p")), Path::new("/p/.milestones/milestoned.sock"));
    }

    #[test]
    fn long_roots_get_a_short_stable_path() {
        let root = PathBuf::from(format!("/{}", "deep/".repeat(40)));
        let a = default_socket_path(&root);
        assert_eq!(a, default_socket_path(&root));
        assert!(a.as_os_str().len() <= MAX_SOCKET_PATH, "{a:?}");
        assert_ne!(a, default_socket_path(&root.join("other")));
    }
}
