//! A throwaway PostgreSQL server for the tests: `initdb` and `postgres` in a
//! temporary folder, on a Unix socket and a free loopback port, run as the
//! `postgres` user when the tests run as root (the server refuses root).
//! The server dies with the test process (a parent-death signal), and a
//! later run removes what an earlier one left behind.
//!
//! `MILESTONED_TEST_PG_URL` names a server to use instead for the shared
//! one (a URL whose user may create databases); tests that stop and start
//! their server always start their own.
//!
//! A machine without the server binaries fails the tests that need them:
//! `.ci/run` installs Debian's `postgresql` package.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The superuser's password on loopback TCP (the Unix socket trusts).
pub const PASSWORD: &str = "pg-test-secret-7f3a";

pub struct PgServer {
    /// `None` for a server named by `MILESTONED_TEST_PG_URL`.
    own: Option<OwnServer>,
    /// The base URL to reach it as a superuser (database `postgres`).
    admin_url: String,
}

struct OwnServer {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    durable: bool,
    user: Option<(u32, u32)>,
    /// The postmaster's pid while it runs.
    pid: Mutex<Option<u32>>,
    /// TLS on: the server's certificate and key files.
    tls: Option<(PathBuf, PathBuf)>,
}

/// Certificates made for one test with `openssl`: a CA, a server
/// certificate it signed for 127.0.0.1 and localhost, and a second CA
/// that signed nothing (the wrong root).
pub struct TestCertificates {
    pub ca: PathBuf,
    pub other_ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
}

impl TestCertificates {
    pub fn make(dir: &Path) -> TestCertificates {
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .output()
                .expect("run openssl (Debian package `openssl`)");
            assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        for (key, cert, name) in [("ca.key", "ca.crt", "milestones test CA"), ("other.key", "other.crt", "another CA")]
        {
            openssl(&[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-keyout",
                key,
                "-out",
                cert,
                "-subj",
                &format!("/CN={name}"),
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ]);
        }
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ]);
        fs::write(dir.join("server.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
            .expect("extensions file");
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            "server.crt",
            "-extfile",
            "server.ext",
        ]);
        TestCertificates {
            ca: dir.join("ca.crt"),
            other_ca: dir.join("other.crt"),
            server_cert: dir.join("server.crt"),
            server_key: dir.join("server.key"),
        }
    }
}

/// One database on a test server, fresh for one test.
pub struct TestDatabase<'a> {
    pub name: String,
    server: &'a PgServer,
}

/// The server the tests of one process share.
pub fn shared() -> &'static PgServer {
    static SERVER: OnceLock<PgServer> = OnceLock::new();
    SERVER.get_or_init(|| match std::env::var("MILESTONED_TEST_PG_URL") {
        Ok(url) if !url.trim().is_empty() => PgServer { own: None, admin_url: url },
        _ => PgServer::start(false),
    })
}

impl PgServer {
    /// Starts a new server of its own. `durable`: fsync on, as a real
    /// server runs (for benchmarks); tests skip it.
    pub fn start(durable: bool) -> PgServer {
        PgServer::start_with(durable, None)
    }

    /// A server of its own with `ssl = on`, serving `certs`' server
    /// certificate.
    pub fn start_with_tls(certs: &TestCertificates) -> PgServer {
        PgServer::start_with(false, Some(certs))
    }

