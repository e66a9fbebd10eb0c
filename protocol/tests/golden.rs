//! Golden bytes: the exact wire form of a few messages, pinned.
//!
//! If one of these tests fails, the bytes on the wire changed, and every
//! client that is not built from this crate (Python scripts, editor plugins,
//! older msctl binaries) breaks. Change an expected value only together with
//! `PROTOCOL.md` and a `PROTOCOL_VERSION` bump; appending an enum variant
//! never changes the bytes pinned here.
//!
//! Bincode payloads are written as hex, one field per line; whitespace in the
//! literals is ignored. JSON payloads are written as the text they are.

use std::fmt::Debug;

use milestones_protocol::codec::{decode, encode};
use milestones_protocol::frame::{read_frame, write_frame};
use milestones_protocol::handshake::{decode_handshake, encode_handshake};
use milestones_protocol::{
    BackendTarget, ChangeEvent, DatabaseKind, DocumentInput, Encoding, ErrorInfo, ErrorKind, EventKind, EventSource,
    HandshakeReply, Hello, Map, Request, RequestFrame, Response, ServerMessage, Value, Welcome, WorkPage,
    DEFAULT_MAX_FRAME,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

// ---- helpers ---------------------------------------------------------------

/// Parses a hex literal, ignoring whitespace.
fn unhex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    assert!(digits.len().is_multiple_of(2), "odd number of hex digits in {text:?}");
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).expect("hex digit"))
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Asserts that `msg` encodes to exactly `expected`, and that `expected`
/// decodes back to `msg`.
fn pin<T>(encoding: Encoding, msg: &T, expected: &[u8])
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let actual = encode(encoding, msg).expect("encode");
    assert_eq!(hex(&actual), hex(expected), "{encoding:?} encoding of {msg:?} moved");
    let back: T = decode(encoding, expected).expect("decode the golden bytes");
    assert_eq!(&back, msg);
}

fn pin_bincode<T>(msg: &T, expected_hex: &str)
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    pin(Encoding::Bincode, msg, &unhex(expected_hex));
}

fn pin_json<T>(msg: &T, expected: &str)
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    pin(Encoding::Json, msg, expected.as_bytes());
}

fn pin_handshake<T>(msg: &T, expected: &str)
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    assert_eq!(String::from_utf8(encode_handshake(msg)).unwrap(), expected);
    let back: T = decode_handshake(expected.as_bytes()).expect("decode the golden handshake");
    assert_eq!(&back, msg);
}

// ---- the messages ----------------------------------------------------------

fn ping() -> RequestFrame {
    RequestFrame { id: 1, request: Request::Ping }
}

fn get() -> RequestFrame {
    RequestFrame { id: 3, request: Request::Get { id: "milestone-001".into() } }
}

fn create() -> RequestFrame {
    let mut fields = Map::new();
    fields.insert("title", Value::from("Ship v1"));
    fields.insert("hours", Value::Int(12));
    fields.insert("done", Value::Bool(false));
    fields.insert("ratio", Value::Float(0.5));
    fields.insert("owner", Value::Null);
    fields.insert("tags", Value::List(vec![Value::from("cli")]));
    RequestFrame { id: 4, request: Request::Create { input: DocumentInput::Fields(Value::Map(fields)) } }
}

fn pong() -> ServerMessage {
    ServerMessage::Reply { id: 2, result: Ok(Response::Pong { daemon_version: "0.1.0".into(), uptime_ms: 1500 }) }
}

fn not_found() -> ServerMessage {
    ServerMessage::Reply {
        id: 3,
        result: Err(ErrorInfo {
            kind: ErrorKind::NotFound,
            message: "milestone `milestone-001` does not exist".into(),
            field: Some("id".into()),
        }),
    }
}

fn hello() -> Hello {
    Hello::new("msctl", "0.1.0", Encoding::Bincode)
}

fn welcome() -> HandshakeReply {
    HandshakeReply::Welcome(Welcome {
        protocol_version: 1,
        daemon_version: "0.1.0".into(),
        encoding: Encoding::Bincode,
        capabilities: Vec::new(),
        pid: 4242,
        root: "/home/ada/project".into(),
        backend: "file".into(),
    })
}

