//! Crash-safe file replacement: write a temporary file in the same folder,
//! fsync it, rename it over the target, fsync the folder. A crash at any point
//! leaves either the old file or the new one, never a torn one, and a full
//! disk fails the write without touching the file that was there.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A filesystem operation that failed, with the path it failed on.
#[derive(Debug, thiserror::Error)]
#[error("cannot {action} {}: {source}", .path.display())]
pub struct FileError {
    pub action: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

impl FileError {
    pub fn new(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        FileError { action, path: path.into(), source }
    }
}

type FileResult<T> = Result<T, FileError>;

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Atomically writes `bytes` to `dir/name`.
pub fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> FileResult<()> {
    write_renamed(dir, name, bytes, true, 0o666)?;
    sync_dir(dir)
}

/// [`write_atomically`] for a secret: the file is readable by its owner
/// only, from the moment it exists.
pub fn write_private(dir: &Path, name: &str, bytes: &[u8]) -> FileResult<()> {
    write_renamed(dir, name, bytes, true, 0o600)?;
    sync_dir(dir)
}

/// Writes a file by temp-and-rename without syncing anything: for bulk
/// exports that [`sync_filesystem`] makes durable in one go before they
/// count.
pub fn write_unsynced(dir: &Path, name: &str, bytes: &[u8]) -> FileResult<()> {
    write_renamed(dir, name, bytes, false, 0o666)
}

/// Makes everything written to the filesystem holding `dir` durable: one
/// `syncfs` instead of a hundred thousand `fsync`s.
#[cfg(target_os = "linux")]
pub fn sync_filesystem(dir: &Path) -> FileResult<()> {
    use std::os::fd::AsRawFd;
    let folder = File::open(dir).map_err(|e| FileError::new("open", dir, e))?;
    // SAFETY: syncfs only reads the descriptor, which `folder` keeps open.
    if unsafe { libc::syncfs(folder.as_raw_fd()) } != 0 {
        return Err(FileError::new("sync the filesystem of", dir, std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Elsewhere there is no `syncfs`; `sync` flushes every filesystem.
#[cfg(not(target_os = "linux"))]
pub fn sync_filesystem(_dir: &Path) -> FileResult<()> {
    // SAFETY: sync takes no arguments and cannot fail.
    unsafe { libc::sync() };
    Ok(())
}

pub fn write_renamed(dir: &Path, name: &str, bytes: &[u8], durable: bool, mode: u32) -> FileResult<()> {
    let temp = write_temporary(dir, name, bytes, durable, mode)?;
    let target = dir.join(name);
    fs::rename(&temp, &target).map_err(|e| {
        let _ = fs::remove_file(&temp);
        FileError::new("rename into place", &target, e)
    })
}

/// Writes `bytes` to a new temporary file in `dir` for `name`, to be
/// renamed into place: hidden and ending in `.tmp` (`.NAME.PID.N.tmp`), so
/// watchers and the shell tooling skip it, and start-up removes it should
/// the process be killed before the rename. Nothing is left on failure.
pub fn write_temporary(dir: &Path, name: &str, bytes: &[u8], durable: bool, mode: u32) -> FileResult<PathBuf> {
    use std::os::unix::fs::OpenOptionsExt;
    let temp = dir.join(format!(".{name}.{}.{}.tmp", std::process::id(), TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&temp)
            .map_err(|e| FileError::new("create", &temp, e))?;
        f.write_all(bytes).map_err(|e| FileError::new("write", &temp, e))?;
        if durable {
            f.sync_all().map_err(|e| FileError::new("sync", &temp, e))?;
        }
        Ok(())
    })();
    match result {
        Ok(()) => Ok(temp),
        Err(e) => {
            let _ = fs::remove_file(&temp);
            Err(e)
        }
    }
}

/// Removes from `dir` the temporary files of writes that a process killed
/// in the middle left behind ([`write_renamed`]'s `.NAME.PID.N.tmp`), those
/// of a process no longer running; returns how many went. Nothing else in
/// `dir` is touched, and a folder that is not there has none.
pub fn remove_abandoned_temp_files(dir: &Path) -> FileResult<usize> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(FileError::new("read folder", dir, e)),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry.map_err(|e| FileError::new("read folder", dir, e))?;
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(temp_file_writer) else { continue };
        if process_is_running(pid) {
            continue;
        }
        match fs::remove_file(entry.path()) {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(FileError::new("remove", entry.path(), e)),
        }
    }
    Ok(removed)
}

/// The process that wrote a temporary file named `.NAME.PID.N.tmp`.
fn temp_file_writer(name: &str) -> Option<i32> {
    let inner = name.strip_prefix('.')?.strip_suffix(".tmp")?;
    let mut parts = inner.rsplitn(3, '.');
    let (_counter, pid, _name) = (parts.next()?.parse::<u64>().ok()?, parts.next()?, parts.next()?);
    pid.parse().ok()
}

fn process_is_running(pid: i32) -> bool {
    // SAFETY: signal 0 only asks whether the process exists.
    unsafe { libc::kill(pid, 0) == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM) }
}

/// Makes a rename or unlink in `dir` durable.
pub fn sync_dir(dir: &Path) -> FileResult<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| FileError::new("sync folder", dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_temporary_file_names_its_writer() {
        assert_eq!(temp_file_writer(".auth-core.yaml.4242.17.tmp"), Some(4242));
        assert_eq!(temp_file_writer(".storage-backend.txt.7.0.tmp"), Some(7));
        for other in ["auth.yaml", ".notes.tmp", ".a.yaml.x.1.tmp", ".a.yaml.12.tmp", "a.yaml.1.2.tmp"] {
            assert_eq!(temp_file_writer(other), None, "{other}");
        }
    }
}
