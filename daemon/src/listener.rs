//! Binding the Unix socket: private (mode 0600, made so before anyone can
//! connect), replacing a stale socket left by a dead daemon, and never
//! stealing a live one.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use milestones_protocol::socket_path::MAX_SOCKET_PATH;

#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("the socket path {} is {len} bytes long; Unix sockets allow at most {MAX_SOCKET_PATH} (choose a shorter --socket)", .path.display())]
    TooLong { path: PathBuf, len: usize },
    #[error("{} is the socket of another running process; not taking it over", .0.display())]
    InUse(PathBuf),
    #[error("cannot {action} {}: {source}", .path.display())]
    Io { action: &'static str, path: PathBuf, source: io::Error },
}

/// The bound socket; removes its file when dropped.
pub struct BoundSocket {
    pub listener: UnixListener,
    path: PathBuf,
}

impl BoundSocket {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for BoundSocket {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

pub fn bind(path: &Path) -> Result<BoundSocket, ListenError> {
    let len = path.as_os_str().len();
    if len > MAX_SOCKET_PATH {
        return Err(ListenError::TooLong { path: path.to_path_buf(), len });
    }
    let io = |action, source| ListenError::Io { action, path: path.to_path_buf(), source };
    if let Some(dir) = path.parent() {
        if !dir.exists() {
            fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| io("create the folder of", e))?;
        }
    }
    if fs::symlink_metadata(path).is_ok() {
        if UnixStream::connect(path).is_ok() {
            return Err(ListenError::InUse(path.to_path_buf()));
        }
        fs::remove_file(path).map_err(|e| io("remove the stale socket", e))?;
    }
    // The umask makes the socket 0600 from its first instant; chmod after
    // bind would leave a window. Called before the runtime starts threads.
    // SAFETY: umask has no preconditions.
    let old = unsafe { libc::umask(0o177) };
    let bound = UnixListener::bind(path);
    unsafe { libc::umask(old) };
    let listener = bound.map_err(|e| io("listen on", e))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(|e| io("restrict", e))?;
    listener.set_nonblocking(true).map_err(|e| io("configure", e))?;
    Ok(BoundSocket { listener, path: path.to_path_buf() })
}
