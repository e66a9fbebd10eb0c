//! The daemon as a process: its tree, its lock, its socket, its signals, and
//! surviving clients that speak garbage.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use milestones_e2e::protocol::handshake::{decode_handshake, encode_handshake};
use milestones_e2e::protocol::{
    codec, frame, Encoding, ErrorKind, HandshakeReply, Hello, Request, Response, ServerMessage, DEFAULT_MAX_FRAME,
};
use milestones_e2e::Project;

#[test]
fn creates_the_tree_and_a_private_socket() {
    let p = Project::new();
    let d = p.start(&[]);
    for dir in ["active", "completed", "logs", "config"] {
        assert!(p.milestones().join(dir).is_dir(), "{dir} missing");
    }
    let backend = std::fs::read_to_string(p.milestones().join("config/storage-backend.txt")).unwrap();
    assert_eq!(backend.trim(), "file");
    let config = std::fs::read_to_string(p.milestones().join("config/storage-config.yaml")).unwrap();
    assert!(config.contains("file_to_hybrid: 25") && config.contains("hybrid_to_database: 100"));
    assert_eq!(d.socket, p.milestones().join("milestoned.sock"));
    let mode = std::fs::metadata(&d.socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let pid = std::fs::read_to_string(p.milestones().join("milestoned.pid")).unwrap();
    assert_eq!(pid.trim(), d.pid().to_string());
}

#[test]
fn a_second_daemon_exits_naming_the_first() {
    let p = Project::new();
    let first = p.start(&[]);
    let (code, stderr) = p.spawn(&[]).wait();
    assert_eq!(code, Some(1));
    assert!(stderr.contains(&format!("pid {}", first.pid())), "{stderr}");
    // The first is untouched and still serving.
    assert_eq!(p.msctl(&["ping", "--json"]).json()["pid"], first.pid());
}

#[test]
fn sigterm_stops_cleanly_and_keeps_the_lock_file() {
    let p = Project::new();
    let d = p.start(&[]);
    let id = p.msctl(&["create", "--title", "kept"]).ok().trim().to_owned();
    let socket = d.socket.clone();
    let (code, stderr) = d.stop();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!socket.exists(), "socket left behind");
    assert!(!p.milestones().join("milestoned.pid").exists(), "pid file left behind");
    assert!(p.milestones().join("milestoned.lock").exists(), "the lock file is never unlinked");
    // A new daemon takes over and serves what the first stored.
    let _d = p.start(&[]);
    assert_eq!(p.msctl(&["get", &id, "--json"]).json()["title"], "kept");
}

#[test]
fn sigint_finishes_in_flight_work_and_exits_zero() {
    let p = Project::new();
    let d = p.start(&[]);
    let mut client = d.client();
    d.signal(libc::SIGINT);
    // A connected client may be closed, never left hanging or given garbage.
    let _ = client.request(Request::Ping);
    let (code, _) = d.wait();
    assert_eq!(code, Some(0));
}

