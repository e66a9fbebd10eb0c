//! Test harness: temporary project roots, the real `milestoned` started on
//! them, and the real `msctl` run against it.
//!
//! The binaries come from the same target folder as the test executable;
//! `cargo test --workspace` builds them because their packages have
//! integration tests.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub use milestones_client::protocol;
pub use milestones_client::{Client, ClientError};

pub mod bench;
pub mod corpus;
pub mod postgres;

/// A built binary of this workspace (`milestoned`, `msctl`).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test>-<hash>  or  target/<profile>/<bench>
    let mut dir = exe.parent().expect("executable folder").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join(name);
    assert!(path.is_file(), "{} is not built; run `cargo build --workspace` first", path.display());
    path
}

/// A fresh project folder, removed afterwards.
pub struct Project {
    /// Unmounted before the folder that holds it is removed.
    _disk: Option<SmallDisk>,
    _dir: tempfile::TempDir,
    pub root: PathBuf,
}

/// A tmpfs of a few MiB mounted for one test, to run a project out of
/// space; unmounted when dropped.
struct SmallDisk {
    path: PathBuf,
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("--lazy").arg(&self.path).status();
    }
}

impl Default for Project {
    fn default() -> Self {
        Self::new()
    }
}

impl Project {
    pub fn new() -> Project {
        let dir = tempfile::Builder::new().prefix("ms-").tempdir_in("/tmp").expect("temp dir");
        let root = dir.path().canonicalize().expect("canonical temp dir");
        Project { _disk: None, _dir: dir, root }
    }

