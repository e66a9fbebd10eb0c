//! milestoned as a Unix service: detaching and returning once serving,
//! stopping cleanly, SIGHUP reloads, serialised auto-start from msctl,
//! socket activation as systemd does it, and the unit files and plist.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use milestones_e2e::protocol::{Request, Response};
use milestones_e2e::{binary, Project};

/// Stops whatever background daemon the test started, even when it fails.
struct Cleanup<'a>(&'a Project);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        self.0.stop_background_daemon();
    }
}

fn pid_file(p: &Project) -> std::path::PathBuf {
    p.milestones().join("milestoned.pid")
}

fn alive(pid: i32) -> bool {
    // A zombie (exited, not yet reaped by init) counts as gone.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    !stat.is_empty() && !stat.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z')
}

#[test]
fn a_detached_daemon_returns_once_serving_and_stops_cleanly() {
    let p = Project::new();
    let _cleanup = Cleanup(&p);
    let out = Command::new(binary("milestoned")).arg("--root").arg(&p.root).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    // Serving the moment the command returns: no retry loop here.
    let status = p.msctl(&["daemon", "status", "--json"]).json();
    let pid = status["daemon"]["pid"].as_i64().unwrap() as i32;
    assert_eq!(std::fs::read_to_string(pid_file(&p)).unwrap().trim(), pid.to_string());
    assert_ne!(pid as u32, std::process::id());
    assert_eq!(status["daemon"]["backend"], "file");
    assert_eq!(status["daemon"]["daemon_version"], status["msctl_version"]);
    let socket = p.milestones().join("milestoned.sock");
    assert!(socket.exists());

    let log = p.msctl(&["daemon", "logs", "-n", "5"]).ok().to_owned();
    assert!(log.contains("serving"), "{log}");
    assert!(!log.contains('\u{1b}'), "no colour codes in a log file: {log:?}");

    let stopped = p.msctl(&["daemon", "stop", "--json"]).json();
    assert_eq!(stopped["stopped"], true);
    assert!(!socket.exists(), "the socket is removed");
    assert!(!pid_file(&p).exists(), "the pid file is removed");
    assert!(!alive(pid));
    assert_eq!(p.msctl(&["daemon", "stop", "--json"]).json()["stopped"], false, "stopping twice is fine");
    p.msctl(&["daemon", "status"]).fails(6, "no milestoned is running");
}

#[test]
fn a_daemon_that_cannot_start_says_why() {
    let p = Project::new();
    let _cleanup = Cleanup(&p);
    p.write(".milestones/config/storage-backend.txt", "bogus\n");
    let out = Command::new(binary("milestoned")).arg("--root").arg(&p.root).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("names the `bogus` backend"), "{stderr}");
    // msctl passes the daemon's own words on.
    p.msctl_autostart(&["list"])
        .fails(1, "milestoned did not start: config/storage-backend.txt names the `bogus` backend");
    // A second daemon for the same root is refused with the running one's pid.
    std::fs::write(p.milestones().join("config/storage-backend.txt"), "file\n").unwrap();
    p.msctl_autostart(&["daemon", "start"]).ok();
    let pid = std::fs::read_to_string(pid_file(&p)).unwrap();
    let second = Command::new(binary("milestoned")).arg("--root").arg(&p.root).output().unwrap();
    assert_eq!(second.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains(&format!("another milestoned (pid {}) is already running", pid.trim())), "{stderr}");
}