// ---- bincode ---------------------------------------------------------------

const PING_BINCODE: &str = concat!(
    "0100000000000000", // RequestFrame.id = 1 (u64 LE)
    "00000000",         // Request::Ping (variant 0, u32 LE)
);

#[test]
fn ping_request_bincode() {
    pin_bincode(&ping(), PING_BINCODE);
}

#[test]
fn get_request_bincode() {
    pin_bincode(
        &get(),
        concat!(
            "0300000000000000",           // RequestFrame.id = 3
            "02000000",                   // Request::Get (variant 2)
            "0d00000000000000",           // id: string of 13 bytes
            "6d696c6573746f6e652d303031", // "milestone-001"
        ),
    );
}

#[test]
fn create_request_with_every_value_kind_bincode() {
    pin_bincode(
        &create(),
        concat!(
            "0400000000000000", // RequestFrame.id = 4
            "01000000",         // Request::Create (variant 1)
            "00000000",         // DocumentInput::Fields (variant 0)
            "06000000",         // Value::Map (tag 6)
            "0600000000000000", // 6 entries
            // "title" => String("Ship v1")
            "0500000000000000 7469746c65",
            "04000000 0700000000000000 53686970207631",
            // "hours" => Int(12)
            "0500000000000000 686f757273",
            "02000000 0c00000000000000",
            // "done" => Bool(false)
            "0400000000000000 646f6e65",
            "01000000 00",
            // "ratio" => Float(0.5)
            "0500000000000000 726174696f",
            "03000000 000000000000e03f",
            // "owner" => Null
            "0500000000000000 6f776e6572",
            "00000000",
            // "tags" => List([String("cli")])
            "0400000000000000 74616773",
            "05000000 0100000000000000",
            "04000000 0300000000000000 636c69",
        ),
    );
}

const PONG_BINCODE: &str = concat!(
    "00000000",         // ServerMessage::Reply (variant 0)
    "0200000000000000", // id = 2
    "00000000",         // Result::Ok (variant 0)
    "00000000",         // Response::Pong (variant 0)
    "0500000000000000", // daemon_version: string of 5 bytes
    "302e312e30",       // "0.1.0"
    "dc05000000000000", // uptime_ms = 1500
);

#[test]
fn pong_reply_bincode() {
    pin_bincode(&pong(), PONG_BINCODE);
}

#[test]
fn error_reply_bincode() {
    pin_bincode(
        &not_found(),
        concat!(
            "00000000",         // ServerMessage::Reply (variant 0)
            "0300000000000000", // id = 3
            "01000000",         // Result::Err (variant 1)
            "00000000",         // ErrorInfo.kind = ErrorKind::NotFound (variant 0)
            "2800000000000000", // message: string of 40 bytes
            "6d696c6573746f6e6520606d696c6573746f6e652d3030316020646f6573206e6f74206578697374",
            "01",               // field: Some
            "0200000000000000", // string of 2 bytes
            "6964",             // "id"
        ),
    );
}

