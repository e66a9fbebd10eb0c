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
    p.msctl(&["create", "--title", "kept"]).ok();
    let socket = d.socket.clone();
    let (code, stderr) = d.stop();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!socket.exists(), "socket left behind");
    assert!(!p.milestones().join("milestoned.pid").exists(), "pid file left behind");
    assert!(p.milestones().join("milestoned.lock").exists(), "the lock file is never unlinked");
    // A new daemon takes over and serves what the first stored.
    let _d = p.start(&[]);
    assert_eq!(p.msctl(&["get", "milestone-001", "--json"]).json()["title"], "kept");
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
fn the_connection_limit_turns_extra_clients_away_politely() {
    let p = Project::new();
    let d = p.start(&["--max-connections", "2"]);
    let _a = d.client();
    let _b = d.client();
    std::thread::sleep(Duration::from_millis(50));
    let run = p.msctl(&["ping"]);
    run.fails(6, "maximum of 2 connections");
    drop(_a);
    std::thread::sleep(Duration::from_millis(100));
    p.msctl(&["ping"]).ok();
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