    fn start_with(durable: bool, certs: Option<&TestCertificates>) -> PgServer {
        let bin = server_binaries();
        let base = std::env::temp_dir().join("milestoned-test-pg");
        remove_abandoned(&base);
        let dir = base.join(format!("{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed)));
        fs::create_dir_all(&dir).expect("server folder");
        let user = server_user();
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).expect("give the server folder to postgres");
        }
        let pwfile = dir.join("pw");
        fs::write(&pwfile, PASSWORD).expect("password file");
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(&pwfile, Some(uid), Some(gid)).expect("give the password file to postgres");
        }
        let out = as_server_user(Command::new(bin.join("initdb")), user)
            .args(["-D"])
            .arg(dir.join("data"))
            .args(["-U", "postgres", "-E", "UTF8", "--no-locale", "--auth-local=trust", "--auth-host=scram-sha-256"])
            .arg(format!("--pwfile={}", pwfile.display()))
            .output()
            .expect("run initdb");
        assert!(out.status.success(), "initdb failed: {}", String::from_utf8_lossy(&out.stderr));
        let port = free_port();
        // The server reads its key only when the key is its own and private.
        let tls = certs.map(|certs| {
            let (cert, key) = (dir.join("server.crt"), dir.join("server.key"));
            fs::copy(&certs.server_cert, &cert).expect("server certificate");
            fs::copy(&certs.server_key, &key).expect("server key");
            fs::set_permissions(&key, <fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o600))
                .expect("key mode");
            if let Some((uid, gid)) = user {
                for file in [&cert, &key] {
                    std::os::unix::fs::chown(file, Some(uid), Some(gid)).expect("give the certificate to postgres");
                }
            }
            (cert, key)
        });
        let own = OwnServer { dir: dir.clone(), bin, port, durable, user, pid: Mutex::new(None), tls };
        own.run();
        let admin_url = format!("postgresql://postgres@/postgres?host={}&port={port}", dir.display());
        PgServer { own: Some(own), admin_url }
    }

    /// A fresh, empty database.
    pub fn database(&self) -> TestDatabase<'_> {
        static COUNT: AtomicU32 = AtomicU32::new(0);
        let name = format!("ms_{}_{}", std::process::id(), COUNT.fetch_add(1, Ordering::Relaxed));
        self.psql("postgres", &format!("CREATE DATABASE {name} ENCODING 'UTF8' TEMPLATE template0"));
        TestDatabase { name, server: self }
    }

    /// Stops the server (fast shutdown: clients are disconnected).
    pub fn stop(&self) {
        let own = self.own.as_ref().expect("only a server the tests started can be stopped");
        let out = as_server_user(Command::new(own.bin.join("pg_ctl")), own.user)
            .args(["stop", "-m", "fast", "-w", "-D"])
            .arg(own.dir.join("data"))
            .output()
            .expect("run pg_ctl stop");
        assert!(out.status.success(), "pg_ctl stop failed: {}", String::from_utf8_lossy(&out.stderr));
        *own.pid.lock().unwrap() = None;
    }

    /// Starts it again after [`PgServer::stop`].
    pub fn restart(&self) {
        self.own.as_ref().expect("only a server the tests started can be started").run();
    }

    /// Runs SQL as the superuser on database `db`; returns psql's
    /// unaligned output.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let url = with_database(&self.admin_url, db);
        let out = Command::new(client_binary("psql"))
            .args(["-X", "-At", "-v", "ON_ERROR_STOP=1", "-d", &url, "-c", sql])
            .output()
            .expect("run psql");
        assert!(out.status.success(), "psql {sql:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim_end().to_owned()
    }
}

impl TestDatabase<'_> {
    /// The database by the Unix socket (no password: the socket trusts).
    pub fn url(&self) -> String {
        with_database(&self.server.admin_url, &self.name)
    }

    /// The database by loopback TCP, with the superuser's password in the
    /// URL (to check that it is never shown). Only for servers the tests
    /// started.
    pub fn tcp_url(&self) -> String {
        let own = self.server.own.as_ref().expect("a TCP URL is known for servers the tests started");
        format!("postgresql://postgres:{PASSWORD}@127.0.0.1:{}/{}", own.port, self.name)
    }

    pub fn psql(&self, sql: &str) -> String {
        self.server.psql(&self.name, sql)
    }
}