#[test]
fn sighup_reloads_settings_without_dropping_clients() {
    let p = Project::new();
    // Started without --log-level, so the configuration decides the level.
    let child = Command::new(binary("milestoned"))
        .arg("--root")
        .arg(&p.root)
        .arg("--foreground")
        .env_remove("MILESTONED_LOG")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let daemon =
        milestones_e2e::Daemon::adopt(child, milestones_e2e::protocol::socket_path::default_socket_path(&p.root));
    daemon.wait_ready();
    let mut client = daemon.client();
    let status = |client: &mut milestones_client::Client| match client.request(Request::Status).unwrap() {
        Response::Status(s) => s,
        other => panic!("{other:?}"),
    };
    let before = status(&mut client);
    assert_eq!(before.log_level, "info");
    assert_eq!(before.thresholds.file_to_hybrid_milestones, 25);

    let config = p.milestones().join("config/storage-config.yaml");
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text
        .replace("# log_level: \"info\"", "log_level: \"debug\"")
        .replace("file_to_hybrid: 25", "file_to_hybrid: 40");
    std::fs::write(&config, text).unwrap();
    daemon.signal(libc::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(5);
    let after = loop {
        let s = status(&mut client);
        if s.log_level != before.log_level || Instant::now() > deadline {
            break s;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(after.log_level, "debug", "{after:?}");
    assert_eq!(after.thresholds.file_to_hybrid_milestones, 40);
    assert_eq!(after.pid as i32, pid, "same process");
    // The same connection goes on working, and debug lines now appear.
    client.request(Request::Get { id: "nothing-here".into() }).unwrap_err();

    // A configuration that does not parse is refused; the settings stay.
    std::fs::write(&config, "storage: [unclosed").unwrap();
    daemon.signal(libc::SIGHUP);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(status(&mut client).thresholds.file_to_hybrid_milestones, 40);
    let (code, stderr) = daemon.stop();
    assert_eq!(code, Some(0));
    assert!(stderr.contains("request=\"get\" milestone=nothing-here"), "{stderr}");
    assert!(stderr.contains("not reloaded"), "{stderr}");
}

#[test]
fn ten_concurrent_commands_start_exactly_one_daemon() {
    let p = Project::new();
    std::fs::create_dir_all(p.milestones()).unwrap();
    let _cleanup = Cleanup(&p);
    let runs: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..10).map(|_| s.spawn(|| p.msctl_autostart(&["list", "--json"]))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for run in &runs {
        assert_eq!(run.code, 0, "{run:?}");
    }
    let log = std::fs::read_to_string(p.milestones().join("logs/milestoned.log")).unwrap();
    assert_eq!(log.matches(" serving ").count(), 1, "exactly one daemon started: {log}");
    assert!(!log.contains("already running"), "{log}");
}

#[test]
fn auto_start_can_be_turned_off() {
    let p = Project::new();
    std::fs::create_dir_all(p.milestones()).unwrap();
    let _cleanup = Cleanup(&p);
    p.msctl(&["list"]).fails(6, "no milestoned is running");
    let flag = Command::new(binary("msctl"))
        .args(["--no-autostart", "--root"])
        .arg(&p.root)
        .arg("list")
        .env_remove("MSCTL_NO_AUTOSTART")
        .output()
        .unwrap();
    assert_eq!(flag.status.code(), Some(6));
    assert!(!pid_file(&p).exists(), "no daemon was started");
    // And on: the same command just works.
    assert_eq!(p.msctl_autostart(&["list", "--json"]).ok().trim(), "[]");
}

#[test]
fn auto_start_works_where_the_socket_path_is_too_long() {
    let p = Project::nested(12);
    std::fs::create_dir_all(p.milestones()).unwrap();
    let _cleanup = Cleanup(&p);
    assert!(p.milestones().join("milestoned.sock").as_os_str().len() > 108);
    p.msctl_autostart(&["create", "--title", "Deep"]).ok();
    let status = p.msctl(&["daemon", "status", "--json"]).json();
    let socket = status["daemon"]["socket"].as_str().unwrap();
    assert!(socket.len() <= 108 && !socket.starts_with(p.root.to_str().unwrap()), "{socket}");
    assert_eq!(status["daemon"]["milestones"], 1);
}

#[test]
fn restart_replaces_the_daemon() {
    let p = Project::new();
    let _cleanup = Cleanup(&p);
    p.msctl(&["daemon", "start"]).ok();
    let first = std::fs::read_to_string(pid_file(&p)).unwrap();
    let id = p.msctl(&["create", "--title", "Kept"]).ok().trim().to_owned();
    let restarted = p.msctl(&["daemon", "restart", "--json"]).json();
    assert_eq!(restarted["state"], "restarted");
    let second = std::fs::read_to_string(pid_file(&p)).unwrap();
    assert_ne!(first, second);
    assert_eq!(p.msctl(&["get", &id, "--json"]).json()["title"], "Kept");
}

#[test]
fn socket_activation_takes_the_socket_systemd_hands_over() {
    let p = Project::new();
    let path = p.root.join("activated.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&listener);
    // As systemd does: the socket as descriptor 3, LISTEN_FDS=1 and
    // LISTEN_PID naming the daemon's own pid (the shell's, kept by exec).
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg("LISTEN_PID=$$ LISTEN_FDS=1 exec \"$0\" --root \"$1\" --foreground --log-level info")
        .arg(binary("milestoned"))
        .arg(&p.root)
        .stderr(Stdio::piped());
    // SAFETY: dup2 and fcntl are async-signal-safe; they only renumber a
    // descriptor and clear its close-on-exec flag.
    unsafe {
        command.pre_exec(move || {
            // dup2 onto itself keeps close-on-exec, so clear it by hand.
            let ok = if fd == 3 { libc::fcntl(3, libc::F_SETFD, 0) } else { libc::dup2(fd, 3) };
            if ok < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let daemon = milestones_e2e::Daemon::adopt(command.spawn().unwrap(), path.clone());
    daemon.wait_ready();
    drop(listener);
    let status = match daemon.client().request(Request::Status).unwrap() {
        Response::Status(s) => s,
        other => panic!("{other:?}"),
    };
    assert!(status.socket_activated);
    assert_eq!(Path::new(&status.socket), path);
    assert!(!p.milestones().join("milestoned.sock").exists(), "no socket of its own");
    let (code, stderr) = daemon.stop();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(path.exists(), "the socket belongs to systemd and stays");
}

#[test]
fn unit_files_verify_and_the_plist_parses() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let plist = repo.join("launchd/org.milestoned.plist");
    let parsed = Command::new("python3")
        .args(["-c", "import plistlib,sys; p=plistlib.load(open(sys.argv[1],'rb')); print(p['Label'], p['RunAtLoad'], p['ProgramArguments'][-1])"])
        .arg(&plist)
        .output()
        .unwrap();
    assert!(parsed.status.success(), "{parsed:?}");
    assert_eq!(String::from_utf8_lossy(&parsed.stdout).trim(), "org.milestoned.project True --foreground");

    if Command::new("systemd-analyze").arg("--version").output().is_err() {
        eprintln!("systemd-analyze is not installed; unit files not verified");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let daemon = binary("milestoned");
    let daemon = daemon.to_str().unwrap();
    let units = [
        ("milestoned.service", "milestoned.service"),
        ("milestoned.socket", "milestoned.socket"),
        ("milestoned@.service", "milestoned@srv-project.service"),
        ("milestoned@.socket", "milestoned@srv-project.socket"),
    ];
    let mut paths = Vec::new();
    for (source, name) in units {
        // verify checks that ExecStart exists: point it at the built binary.
        let text = std::fs::read_to_string(repo.join("systemd").join(source))
            .unwrap()
            .replace("/usr/local/bin/milestoned", daemon)
            .replace("%h/.cargo/bin/milestoned", daemon);
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        paths.push(path);
    }
    let out = Command::new("systemd-analyze").arg("verify").args(&paths).output().unwrap();
    assert!(out.status.success() && out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// A daemon of another version, standing in for one installed before an
/// upgrade (no other build exists to run): it answers the handshake with
/// `reply`, then one request with a pong.
fn other_version(p: &Project, reply: milestones_e2e::protocol::HandshakeReply) -> std::thread::JoinHandle<()> {
    use milestones_e2e::protocol::frame::{read_frame, write_frame};
    use milestones_e2e::protocol::handshake::encode_handshake;
    use milestones_e2e::protocol::{codec, Encoding, RequestFrame, ServerMessage, DEFAULT_MAX_FRAME};
    std::fs::create_dir_all(p.milestones()).unwrap();
    let listener = std::os::unix::net::UnixListener::bind(p.milestones().join("milestoned.sock")).unwrap();
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        read_frame(&mut stream, DEFAULT_MAX_FRAME).unwrap();
        write_frame(&mut stream, &encode_handshake(&reply), DEFAULT_MAX_FRAME).unwrap();
        if let Ok(Some(bytes)) = read_frame(&mut stream, DEFAULT_MAX_FRAME) {
            let frame: RequestFrame = codec::decode(Encoding::Bincode, &bytes).unwrap();
            let pong = Response::Pong { daemon_version: "0.0.1".into(), uptime_ms: 1 };
            let reply = ServerMessage::Reply { id: frame.id, result: Ok(pong) };
            write_frame(&mut stream, &codec::encode(Encoding::Bincode, &reply).unwrap(), DEFAULT_MAX_FRAME).unwrap();
        }
    })
}

#[test]
fn a_daemon_of_another_version_is_named_plainly() {
    use milestones_e2e::protocol::{Encoding, HandshakeReply, Rejection, Welcome, PROTOCOL_VERSION};
    let p = Project::new();
    let older = HandshakeReply::Welcome(Welcome {
        protocol_version: PROTOCOL_VERSION,
        daemon_version: "0.0.1".into(),
        encoding: Encoding::Bincode,
        capabilities: Vec::new(),
        pid: 1,
        root: p.root.display().to_string(),
        backend: "file".into(),
    });
    let server = other_version(&p, older);
    let run = p.msctl(&["ping"]);
    server.join().unwrap();
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("note: milestoned 0.0.1 is running, msctl is"), "{run:?}");
    assert!(run.stderr.contains("`msctl daemon restart` brings them in step"), "{run:?}");
    std::fs::remove_file(p.milestones().join("milestoned.sock")).unwrap();

    let newer = HandshakeReply::Rejected(Rejection {
        reason: "msctl speaks protocol 1, which is older than this daemon's 99".into(),
        daemon_version: "9.0.0".into(),
        protocol_version: 99,
    });
    let server = other_version(&p, newer);
    let run = p.msctl(&["list"]);
    server.join().unwrap();
    run.fails(6, "the running milestoned 9.0.0 speaks protocol 99");
    assert!(run.stderr.contains("`msctl daemon restart` replaces it"), "{run:?}");
}

#[test]
fn a_background_daemon_may_exit_when_idle_and_comes_back_on_demand() {
    let p = Project::new();
    let _cleanup = Cleanup(&p);
    let id = p.msctl_autostart(&["create", "--title", "Before the nap"]).ok().trim().to_owned();
    let config = p.milestones().join("config/storage-config.yaml");
    let text = std::fs::read_to_string(&config).unwrap().replace("idle_exit_seconds: 0", "idle_exit_seconds: 1");
    std::fs::write(&config, text).unwrap();
    p.msctl(&["daemon", "restart"]).ok();
    let deadline = Instant::now() + Duration::from_secs(10);
    while pid_file(&p).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!pid_file(&p).exists(), "the idle daemon exited");
    let log = std::fs::read_to_string(p.milestones().join("logs/milestoned.log")).unwrap();
    assert!(log.contains("no client for the idle time; exiting"), "{log}");
    // The next command brings it back, with everything in place.
    assert_eq!(p.msctl_autostart(&["get", &id, "--json"]).json()["title"], "Before the nap");
}

#[test]
fn systemd_hears_ready_status_and_stopping() {
    let p = Project::new();
    let notify = p.root.join("notify.sock");
    let listener = std::os::unix::net::UnixDatagram::bind(&notify).unwrap();
    listener.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let child = Command::new(binary("milestoned"))
        .arg("--root")
        .arg(&p.root)
        .args(["--foreground", "--log-level", "warn"])
        .env("NOTIFY_SOCKET", &notify)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let daemon =
        milestones_e2e::Daemon::adopt(child, milestones_e2e::protocol::socket_path::default_socket_path(&p.root));
    let mut buffer = [0u8; 512];
    let n = listener.recv(&mut buffer).expect("a notification from the daemon");
    let message = String::from_utf8_lossy(&buffer[..n]).into_owned();
    assert!(message.contains("READY=1"), "{message}");
    assert!(message.contains("STATUS=serving 0 milestones on the file backend"), "{message}");
    // READY comes once the socket listens: a client is served at once.
    daemon.client().request(Request::Ping).unwrap();
    daemon.signal(libc::SIGTERM);
    let n = listener.recv(&mut buffer).expect("a stopping notification");
    assert!(String::from_utf8_lossy(&buffer[..n]).contains("STOPPING=1"));
    assert_eq!(daemon.stop().0, Some(0));
}

#[test]
fn a_file_in_the_way_of_the_socket_is_not_deleted() {
    let p = Project::new();
    let notes = p.write("notes.txt", "mine");
    let out = Command::new(binary("milestoned"))
        .arg("--root")
        .arg(&p.root)
        .arg("--foreground")
        .arg("--socket")
        .arg(&notes)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a socket"), "{out:?}");
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "mine");
}

/// The signal handlers are in place from the moment the daemon holds its
/// instance lock, long before it serves: a SIGTERM while it still reads a
/// large tree stops it cleanly (exit 0, no socket left), it does not kill it.
#[test]
fn a_sigterm_during_start_up_stops_the_daemon_cleanly() {
    let p = Project::new();
    let active = p.milestones().join("active");
    std::fs::create_dir_all(&active).unwrap();
    for i in 0..3000 {
        let yaml =
            format!("id: bulk-{i:04}\ntitle: Bulk {i}\nstatus: planning\ndescription: {}\n", "words ".repeat(40));
        std::fs::write(active.join(format!("bulk-{i:04}.yaml")), yaml).unwrap();
    }
    let d = p.spawn(&[]);
    let lock = p.milestones().join("milestoned.lock");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !lock.exists() {
        assert!(Instant::now() < deadline, "the daemon never took its lock");
        std::thread::sleep(Duration::from_millis(1));
    }
    let socket = d.socket.clone();
    let (code, stderr) = d.stop();
    assert_eq!(code, Some(0), "stopped, not killed by the signal: {stderr}");
    assert!(!socket.exists(), "no socket is left behind");
}
