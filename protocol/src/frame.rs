//! Framing: a 4-byte big-endian payload length, then the payload.
//!
//! [`FrameCodec`] plugs into tokio-util's `Framed` for async peers; the
//! blocking [`read_frame`]/[`write_frame`] serve simple clients (msctl, tools)
//! that do not want a runtime. Both enforce the same size limit, checked on
//! the header before any payload is buffered.

use std::io::{self, Read, Write};

use bytes::{Buf, BufMut, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

/// Default upper bound of a frame's payload: 16 MiB.
pub const DEFAULT_MAX_FRAME: usize = 16 * 1024 * 1024;

const HEADER: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge { len: u64, max: usize },
    #[error("connection closed in the middle of a frame ({got} of {expected} bytes received)")]
    Truncated { expected: u64, got: u64 },
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Splits a byte stream into frame payloads and back.
#[derive(Debug, Clone, Copy)]
pub struct FrameCodec {
    max: usize,
}

impl FrameCodec {
    pub fn new(max: usize) -> Self {
        FrameCodec { max }
    }

    pub fn max(&self) -> usize {
        self.max
    }
}

impl Default for FrameCodec {
    fn default() -> Self {
        FrameCodec::new(DEFAULT_MAX_FRAME)
    }
}

impl Decoder for FrameCodec {
    type Item = BytesMut;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, FrameError> {
        if src.len() < HEADER {
            return Ok(None);
        }
        let len = u32::from_be_bytes([src[0], src[1], src[2], src[3]]) as usize;
        if len > self.max {
            return Err(FrameError::TooLarge { len: len as u64, max: self.max });
        }
        if src.len() < HEADER + len {
            src.reserve(HEADER + len - src.len());
            return Ok(None);
        }
        src.advance(HEADER);
        Ok(Some(src.split_to(len)))
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<BytesMut>, FrameError> {
        match self.decode(buf)? {
            Some(frame) => Ok(Some(frame)),
            None if buf.is_empty() => Ok(None),
            None => Err(truncated(buf)),
        }
    }
}

fn truncated(buf: &[u8]) -> FrameError {
    if buf.len() < HEADER {
        return FrameError::Truncated { expected: HEADER as u64, got: buf.len() as u64 };
    }
    let expected = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as u64;
    FrameError::Truncated { expected, got: (buf.len() - HEADER) as u64 }
}

impl Encoder<&[u8]> for FrameCodec {
    type Error = FrameError;

    fn encode(&mut self, payload: &[u8], dst: &mut BytesMut) -> Result<(), FrameError> {
        check_len(payload.len(), self.max)?;
        dst.reserve(HEADER + payload.len());
        dst.put_u32(payload.len() as u32);
        dst.put_slice(payload);
        Ok(())
    }
}

fn check_len(len: usize, max: usize) -> Result<(), FrameError> {
    if len > max {
        return Err(FrameError::TooLarge { len: len as u64, max });
    }
    Ok(())
}

/// Reads one frame. `Ok(None)` means the peer closed the connection cleanly
/// between frames.
pub fn read_frame(r: &mut impl Read, max: usize) -> Result<Option<Vec<u8>>, FrameError> {
    let mut header = [0u8; HEADER];
    let mut got = 0;
    while got < HEADER {
        match r.read(&mut header[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(FrameError::Truncated { expected: HEADER as u64, got: got as u64 }),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    let len = u32::from_be_bytes(header) as usize;
    check_len(len, max)?;
    let mut payload = vec![0u8; len];
    let mut filled = 0;
    while filled < len {
        match r.read(&mut payload[filled..]) {
            Ok(0) => return Err(FrameError::Truncated { expected: len as u64, got: filled as u64 }),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Some(payload))
}

/// Writes one frame with a single `write_all`, so small frames leave in one
/// system call.
pub fn write_frame(w: &mut impl Write, payload: &[u8], max: usize) -> Result<(), FrameError> {
    check_len(payload.len(), max)?;
    let mut buf = Vec::with_capacity(HEADER + payload.len());
    buf.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    buf.extend_from_slice(payload);
    w.write_all(&buf)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoder_waits_for_the_whole_frame_then_yields_it() {
        let mut codec = FrameCodec::default();
        let mut buf = BytesMut::from(&[0u8, 0, 0, 3, b'a', b'b'][..]);
        assert!(codec.decode(&mut buf).unwrap().is_none());
        buf.put_u8(b'c');
        assert_eq!(&codec.decode(&mut buf).unwrap().unwrap()[..], b"abc");
        assert!(buf.is_empty());
    }

    #[test]
    fn oversized_header_is_refused_before_buffering() {
        let mut codec = FrameCodec::new(1024);
        let mut buf = BytesMut::from(&[0xffu8, 0xff, 0xff, 0xff][..]);
        match codec.decode(&mut buf) {
            Err(FrameError::TooLarge { len, max }) => assert_eq!((len, max), (u32::MAX as u64, 1024)),
            other => panic!("expected TooLarge, got {other:?}"),
        }
    }

    #[test]
    fn eof_inside_a_frame_is_reported_as_truncated() {
        let mut codec = FrameCodec::default();
        let mut buf = BytesMut::from(&[0u8, 0, 0, 10, 1, 2][..]);
        match codec.decode_eof(&mut buf) {
            Err(FrameError::Truncated { expected, got }) => assert_eq!((expected, got), (10, 2)),
            other => panic!("expected Truncated, got {other:?}"),
        }
    }

    #[test]
    fn blocking_helpers_round_trip_and_see_clean_eof() {
        let mut wire = Vec::new();
        write_frame(&mut wire, b"hello", 64).unwrap();
        let mut r = &wire[..];
        assert_eq!(read_frame(&mut r, 64).unwrap().unwrap(), b"hello");
        assert!(read_frame(&mut r, 64).unwrap().is_none());
        assert!(matches!(write_frame(&mut Vec::new(), &[0; 65], 64), Err(FrameError::TooLarge { .. })));
    }
}