#[test]
fn a_stale_socket_is_replaced_and_a_live_one_never_stolen() {
    let p = Project::new();
    std::fs::create_dir_all(p.milestones()).unwrap();
    // A socket file with nobody listening: what a killed daemon leaves.
    let stale = p.milestones().join("milestoned.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    assert!(stale.exists());
    let d = p.start(&[]);
    p.msctl(&["ping"]).ok();

    // Another project told to use the same socket must not take it over.
    let other = Project::new();
    let socket = d.socket.to_str().unwrap().to_owned();
    let (code, stderr) = other.spawn(&["--socket", &socket]).wait();
    assert_eq!(code, Some(1));
    assert!(stderr.contains("is the socket of another running process"), "{stderr}");
    p.msctl(&["ping"]).ok();
}

#[test]
fn a_root_too_deep_for_a_socket_path_still_works() {
    let p = Project::nested(4);
    assert!(p.milestones().join("milestoned.sock").as_os_str().len() > 108);
    let d = p.start(&[]);
    assert!(!d.socket.starts_with(&p.root), "{:?}", d.socket);
    assert!(d.socket.as_os_str().len() <= 100);
    let id = p.msctl(&["create", "--title", "deep"]).ok().trim().to_owned();
    assert_eq!(p.msctl(&["get", &id, "--json"]).json()["title"], "deep");
}

fn handshake(stream: &mut std::os::unix::net::UnixStream) {
    let hello = Hello::new("raw-test", "0", Encoding::Bincode);
    frame::write_frame(stream, &encode_handshake(&hello), DEFAULT_MAX_FRAME).unwrap();
    let reply = frame::read_frame(stream, DEFAULT_MAX_FRAME).unwrap().unwrap();
    assert!(matches!(decode_handshake::<HandshakeReply>(&reply).unwrap(), HandshakeReply::Welcome(_)));
}

fn error_reply(stream: &mut std::os::unix::net::UnixStream) -> (ErrorKind, String) {
    let bytes = frame::read_frame(stream, DEFAULT_MAX_FRAME).unwrap().expect("an error reply");
    match codec::decode::<ServerMessage>(Encoding::Bincode, &bytes).unwrap() {
        ServerMessage::Reply { id: 0, result: Err(e) } => (e.kind, e.message),
        other => panic!("expected an error reply, got {other:?}"),
    }
}

fn closed(stream: &mut std::os::unix::net::UnixStream) -> bool {
    let mut b = [0u8; 1];
    matches!(stream.read(&mut b), Ok(0))
}

#[test]
fn garbage_oversized_and_truncated_frames_get_clear_errors() {
    let p = Project::new();
    let d = p.start(&[]);

    // Garbage instead of a hello.
    let mut s = d.raw();
    frame::write_frame(&mut s, b"\x00\xffnot json at all", DEFAULT_MAX_FRAME).unwrap();
    let reply = frame::read_frame(&mut s, DEFAULT_MAX_FRAME).unwrap().unwrap();
    match decode_handshake::<HandshakeReply>(&reply).unwrap() {
        HandshakeReply::Rejected(r) => assert!(r.reason.contains("malformed handshake"), "{}", r.reason),
        other => panic!("{other:?}"),
    }
    assert!(closed(&mut s));

    // Garbage bytes as a request after a good handshake: an error, and the
    // connection still works.
    let mut s = d.raw();
    handshake(&mut s);
    frame::write_frame(&mut s, &[0xde, 0xad, 0xbe, 0xef, 0x01], DEFAULT_MAX_FRAME).unwrap();
    let (kind, message) = error_reply(&mut s);
    assert_eq!(kind, ErrorKind::Protocol);
    assert!(message.contains("cannot read request"), "{message}");
    let ping =
        codec::encode(Encoding::Bincode, &milestones_e2e::protocol::RequestFrame { id: 7, request: Request::Ping })
            .unwrap();
    frame::write_frame(&mut s, &ping, DEFAULT_MAX_FRAME).unwrap();
    let bytes = frame::read_frame(&mut s, DEFAULT_MAX_FRAME).unwrap().unwrap();
    assert!(matches!(
        codec::decode::<ServerMessage>(Encoding::Bincode, &bytes).unwrap(),
        ServerMessage::Reply { id: 7, result: Ok(Response::Pong { .. }) }
    ));
    // A request this daemon does not know: the error answers its id, so a
    // client matching replies by id is not left waiting.
    let mut unknown = ping.clone();
    unknown[..8].copy_from_slice(&77u64.to_le_bytes());
    unknown[8..12].copy_from_slice(&9_999u32.to_le_bytes());
    frame::write_frame(&mut s, &unknown, DEFAULT_MAX_FRAME).unwrap();
    let bytes = frame::read_frame(&mut s, DEFAULT_MAX_FRAME).unwrap().unwrap();
    match codec::decode::<ServerMessage>(Encoding::Bincode, &bytes).unwrap() {
        ServerMessage::Reply { id: 77, result: Err(e) } => assert_eq!(e.kind, ErrorKind::Protocol, "{e:?}"),
        other => panic!("expected the error to answer request 77, got {other:?}"),
    }

    // A length prefix of 4 GiB: refused from the header alone, connection closed.
    let mut s = d.raw();
    handshake(&mut s);
    s.write_all(&[0xff, 0xff, 0xff, 0xff, 1, 2, 3]).unwrap();
    let (kind, message) = error_reply(&mut s);
    assert_eq!(kind, ErrorKind::TooLarge);
    assert!(message.contains("4294967295 bytes exceeds the limit of 16777216"), "{message}");
    assert!(closed(&mut s));

    // A truncated frame: the client says 100 bytes, sends 10, and stops.
    let mut s = d.raw();
    handshake(&mut s);
    s.write_all(&[0, 0, 0, 100]).unwrap();
    s.write_all(&[1; 10]).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let (kind, message) = error_reply(&mut s);
    assert_eq!(kind, ErrorKind::Protocol);
    assert!(message.contains("10 of 100 bytes"), "{message}");

    // Through all of it the daemon kept serving.
    p.msctl(&["ping"]).ok();
}

#[test]
fn a_silent_client_is_timed_out_while_others_are_served() {
    let p = Project::new();
    let d = p.start(&["--handshake-timeout-ms", "300"]);
    let mut silent = d.raw();
    p.msctl(&["create", "--title", "served meanwhile"]).ok();
    let reply = frame::read_frame(&mut silent, DEFAULT_MAX_FRAME).unwrap().unwrap();
    match decode_handshake::<HandshakeReply>(&reply).unwrap() {
        HandshakeReply::Rejected(r) => assert!(r.reason.contains("no handshake within 300 ms"), "{}", r.reason),
        other => panic!("{other:?}"),
    }
    assert!(closed(&mut silent));
    p.msctl(&["ping"]).ok();
}

#[test]
fn a_client_of_another_protocol_version_is_told_plainly() {
    let p = Project::new();
    let d = p.start(&[]);
    let mut s = d.raw();
    let mut hello = Hello::new("future-msctl", "9.0.0", Encoding::Bincode);
    hello.protocol_version = 99;
    frame::write_frame(&mut s, &encode_handshake(&hello), DEFAULT_MAX_FRAME).unwrap();
    let reply = frame::read_frame(&mut s, DEFAULT_MAX_FRAME).unwrap().unwrap();
    match decode_handshake::<HandshakeReply>(&reply).unwrap() {
        HandshakeReply::Rejected(r) => {
            assert!(r.reason.contains("future-msctl 9.0.0 speaks protocol 99, which is newer"), "{}", r.reason)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_thousand_idle_connections_do_not_lock_the_owner_out() {
    let p = Project::new();
    let d = p.start(&[]);
    // More clients than the default limit of 1,024 handshake and sit idle.
    let mut idle: Vec<_> = (0..1_100)
        .map(|_| {
            let mut s = d.raw();
            handshake(&mut s);
            s
        })
        .collect();
    let run = p.msctl(&["create", "--title", "served all the same"]);
    run.ok();
    p.msctl(&["ping"]).ok();
    // The ones that made room were the longest idle: the first to come.
    assert!(closed(&mut idle[0]), "the longest-idle connection gave way");
    let newest = idle.last_mut().unwrap();
    let ping =
        codec::encode(Encoding::Bincode, &milestones_e2e::protocol::RequestFrame { id: 1, request: Request::Ping })
            .unwrap();
    frame::write_frame(newest, &ping, DEFAULT_MAX_FRAME).unwrap();
    let bytes = frame::read_frame(newest, DEFAULT_MAX_FRAME).unwrap().expect("the newest connection is served");
    assert!(matches!(
        codec::decode::<ServerMessage>(Encoding::Bincode, &bytes).unwrap(),
        ServerMessage::Reply { id: 1, result: Ok(Response::Pong { .. }) }
    ));
}

#[test]
fn a_client_is_turned_away_only_when_every_connection_is_busy() {
    let p = Project::new();
    p.write(".milestones/active/m-1.yaml", "id: m-1\ntitle: one\nstatus: planned\n");
    let paused = p.root.join("paused");
    std::fs::write(&paused, "").unwrap();
    let mut command = std::process::Command::new(milestones_e2e::binary("milestoned"));
    command.env("MILESTONED_PAUSE_AT", "copying").env("MILESTONED_PAUSE_FILE", &paused);
    let d = p.start_command(command, &["--max-connections", "1"]);
    std::thread::scope(|scope| {
        let mut migrating = d.client();
        let migration = scope.spawn(move || {
            migrating.request(Request::MigrateTo { target: milestones_e2e::migration_target("database"), url: None })
        });
        milestones_e2e::eventually("the migration holds the only slot", Duration::from_secs(20), || {
            p.milestones().join("migration-journal.json").exists()
        });
        p.msctl(&["ping"]).fails(6, "all 1 of the daemon's connections are busy with requests");
        std::fs::remove_file(&paused).unwrap();
        assert!(matches!(migration.join().unwrap(), Ok(Response::Migrated(_))), "the busy connection was not cut");
    });
    p.wait_until_no_migration();
    p.msctl(&["ping"]).ok();
}

#[test]
fn a_stalled_frame_and_an_idle_connection_are_closed() {
    let p = Project::new();
    let d = p.start(&["--frame-timeout-ms", "300", "--client-idle-timeout-ms", "800"]);
    // Half a header, then nothing.
    let mut stalled = d.raw();
    handshake(&mut stalled);
    stalled.write_all(&[0, 0]).unwrap();
    let (kind, message) = error_reply(&mut stalled);
    assert_eq!(kind, ErrorKind::Protocol);
    assert!(message.contains("still incomplete"), "{message}");
    assert!(closed(&mut stalled));
    // A connection that asks nothing more is closed after the idle time,
    // while one that keeps asking is served.
    let mut idle = d.raw();
    handshake(&mut idle);
    let mut busy = d.client();
    for _ in 0..12 {
        busy.request(Request::Ping).expect("an active connection stays open");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(closed(&mut idle), "the idle connection was closed");
}

#[test]
fn running_out_of_file_descriptors_keeps_the_owner_served_without_a_storm_of_warnings() {
    use std::os::unix::process::CommandExt;
    let p = Project::new();
    let mut command = std::process::Command::new(milestones_e2e::binary("milestoned"));
    // SAFETY: setrlimit is async-signal-safe, and the closure touches nothing else.
    unsafe {
        command.pre_exec(|| {
            let limit = libc::rlimit { rlim_cur: 64, rlim_max: 64 };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let d = p.start_command(command, &[]);
    let mut clients: Vec<_> = (0..200).map(|_| d.raw()).collect();
    for s in clients.iter_mut().rev().take(40) {
        let hello = Hello::new("raw-test", "0", Encoding::Bincode);
        let _ = frame::write_frame(s, &encode_handshake(&hello), DEFAULT_MAX_FRAME);
    }
    std::thread::sleep(Duration::from_millis(500));
    p.msctl(&["ping"]).ok();
    p.msctl(&["create", "--title", "still served"]).ok();
    drop(clients);
    let (_, stderr) = d.stop();
    let warnings = stderr.matches("accept failed").count();
    assert!(warnings <= 5, "{warnings} accept warnings:\n{stderr}");
    assert!(stderr.contains("leaves room for fewer connections"), "{stderr}");
}

#[test]
fn msctl_gives_up_on_a_stopped_daemon_with_a_clear_message() {
    let p = Project::new();
    let d = p.start(&[]);
    d.signal(libc::SIGSTOP);
    let started = std::time::Instant::now();
    let run = p.msctl(&["--timeout", "1", "ping"]);
    let waited = started.elapsed();
    d.signal(libc::SIGCONT);
    run.fails(6, "milestoned did not answer within 1 s");
    assert!(run.stderr.contains("--timeout"), "{run:?}");
    assert!(waited < Duration::from_secs(10), "msctl waited {waited:?}");
    p.msctl(&["ping"]).ok();
}

#[test]
fn a_user_the_socket_is_closed_to_is_told_permission_denied() {
    use std::os::unix::process::CommandExt;
    let p = Project::new();
    let _d = p.start(&[]);
    // Another user can find the project, but not use its owner-only socket.
    std::fs::set_permissions(&p.root, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(p.milestones(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let msctl = p.root.join("msctl-copy");
    std::fs::copy(milestones_e2e::binary("msctl"), &msctl).unwrap();
    std::fs::set_permissions(&msctl, std::fs::Permissions::from_mode(0o755)).unwrap();
    // SAFETY: geteuid has no preconditions.
    let (uid, gid) =
        if unsafe { libc::geteuid() } == 0 { (65534, 65534) } else { panic!("run as root to try another uid") };
    let output = std::process::Command::new(&msctl)
        .uid(uid)
        .gid(gid)
        .args(["--root", p.root.to_str().unwrap(), "ping"])
        .output()
        .unwrap();
    let run = milestones_e2e::Run::from(output);
    run.fails(6, "permission denied");
    assert!(run.stderr.contains("belongs to another user"), "{run:?}");
    assert!(!run.stderr.contains("no milestoned is running"), "{run:?}");
}

#[test]
fn a_request_over_the_frame_limit_is_named_as_such() {
    let p = Project::new();
    let _d = p.start(&["--max-frame-bytes", "4096"]);
    let description = "x".repeat(20_000);
    let run = p.msctl(&["create", "--title", "big", "--description", &description]);
    run.fails(4, "exceeds the limit of 4096 bytes");
    p.msctl(&["ping"]).ok();
    // Over msctl's own limit: refused before anything is sent.
    let huge = p.write("huge.yaml", &format!("title: Huge\nnotes: {}\n", "y".repeat(17 * 1024 * 1024)));
    let run = p.msctl(&["create", "--from-file", huge.to_str().unwrap()]);
    run.fails(4, "over the 16777216 byte frame limit");
}

/// `Conflict` was appended to `ErrorKind`: a client that announces the
/// `conflict-errors` capability (msctl, the client library) gets it; one
/// that does not, written before it existed, gets `Busy` as it always did.
#[test]
fn conflict_errors_reach_only_clients_that_know_them() {
    use milestones_e2e::protocol::{Assignment, Change, RequestFrame, Value};
    let p = Project::new();
    let d = p.start(&[]);
    p.msctl(&["create", "--title", "Contested", "--id", "contested"]).ok();
    // An outside edit that does not load: writing over it would lose it.
    p.write(".milestones/active/contested.yaml", "id: contested\ntitle: [unclosed\n");
    let update = Request::Update {
        id: "contested".into(),
        change: Change::Set(vec![Assignment { path: "owner".into(), value: Value::from("me") }]),
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let kind_for = |capabilities: Vec<String>| {
        let mut s = d.raw();
        let mut hello = Hello::new("raw-test", "0", Encoding::Bincode);
        hello.capabilities = capabilities;
        frame::write_frame(&mut s, &encode_handshake(&hello), DEFAULT_MAX_FRAME).unwrap();
        let reply = frame::read_frame(&mut s, DEFAULT_MAX_FRAME).unwrap().unwrap();
        let HandshakeReply::Welcome(welcome) = decode_handshake::<HandshakeReply>(&reply).unwrap() else {
            panic!("rejected")
        };
        assert_eq!(welcome.capabilities, vec!["conflict-errors".to_owned()]);
        let frame_bytes = codec::encode(Encoding::Bincode, &RequestFrame { id: 1, request: update.clone() }).unwrap();
        frame::write_frame(&mut s, &frame_bytes, DEFAULT_MAX_FRAME).unwrap();
        let bytes = frame::read_frame(&mut s, DEFAULT_MAX_FRAME).unwrap().unwrap();
        match codec::decode::<ServerMessage>(Encoding::Bincode, &bytes).unwrap() {
            ServerMessage::Reply { id: 1, result: Err(e) } => e.kind,
            other => panic!("expected an error, got {other:?}"),
        }
    };
    loop {
        let kind = kind_for(vec!["conflict-errors".into()]);
        if kind == ErrorKind::Conflict {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never refused as a conflict: {kind:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(kind_for(Vec::new()), ErrorKind::Busy);
    p.msctl(&["update", "contested", "--set", "owner=me"]).fails(7, "not overwriting it");
}

#[test]
fn a_value_nested_thousands_deep_is_refused_and_the_daemon_stays_up() {
    let p = Project::on_any_backend("database");
    let d = p.start(&[]);
    let socket = d.socket.clone();
    // Built, sent and dropped on a thread with room for the recursion: the
    // daemon reads it on an ordinary one.
    let answer = std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(move || {
            let deep = (0..5_000).fold(milestones_e2e::protocol::Value::Int(1), |inner, _| {
                milestones_e2e::protocol::Value::List(vec![inner])
            });
            let mut doc = milestones_e2e::protocol::Map::new();
            doc.insert("id", milestones_e2e::protocol::Value::from("deep"));
            doc.insert("title", milestones_e2e::protocol::Value::from("Deep"));
            doc.insert("x", deep);
            let input = milestones_e2e::protocol::DocumentInput::Fields(milestones_e2e::protocol::Value::Map(doc));
            let mut client = milestones_e2e::Client::connect(&socket, "hostile").unwrap();
            format!("{:?}", client.request(Request::Create { input }))
        })
        .unwrap()
        .join()
        .unwrap();
    assert!(answer.contains("nest more than 100 deep"), "the refusal names the reason: {answer}");
    assert_eq!(p.msctl(&["ping"]).code, 0, "the daemon is still up");
    p.msctl(&["get", "deep"]).fails(3, "deep");

    // The same through msctl, at a depth JSON readers would refuse later:
    // refused before anything is stored, and every other request works.
    p.msctl(&["create", "--id", "ok", "--title", "Fine"]).ok();
    let value = format!("x={}1{}", "[".repeat(127), "]".repeat(127));
    let refused = p.msctl(&["update", "ok", "--set", &value]);
    assert_ne!(refused.code, 0, "{refused:?}");
    assert!(refused.stderr.contains("nest more than 100 deep"), "{refused:?}");
    assert_eq!(p.msctl(&["list", "--json"]).json().as_array().map(Vec::len), Some(1));
    assert_eq!(p.msctl(&["get", "ok", "--json"]).json()["title"], "Fine");
}

#[test]
fn start_up_removes_what_writes_cut_short_by_a_kill_left() {
    let p = Project::new();
    let dead = ".auth.yaml.2147483000.0.tmp"; // no process has this pid
    let alive = format!(".docs.yaml.{}.3.tmp", std::process::id());
    for name in [dead, &alive, ".notes.tmp", "half.tmp"] {
        p.write(&format!(".milestones/active/{name}"), "id: half\ntitle: Half written\n");
    }
    p.write(&format!(".milestones/config/{dead}"), "backend: file\n");
    let _d = p.start(&[]);
    let active = p.milestones().join("active");
    assert!(!active.join(dead).exists(), "a dead writer's temporary file was left");
    assert!(!p.milestones().join("config").join(dead).exists());
    for kept in [alive.as_str(), ".notes.tmp", "half.tmp"] {
        assert!(active.join(kept).exists(), "{kept} is not a dead writer's temporary file, yet it went");
    }
    p.msctl(&["ping"]).ok();
}
