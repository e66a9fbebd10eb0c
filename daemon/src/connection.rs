//! `Connection`: frames in and out of one client socket. Reads into a buffer
//! and lets the protocol's `FrameCodec` cut frames, so the size limit is
//! checked on the header before a payload is buffered.
//!
//! A connection also bounds how long a peer may hold it without progress:
//! a frame once begun must arrive whole within the frame timeout, a reply
//! must be taken within it, and (where the caller asks) a connection may
//! sit between requests only so long.

use std::io;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use milestones_protocol::{FrameCodec, FrameError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio_util::codec::{Decoder, Encoder};

/// Why no frame was read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("no request in {} s; closing the idle connection", .0.as_secs())]
    Idle(Duration),
    #[error("a frame begun {} s ago is still incomplete; closing the connection", .0.as_secs())]
    Stalled(Duration),
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        ReadError::Frame(FrameError::Io(e))
    }
}

pub struct Connection {
    stream: UnixStream,
    buffer: BytesMut,
    codec: FrameCodec,
    frame_timeout: Duration,
    /// When the first bytes of the frame now in the buffer arrived.
    begun: Option<Instant>,
}

impl Connection {
    pub fn new(stream: UnixStream, max_frame: usize, frame_timeout: Duration) -> Self {
        Connection {
            stream,
            buffer: BytesMut::with_capacity(8 * 1024),
            codec: FrameCodec::new(max_frame),
            frame_timeout,
            begun: None,
        }
    }

    pub fn stream(&self) -> &UnixStream {
        &self.stream
    }

    /// The next frame's payload; `None` when the peer closed cleanly between
    /// frames. With `idle`, a peer that begins no frame within it is
    /// refused with [`ReadError::Idle`]. Cancel-safe: a frame half-read
    /// stays in the buffer.
    pub async fn read_frame(&mut self, idle: Option<Duration>) -> Result<Option<BytesMut>, ReadError> {
        loop {
            if let Some(frame) = self.codec.decode(&mut self.buffer)? {
                // Bytes left over are the next frame, begun now.
                self.begun = (!self.buffer.is_empty()).then(Instant::now);
                return Ok(Some(frame));
            }
            let read = self.stream.read_buf(&mut self.buffer);
            let read = match (self.begun, idle) {
                (Some(begun), _) => tokio::time::timeout_at((begun + self.frame_timeout).into(), read)
                    .await
                    .map_err(|_| ReadError::Stalled(self.frame_timeout))?,
                (None, Some(idle)) => tokio::time::timeout(idle, read).await.map_err(|_| ReadError::Idle(idle))?,
                (None, None) => read.await,
            }?;
            if read == 0 {
                return Ok(self.codec.decode_eof(&mut self.buffer)?);
            }
            self.begun.get_or_insert_with(Instant::now);
        }
    }

    /// Sends one frame in a single write; a peer that does not take it
    /// within the frame timeout gets a `TimedOut` error.
    pub async fn write_frame(&mut self, payload: &[u8]) -> Result<(), FrameError> {
        let mut out = BytesMut::with_capacity(payload.len() + 4);
        self.codec.encode(payload, &mut out)?;
        match tokio::time::timeout(self.frame_timeout, self.stream.write_all(&out)).await {
            Ok(written) => Ok(written?),
            Err(_) => Err(FrameError::Io(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the client took no reply in {} s", self.frame_timeout.as_secs()),
            ))),
        }
    }
}