    /// A new project on `backend` whose root is a disk of its own of
    /// `bytes` (a tmpfs), to fill up. Mounting needs root: otherwise
    /// `None`, and the caller says why it cannot run.
    pub fn on_small_disk(backend: &str, bytes: u64) -> Option<Project> {
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            return None;
        }
        let p = Project::new();
        let root = p.root.join("disk");
        std::fs::create_dir(&root).expect("mount point");
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(&root)
            .status()
            .expect("run mount");
        assert!(mounted.success(), "mount a tmpfs at {}", root.display());
        let p = Project { _disk: Some(SmallDisk { path: root.clone() }), root, ..p };
        p.write(".milestones/config/storage-backend.txt", &format!("{backend}\n"));
        Some(p)
    }

    /// Fills the disk the project is on until not one more byte fits;
    /// returns the file that holds the filling, to remove to free it.
    pub fn fill_disk(&self) -> PathBuf {
        let path = self.root.join("filler");
        let mut file = std::fs::File::create(&path).expect("create the filler");
        let block = vec![0u8; 64 * 1024];
        let mut size = block.len();
        // Smaller and smaller writes, down to one byte: the disk is full.
        while size > 0 {
            match file.write(&block[..size]) {
                Ok(0) | Err(_) => size /= 2,
                Ok(_) => {}
            }
        }
        path
    }

    /// A project whose root lies `depth` folders deep.
    pub fn nested(depth: usize) -> Project {
        let p = Project::new();
        let mut root = p.root.clone();
        for i in 0..depth {
            root.push(format!("folder-with-a-long-name-{i:02}"));
        }
        std::fs::create_dir_all(&root).expect("deep root");
        Project { root, ..p }
    }

    pub fn milestones(&self) -> PathBuf {
        self.root.join(".milestones")
    }

    /// Starts `milestoned --root ROOT --foreground` with `extra` arguments and
    /// waits until it answers.
    pub fn start(&self, extra: &[&str]) -> Daemon {
        self.start_command(Command::new(binary("milestoned")), extra)
    }

    /// Starts the daemon without waiting.
    pub fn spawn(&self, extra: &[&str]) -> Daemon {
        self.spawn_command(Command::new(binary("milestoned")), extra)
    }

    /// Starts the daemon with `env` added to its environment and waits
    /// until it answers.
    pub fn start_with_env(&self, env: &[(&str, &str)]) -> Daemon {
        let mut command = Command::new(binary("milestoned"));
        command.envs(env.iter().copied());
        self.start_command(command, &[])
    }

    /// Starts the daemon as an ordinary user, for whom file modes count (a
    /// `chmod 000` file is unreadable), and waits until it answers. As root
    /// the project is handed to `nobody`, and the daemon runs as `nobody`
    /// from a copy of its binary inside the project (the build folder may
    /// be out of `nobody`'s reach); otherwise it runs as the current user.
    pub fn start_as_ordinary_user(&self) -> Daemon {
        use std::os::unix::process::CommandExt;
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            return self.start(&[]);
        }
        const NOBODY: u32 = 65534;
        let program = self.root.join(".milestoned-as-nobody");
        if !program.exists() {
            std::fs::copy(binary("milestoned"), &program).expect("copy milestoned");
        }
        let chown = Command::new("chown").arg("-R").arg(format!("{NOBODY}:{NOBODY}")).arg(&self.root).status();
        assert!(chown.expect("run chown").success(), "chown the project to nobody");
        let mut command = Command::new(&program);
        command.uid(NOBODY).gid(NOBODY);
        self.start_command(command, &[])
    }

    /// Starts the daemon from `command` (a `milestoned` with its own
    /// environment or limits) with `extra` arguments and waits until it
    /// answers.
    pub fn start_command(&self, command: Command, extra: &[&str]) -> Daemon {
        let daemon = self.spawn_command(command, extra);
        daemon.wait_ready();
        daemon
    }

    fn spawn_command(&self, mut command: Command, extra: &[&str]) -> Daemon {
        let child = command
            .arg("--root")
            .arg(&self.root)
            .arg("--foreground")
            .args(if extra.contains(&"--log-level") { &[][..] } else { &["--log-level", "warn"][..] })
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start milestoned");
        let socket = extra
            .iter()
            .position(|a| *a == "--socket")
            .map(|i| PathBuf::from(extra[i + 1]))
            .unwrap_or_else(|| protocol::socket_path::default_socket_path(&self.root));
        Daemon { child: Some(child), socket }
    }

    /// Waits until no migration is under way: `msctl migrate` answers at
    /// the switch, and the old backend's files go after it.
    pub fn wait_until_no_migration(&self) {
        eventually("the migration's clean-up ends", Duration::from_secs(60), || {
            self.msctl(&["migrate", "status", "--json"]).json().is_null()
        });
    }

    /// The milestones `msctl ARGS... --json` lists (`ready`, `blocked`), in
    /// its order.
    pub fn work_ids(&self, args: &[&str]) -> Vec<String> {
        let items = self.msctl(&[args, &["--json"][..]].concat()).json();
        let items = items.as_array().unwrap_or_else(|| panic!("msctl {args:?} --json gave no list: {items}"));
        items.iter().map(|i| i["milestone"].as_str().unwrap_or_default().to_owned()).collect()
    }

    /// Runs `msctl --root ROOT ARGS...`.
    pub fn msctl(&self, args: &[&str]) -> Run {
        self.msctl_with_input(args, None)
    }

    /// Runs msctl with auto-start off: a test that wants a daemon starts one
    /// it controls, and none is left behind by accident.
    pub fn msctl_with_input(&self, args: &[&str], stdin: Option<&str>) -> Run {
        self.run_msctl(args, stdin, false)
    }

    /// Runs msctl with auto-start on, as people use it. The daemon it starts
    /// is the caller's to stop (see [`Project::stop_background_daemon`]).
    pub fn msctl_autostart(&self, args: &[&str]) -> Run {
        self.run_msctl(args, None, true)
    }

    /// Stops a daemon that detached into the background (auto-start,
    /// `msctl init`, `msctl daemon start`), if one is running.
    pub fn stop_background_daemon(&self) {
        let pid_file = self.milestones().join("milestoned.pid");
        if let Some(pid) = std::fs::read_to_string(&pid_file).ok().and_then(|p| p.trim().parse::<i32>().ok()) {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(pid, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(10);
            while pid_file.exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    fn run_msctl(&self, args: &[&str], stdin: Option<&str>, autostart: bool) -> Run {
        let mut command = Command::new(binary("msctl"));
        if autostart {
            command.env_remove("MSCTL_NO_AUTOSTART");
        } else {
            command.env("MSCTL_NO_AUTOSTART", "1");
        }
        let mut child = command
            .arg("--root")
            .arg(&self.root)
            .args(args)
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run msctl");
        if let Some(input) = stdin {
            child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write stdin");
        }
        Run::from(child.wait_with_output().expect("msctl output"))
    }

    /// A new project whose daemon will start on `backend` (`file`,
    /// `hybrid` or `database`, the latter on SQLite).
    pub fn on_backend(backend: &str) -> Project {
        let p = Project::new();
        p.write(".milestones/config/storage-backend.txt", &format!("{backend}\n"));
        p
    }

    /// A new project whose daemon will start on the database backend on
    /// PostgreSQL, at `url` (saved where `msctl init --url` saves it).
    pub fn on_postgresql(url: &str) -> Project {
        let p = Project::on_backend("database");
        p.write(".milestones/config/storage-config.yaml", "storage:\n  database:\n    type: \"postgresql\"\n");
        p.write(".milestones/database-url", url);
        p
    }

    /// A new project on `backend` as [`BACKENDS`] and [`SERVER_BACKEND`]
    /// name them, the latter on a fresh database of the tests' server.
    pub fn on_any_backend(backend: &str) -> Project {
        if backend == SERVER_BACKEND {
            Project::on_postgresql(&postgres::shared().database().url())
        } else {
            Project::on_backend(backend)
        }
    }

    /// Runs the `sqlite3` command-line shell on a database of the project,
    /// as the shell tooling does, and returns its output.
    #[track_caller]
    pub fn sqlite3(&self, db: &str, sql: &str) -> String {
        let out = Command::new("sqlite3")
            .arg(self.milestones().join(db))
            .arg(sql)
            .output()
            .expect("the sqlite3 command-line shell is installed (.ci/run installs it)");
        assert!(out.status.success(), "sqlite3 failed on {sql:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `git ARGS...` in the project root, as a fixed author, and
    /// returns its output; a failure fails the test.
    #[track_caller]
    pub fn git(&self, args: &[&str]) -> String {
        let run = self.git_run(args);
        assert!(run.code == 0, "git {args:?}: {}{}", run.stdout, run.stderr);
        run.stdout
    }

    /// Runs `git ARGS...` as [`Project::git`] does, whatever it returns (a
    /// merge that stops on a conflict, say). Editors are never opened.
    pub fn git_run(&self, args: &[&str]) -> Run {
        Command::new("git")
            .args(args)
            .current_dir(&self.root)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .env("GIT_EDITOR", "true")
            .output()
            .expect("run git")
            .into()
    }

    /// Writes a file under the project root (creating its folders) and
    /// returns its path.
    pub fn write(&self, rel: &str, contents: &str) -> PathBuf {
        let path = self.root.join(rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("parent folder");
        }
        std::fs::write(&path, contents).expect("write file");
        path
    }
}

/// What `msctl migrate NAME` asks for: `file`, `hybrid`, or `database` on
/// SQLite.
pub fn migration_target(backend: &str) -> protocol::BackendTarget {
    match backend {
        "file" => protocol::BackendTarget::File,
        "hybrid" => protocol::BackendTarget::Hybrid,
        _ => protocol::BackendTarget::Database(protocol::DatabaseKind::Sqlite),
    }
}

/// Waits, up to `within` (generous: the tests check correctness, not
/// speed), until `check` holds.
#[track_caller]
pub fn eventually(what: &str, within: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check() {
        assert!(Instant::now() < deadline, "never happened within {within:?}: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every backend, as `config/storage-backend.txt` names them.
pub const BACKENDS: [&str; 3] = ["file", "hybrid", "database"];

/// The database backend on PostgreSQL, for [`Project::on_any_backend`].
pub const SERVER_BACKEND: &str = "postgresql";

/// Every backend and database engine.
pub const ALL_BACKENDS: [&str; 4] = ["file", "hybrid", "database", SERVER_BACKEND];

/// A running daemon; sent SIGTERM and reaped when dropped.
pub struct Daemon {
    child: Option<Child>,
    pub socket: PathBuf,
}

impl Daemon {
    /// Takes charge of a daemon process the caller spawned (with stderr
    /// piped) listening at `socket`.
    pub fn adopt(child: Child, socket: PathBuf) -> Daemon {
        Daemon { child: Some(child), socket }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Client::connect(&self.socket, "e2e").is_err() {
            assert!(Instant::now() < deadline, "milestoned did not start serving on {}", self.socket.display());
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// A connected client. A daemon with few connection slots may still
    /// count one that just closed (the readiness probe's) for a moment:
    /// refused as busy, the connection is tried again.
    pub fn client(&self) -> Client {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match Client::connect(&self.socket, "e2e") {
                Ok(client) => return client,
                Err(ClientError::Rejected(_)) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Err(e) => panic!("connect to milestoned: {e:?}"),
            }
        }
    }

    /// A raw socket, for speaking bad protocol on purpose.
    pub fn raw(&self) -> UnixStream {
        let s = UnixStream::connect(&self.socket).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        s
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(self.pid() as i32, signal) };
    }

    /// Waits for the daemon to exit; returns its exit code and stderr.
    pub fn wait(mut self) -> (Option<i32>, String) {
        let child = self.child.take().expect("daemon");
        let out = wait_with_timeout(child, Duration::from_secs(20));
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    }

    /// SIGTERM, then wait.
    pub fn stop(self) -> (Option<i32>, String) {
        self.signal(libc::SIGTERM);
        self.wait()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: as above.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let _ = child.wait();
        }
    }
}

fn wait_with_timeout(mut child: Child, limit: Duration) -> Output {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let mut stderr = Vec::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_end(&mut stderr);
            }
            return Output { status, stdout: Vec::new(), stderr };
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("process {} did not exit within {limit:?}", child.id());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The outcome of one `msctl` run.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    /// Asserts success and returns stdout.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "msctl failed: {self:?}");
        &self.stdout
    }

    /// Asserts success and parses stdout as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.ok()).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }

    /// Asserts the exit code and that stderr is one line mentioning `needle`.
    #[track_caller]
    pub fn fails(&self, code: i32, needle: &str) {
        assert_eq!(self.code, code, "unexpected exit code: {self:?}");
        assert!(self.stderr.contains(needle), "stderr lacks {needle:?}: {self:?}");
        assert_eq!(self.stderr.trim_end().lines().count(), 1, "stderr is not one line: {self:?}");
    }
}

/// Deletes an SQLite database with its WAL and shared-memory files.
pub fn remove_sqlite(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

/// The seed 000 documents shipped as fixtures.
pub fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