impl OwnServer {
    /// Starts the postmaster from a thread that lives as long as the test
    /// process, so the parent-death signal fires only when the process
    /// ends; waits until it accepts connections.
    fn run(&self) {
        let mut cmd = as_server_user(Command::new(self.bin.join("postgres")), self.user);
        cmd.arg("-D").arg(self.dir.join("data")).arg("-k").arg(&self.dir);
        cmd.args(["-p", &self.port.to_string(), "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=300"]);
        if !self.durable {
            cmd.args(["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]);
        }
        if let Some((cert, key)) = &self.tls {
            cmd.args(["-c", "ssl=on"]);
            cmd.arg("-c").arg(format!("ssl_cert_file={}", cert.display()));
            cmd.arg("-c").arg(format!("ssl_key_file={}", key.display()));
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(self.dir.join("server.log")).map_or_else(|_| Stdio::null(), Stdio::from));
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let spawned = cmd.spawn();
            let pid = spawned.as_ref().map(|c| c.id()).map_err(|e| e.to_string());
            let _ = sender.send(pid);
            if let Ok(mut child) = spawned {
                let _ = child.wait();
            }
        });
        let pid = receiver.recv().expect("the postmaster thread").expect("start postgres");
        *self.pid.lock().unwrap() = Some(pid);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = Command::new(self.bin.join("pg_isready"))
                .arg("-h")
                .arg(&self.dir)
                .args(["-p", &self.port.to_string(), "-q"])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return;
            }
            assert!(Instant::now() < deadline, "postgres did not start: see {}", self.dir.join("server.log").display());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// The newest installed server's `bin` folder (Debian keeps each major
/// version under /usr/lib/postgresql), else the one on PATH.
fn server_binaries() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin): &(u32, PathBuf)| bin.join("postgres").is_file())
        .collect();
    found.sort();
    if let Some((_, bin)) = found.pop() {
        return bin;
    }
    let on_path = Command::new("pg_config").arg("--bindir").output().ok().filter(|o| o.status.success());
    match on_path {
        Some(out) => PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()),
        None => panic!(
            "the PostgreSQL tests need a PostgreSQL server (initdb, postgres): install Debian's `postgresql` \
             package (.ci/run does), or name a server in MILESTONED_TEST_PG_URL"
        ),
    }
}

fn client_binary(name: &str) -> PathBuf {
    let server = server_binaries();
    if server.join(name).is_file() {
        server.join(name)
    } else {
        PathBuf::from(name)
    }
}

/// `postgres`'s uid and gid when the tests run as root.
fn server_user() -> Option<(u32, u32)> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let name = std::ffi::CString::new("postgres").expect("no NUL");
    // SAFETY: getpwnam reads a NUL-terminated name; the result is copied
    // out at once, before any other call could reuse its buffer.
    let entry = unsafe { libc::getpwnam(name.as_ptr()) };
    assert!(!entry.is_null(), "the tests run as root, and the server refuses root: create a `postgres` user");
    // SAFETY: checked non-null above.
    let (uid, gid) = unsafe { ((*entry).pw_uid, (*entry).pw_gid) };
    Some((uid, gid))
}

/// `cmd` run as the server's user, dying with the thread that starts it.
fn as_server_user(mut cmd: Command, user: Option<(u32, u32)>) -> Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: between fork and exec only async-signal-safe calls are made.
    unsafe {
        cmd.pre_exec(move || {
            if let Some((uid, gid)) = user {
                if libc::setgroups(0, std::ptr::null()) != 0 || libc::setgid(gid) != 0 || libc::setuid(uid) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            // Set after the change of user, which clears it.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGINT);
            Ok(())
        });
    }
    if user.is_some() {
        // The server's user cannot read root's home; start somewhere it can.
        cmd.current_dir("/");
    }
    cmd
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

/// `url` with its database swapped for `db`.
fn with_database(url: &str, db: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a postgresql:// URL");
    let (authority, after) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let query = after.find('?').map_or("", |i| &after[i..]);
    format!("{scheme}://{authority}/{db}{query}")
}

/// Removes the folders of servers whose test process is gone.
fn remove_abandoned(base: &Path) {
    for entry in fs::read_dir(base).into_iter().flatten().flatten() {
        let name = entry.file_name();
        let pid: Option<i32> = name.to_str().and_then(|n| n.split('-').next()).and_then(|p| p.parse().ok());
        // SAFETY: kill with signal 0 only asks whether the process exists.
        let alive = pid.is_some_and(|pid| unsafe { libc::kill(pid, 0) } == 0);
        if !alive {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}
