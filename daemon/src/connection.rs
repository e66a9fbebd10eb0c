//! `Connection`: frames in and out of one client socket. Reads into a buffer
//! and lets the protocol's `FrameCodec` cut frames, so the size limit is
//! checked on the header before a payload is buffered.

use bytes::BytesMut;
use milestones_protocol::{FrameCodec, FrameError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio_util::codec::{Decoder, Encoder};

pub struct Connection {
    stream: UnixStream,
    buffer: BytesMut,
    codec: FrameCodec,
}

impl Connection {
    pub fn new(stream: UnixStream, max_frame: usize) -> Self {
        Connection { stream, buffer: BytesMut::with_capacity(8 * 1024), codec: FrameCodec::new(max_frame) }
    }

    pub fn stream(&self) -> &UnixStream {
        &self.stream
    }

    /// The next frame's payload; `None` when the peer closed cleanly between
    /// frames. Cancel-safe: a frame half-read stays in the buffer.
    pub async fn read_frame(&mut self) -> Result<Option<BytesMut>, FrameError> {
        loop {
            if let Some(frame) = self.codec.decode(&mut self.buffer)? {
                return Ok(Some(frame));
            }
            if self.stream.read_buf(&mut self.buffer).await? == 0 {
                return self.codec.decode_eof(&mut self.buffer);
            }
        }
    }

    /// Sends one frame in a single write.
    pub async fn write_frame(&mut self, payload: &[u8]) -> Result<(), FrameError> {
        let mut out = BytesMut::with_capacity(payload.len() + 4);
        self.codec.encode(payload, &mut out)?;
        self.stream.write_all(&out).await?;
        Ok(())
    }
}