/// `Conflict` and `Unavailable` were appended to `ErrorKind`: every earlier
/// kind keeps its index, and the new ones take the next two.
#[test]
fn appended_error_kinds_bincode_and_json() {
    let reply =
        |kind| ServerMessage::Reply { id: 4, result: Err(ErrorInfo { kind, message: "m".into(), field: None }) };
    for (kind, index, name) in
        [(ErrorKind::Conflict, "0b000000", "Conflict"), (ErrorKind::Unavailable, "0c000000", "Unavailable")]
    {
        pin_bincode(
            &reply(kind),
            &[
                "00000000",         // ServerMessage::Reply (variant 0)
                "0400000000000000", // id = 4
                "01000000",         // Result::Err (variant 1)
                index,              // ErrorInfo.kind: variant 11 or 12
                "0100000000000000", // message: string of 1 byte
                "6d",               // "m"
                "00",               // field: None
            ]
            .concat(),
        );
        pin_json(
            &reply(kind),
            &format!(r#"{{"Reply":{{"id":4,"result":{{"Err":{{"kind":"{name}","message":"m","field":null}}}}}}}}"#),
        );
    }
}

#[test]
fn migrate_request_bincode() {
    pin_bincode(
        &RequestFrame { id: 9, request: Request::Migrate { target: BackendTarget::Database(DatabaseKind::Sqlite) } },
        concat!(
            "0900000000000000", // RequestFrame.id = 9
            "0e000000",         // Request::Migrate (variant 14), appended after Backend
            "02000000",         // BackendTarget::Database (variant 2)
            "00000000",         // DatabaseKind::Sqlite (variant 0)
        ),
    );
}

#[test]
fn appended_postgresql_variants_bincode_and_json() {
    let url = "postgresql:///ms?host=/run/postgresql".to_owned();
    let request = RequestFrame {
        id: 3,
        request: Request::MigrateTo { target: BackendTarget::Database(DatabaseKind::Postgresql), url: Some(url) },
    };
    pin_bincode(
        &request,
        concat!(
            "0300000000000000", // RequestFrame.id = 3
            "11000000",         // Request::MigrateTo (variant 17), appended after Subscribe
            "02000000",         // BackendTarget::Database (variant 2)
            "01000000",         // DatabaseKind::Postgresql (variant 1), appended after Sqlite
            "01",               // Some(url)
            "2500000000000000", // its length, 37
            "706f737467726573716c3a2f2f2f6d733f686f73743d2f72756e2f706f737467726573716c",
        ),
    );
    pin_json(
        &request,
        r#"{"id":3,"request":{"MigrateTo":{"target":{"Database":"Postgresql"},"url":"postgresql:///ms?host=/run/postgresql"}}}"#,
    );
    pin_bincode(&RequestFrame { id: 4, request: Request::DatabaseHealth }, "040000000000000012000000");
    pin_bincode(&RequestFrame { id: 5, request: Request::Scale }, "050000000000000013000000");
    pin_bincode(&RequestFrame { id: 6, request: Request::MigrationHistory }, "060000000000000014000000");
    pin_bincode(
        &RequestFrame { id: 7, request: Request::MigrateRollback { discard_changes: true } },
        concat!(
            "0700000000000000", // RequestFrame.id = 7
            "17000000",         // Request::MigrateRollback (variant 23), appended after MigrationStatus
            "01",               // discard_changes = true
        ),
    );
    pin_bincode(
        &RequestFrame { id: 8, request: Request::WorkPage { tasks: false, blocked: true, offset: 50, limit: 50 } },
        concat!(
            "0800000000000000", // RequestFrame.id = 8
            "1b000000",         // Request::WorkPage (variant 27), appended after Import
            "00",               // tasks = false
            "01",               // blocked = true
            "3200000000000000", // offset = 50
            "3200000000000000", // limit = 50
        ),
    );
    pin_json(
        &ServerMessage::Reply { id: 8, result: Ok(Response::WorkPage(WorkPage { items: Vec::new(), total: 3 })) },
        r#"{"Reply":{"id":8,"result":{"Ok":{"WorkPage":{"items":[],"total":3}}}}}"#,
    );
    pin_json(
        &ServerMessage::Reply { id: 4, result: Ok(Response::DatabaseHealth(None)) },
        r#"{"Reply":{"id":4,"result":{"Ok":{"DatabaseHealth":null}}}}"#,
    );
}

fn event() -> ServerMessage {
    ServerMessage::Event(ChangeEvent {
        seq: 7,
        kind: EventKind::Moved,
        id: Some("m-1".into()),
        status: Some("completed".into()),
        source: EventSource::OutsideEdit,
        timestamp: "2026-11-20T00:00:00Z".into(),
        file: Some(".milestones/completed/m-1.yaml".into()),
        detail: None,
    })
}

#[test]
fn event_bincode() {
    pin_bincode(
        &event(),
        concat!(
            "01000000",         // ServerMessage::Event (variant 1)
            "0700000000000000", // seq = 7
            "02000000",         // kind: EventKind::Moved (variant 2)
            "01",
            "0300000000000000",
            "6d2d31", // id: Some("m-1")
            "01",
            "0900000000000000",
            "636f6d706c65746564", // status: Some("completed")
            "01000000",           // source: EventSource::OutsideEdit
            "1400000000000000",
            "323032362d31312d32305430303a30303a30305a", // timestamp
            "01",
            "1e00000000000000", // file: Some(30 bytes)
            "2e6d696c6573746f6e65732f636f6d706c657465642f6d2d312e79616d6c",
            "00", // detail: None
        ),
    );
}

// ---- JSON ------------------------------------------------------------------

#[test]
fn event_json() {
    pin_json(
        &event(),
        r#"{"Event":{"seq":7,"kind":"Moved","id":"m-1","status":"completed","source":"OutsideEdit","timestamp":"2026-11-20T00:00:00Z","file":".milestones/completed/m-1.yaml","detail":null}}"#,
    );
    pin_json(&ServerMessage::Lagged { missed: 12 }, r#"{"Lagged":{"missed":12}}"#);
}

#[test]
fn migrate_request_json() {
    pin_json(
        &RequestFrame { id: 9, request: Request::Migrate { target: BackendTarget::Hybrid } },
        r#"{"id":9,"request":{"Migrate":{"target":"Hybrid"}}}"#,
    );
}

#[test]
fn create_request_json() {
    pin_json(
        &create(),
        r#"{"id":4,"request":{"Create":{"input":{"Fields":{"title":"Ship v1","hours":12,"done":false,"ratio":0.5,"owner":null,"tags":["cli"]}}}}}"#,
    );
}

#[test]
fn error_reply_json() {
    pin_json(
        &not_found(),
        r#"{"Reply":{"id":3,"result":{"Err":{"kind":"NotFound","message":"milestone `milestone-001` does not exist","field":"id"}}}}"#,
    );
}

// ---- handshake (always JSON) -----------------------------------------------

const HELLO_JSON: &str =
    r#"{"protocol_version":1,"client_name":"msctl","client_version":"0.1.0","encoding":"bincode","capabilities":[]}"#;

const WELCOME_JSON: &str = r#"{"Welcome":{"protocol_version":1,"daemon_version":"0.1.0","encoding":"bincode","capabilities":[],"pid":4242,"root":"/home/ada/project","backend":"file"}}"#;

#[test]
fn hello_handshake_json() {
    pin_handshake(&hello(), HELLO_JSON);
}

#[test]
fn welcome_handshake_json() {
    pin_handshake(&welcome(), WELCOME_JSON);
}

// ---- framing ---------------------------------------------------------------

/// `write_frame` emits the payload length as 4 bytes big-endian, then the
/// payload; `read_frame` takes it back apart.
fn pin_frame(payload: &[u8], expected_header_hex: &str) {
    let mut wire = Vec::new();
    write_frame(&mut wire, payload, DEFAULT_MAX_FRAME).unwrap();
    let mut expected = unhex(expected_header_hex);
    expected.extend_from_slice(payload);
    assert_eq!(hex(&wire), hex(&expected));
    let mut r = &wire[..];
    assert_eq!(read_frame(&mut r, DEFAULT_MAX_FRAME).unwrap().as_deref(), Some(payload));
    assert!(read_frame(&mut r, DEFAULT_MAX_FRAME).unwrap().is_none(), "nothing after the frame");
}

#[test]
fn full_frames_are_a_big_endian_length_then_the_payload() {
    pin_frame(&unhex(PING_BINCODE), "0000000c"); // 12 bytes
    pin_frame(&unhex(PONG_BINCODE), "00000029"); // 41 bytes
    pin_frame(HELLO_JSON.as_bytes(), "0000006c"); // 108 bytes
    pin_frame(WELCOME_JSON.as_bytes(), "00000099"); // 153 bytes
                                                    // The header is big-endian even though bincode payloads are little-endian.
    pin_frame(&[0xab; 0x0102], "00000102");
}
