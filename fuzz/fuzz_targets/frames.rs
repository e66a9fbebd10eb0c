//! The frame decoder, async and blocking: any byte stream is cut into
//! frames or refused with an error, never a panic, and both decoders agree.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use milestones_protocol::frame::read_frame;
use milestones_protocol::FrameCodec;
use tokio_util::codec::Decoder;

/// Small, so that oversized headers are common.
const MAX: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let mut codec = FrameCodec::new(MAX);
    let mut buffer = BytesMut::from(data);
    let mut cut = Vec::new();
    let codec_result = loop {
        match codec.decode_eof(&mut buffer) {
            Ok(Some(frame)) => cut.push(frame.to_vec()),
            Ok(None) => break Ok(()),
            Err(e) => break Err(e.to_string()),
        }
    };
    let mut reader = std::io::Cursor::new(data);
    let mut read = Vec::new();
    let blocking_result = loop {
        match read_frame(&mut reader, MAX) {
            Ok(Some(frame)) => read.push(frame),
            Ok(None) => break Ok(()),
            Err(e) => break Err(e.to_string()),
        }
    };
    assert_eq!(cut, read, "both decoders cut the same frames");
    assert_eq!(codec_result.is_ok(), blocking_result.is_ok(), "{codec_result:?} / {blocking_result:?}");
});
