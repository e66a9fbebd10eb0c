//! The listening Unix socket: bound here (private, mode 0600 from its first
//! instant, replacing a stale socket left by a dead daemon, never stealing a
//! live one), or handed over by systemd's socket activation, in which case
//! systemd owns the file and the daemon never removes it.

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

/// The listening socket; removes its file when dropped, unless systemd
/// handed it over.
pub struct BoundSocket {
    listener: Option<UnixListener>,
    path: PathBuf,
    inherited: bool,
}

impl BoundSocket {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Hands the listener over (to the server, which closes it as soon as it
    /// stops accepting); the path stays this guard's to remove.
    pub fn take_listener(&mut self) -> Option<UnixListener> {
        self.listener.take()
    }

    /// True when the socket came from systemd.
    pub fn inherited(&self) -> bool {
        self.inherited
    }
}

impl Drop for BoundSocket {
    fn drop(&mut self) {
        if !self.inherited {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// The first descriptor systemd passes (`SD_LISTEN_FDS_START`).
const LISTEN_FDS_START: i32 = 3;

/// The socket systemd passed to this process (`LISTEN_PID` is this process
/// and `LISTEN_FDS` at least 1), if any. The variables are removed so that
/// nothing this process starts mistakes them for its own.
pub fn from_systemd() -> Result<Option<BoundSocket>, ListenError> {
    let for_us =
        std::env::var("LISTEN_PID").ok().and_then(|p| p.trim().parse::<u32>().ok()) == Some(std::process::id());
    let count = std::env::var("LISTEN_FDS").ok().and_then(|n| n.trim().parse::<i32>().ok()).unwrap_or(0);
    // SAFETY: called at start-up, before the runtime creates threads.
    unsafe {
        std::env::remove_var("LISTEN_PID");
        std::env::remove_var("LISTEN_FDS");
        std::env::remove_var("LISTEN_FDNAMES");
    }
    if !for_us || count < 1 {
        return Ok(None);
    }
    let io = |action, source| ListenError::Io { action, path: PathBuf::from("<socket from systemd>"), source };
    // Trust, but check: a wrong LISTEN_FDS must be an error, not a wrapped
    // descriptor that is closed or is not a socket at all.
    // SAFETY: fstat writes only into `stat`, which is large enough.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(LISTEN_FDS_START, &mut stat) } != 0 || stat.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        return Err(io(
            "use",
            io::Error::new(io::ErrorKind::InvalidInput, "LISTEN_FDS names descriptor 3, which is not an open socket"),
        ));
    }
    // SAFETY: descriptor 3 is an open socket (checked above) that systemd
    // handed to this process alone.
    let listener = unsafe { <UnixListener as std::os::fd::FromRawFd>::from_raw_fd(LISTEN_FDS_START) };
    let address = listener.local_addr().map_err(|e| io("inspect", e))?;
    let path = address.as_pathname().map(Path::to_path_buf).ok_or_else(|| {
        io(
            "use",
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "systemd passed a socket that is not a Unix socket with a path",
            ),
        )
    })?;
    listener.set_nonblocking(true).map_err(|e| io("configure", e))?;
    Ok(Some(BoundSocket { listener: Some(listener), path, inherited: true }))
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
    if let Ok(meta) = fs::symlink_metadata(path) {
        if UnixStream::connect(path).is_ok() {
            return Err(ListenError::InUse(path.to_path_buf()));
        }
        // Only a dead socket is ours to clear; any other file is someone's.
        if !std::os::unix::fs::FileTypeExt::is_socket(&meta.file_type()) {
            return Err(io(
                "listen on",
                io::Error::new(io::ErrorKind::AlreadyExists, "a file that is not a socket is in the way"),
            ));
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
    Ok(BoundSocket { listener: Some(listener), path: path.to_path_buf(), inherited: false })
}
