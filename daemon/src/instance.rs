//! One daemon per project root. The lock file decides liveness: it is locked
//! (`flock`) for the daemon's whole life and never unlinked, because
//! unlinking a held lock lets a second daemon lock a fresh file at the same
//! path (one of beads' recurring bugs). The pid inside is only for messages.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    #[error("another milestoned (pid {pid}) is already running for this project (lock {})", .path.display())]
    AlreadyRunning { pid: String, path: PathBuf },
    #[error("cannot use the lock file {}: {source}", .path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

/// Held while the daemon runs; dropping it (or the process dying) releases
/// the lock.
pub struct InstanceLock {
    _file: File,
}

impl InstanceLock {
    pub fn acquire(path: &Path) -> Result<InstanceLock, InstanceError> {
        let io = |source| InstanceError::Io { path: path.to_path_buf(), source };
        let mut file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path).map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let pid = if pid.trim().is_empty() { "unknown".to_owned() } else { pid.trim().to_owned() };
                return Err(InstanceError::AlreadyRunning { pid, path: path.to_path_buf() });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        // The pid is for messages only: the lock is held whether or not it
        // can be written (a full disk).
        let noted = file.set_len(0).and_then(|()| file.rewind()).and_then(|_| writeln!(file, "{}", std::process::id()));
        if let Err(e) = noted {
            tracing::warn!(file = %path.display(), error = %e, "cannot note the pid in the lock file");
        }
        Ok(InstanceLock { _file: file })
    }
}

/// `milestoned.pid`: written once serving, removed at exit.
pub struct PidFile {
    path: PathBuf,
}

impl PidFile {
    pub fn write(path: &Path) -> std::io::Result<PidFile> {
        fs::write(path, format!("{}\n", std::process::id()))?;
        Ok(PidFile { path: path.to_path_buf() })
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}
