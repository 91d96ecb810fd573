//! `atoll exec -i`/`-t`: an interactive command's bytes, both ways. The
//! CLI and the server speak frames over an upgraded HTTP connection (as
//! `docker exec` does), each prefixed by its length; the server and the
//! host speak the same frames over NATS, each message numbered so that
//! a lost one is noticed rather than silently skipped.

/// Most data in one frame; longer input or output goes in several.
pub const MAX_DATA: usize = 32 << 10;
/// The longest frame a reader accepts (data, its kind, an exit message).
const MAX_FRAME: usize = MAX_DATA + 1024;
/// A session with no frame from the server for this long is over: its
/// command is killed. The server pings well within it.
pub const IDLE_MS: u64 = 30_000;
/// How often the server pings a quiet session.
pub const PING_MS: u64 = 10_000;
/// Data (input one way, output the other) sent and not yet acknowledged
/// ([`Frame::Ack`]), at most: a side that reaches it waits, so a fast
/// command or a fast typist cannot fill the memory of a slow other end.
pub const WINDOW: u64 = 1 << 20;
/// What `len` bytes of data cost in the window: the bytes, and a frame's
/// cost on top (so that many tiny frames count too).
pub fn cost(len: usize) -> u64 {
    len as u64 + 64
}

/// How much data a side takes in between two acknowledgements.
pub const ACK_EVERY: u64 = 256 << 10;
/// The HTTP `Upgrade` protocol of a session.
pub const UPGRADE: &str = "atoll-exec";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// To the command's standard input (or its terminal).
    Stdin(Vec<u8>),
    /// The client's input ended: the command's standard input is closed.
    StdinClosed,
    /// The client's terminal changed size.
    Resize {
        rows: u16,
        cols: u16,
    },
    /// The client went away: the command is ended.
    Close,
    /// The session is alive (server to host).
    Ping,
    /// The command started (host to server).
    Started,
    /// What the command wrote (with a terminal, everything is stdout).
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    /// The command ended: its exit status (none if killed), or why it
    /// could not run or went on no longer.
    Exit {
        code: Option<i32>,
        error: Option<String>,
    },
    /// So many bytes of the other side's data (stdin one way, stdout and
    /// stderr the other) were taken in so far, in all.
    Ack(u64),
}

impl Frame {
    /// What [`WINDOW`] counts of it ([`cost`] of its data; 0 for frames
    /// without).
    pub fn data_len(&self) -> u64 {
        match self {
            Frame::Stdin(d) | Frame::Stdout(d) | Frame::Stderr(d) => cost(d.len()),
            _ => 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("an empty frame")]
    Empty,
    #[error("unknown frame kind {0}")]
    Kind(u8),
    #[error("a frame of {0} bytes (at most {MAX_FRAME})")]
    TooLong(usize),
    #[error("a truncated frame")]
    Truncated,
}

impl Frame {
    pub fn encode(&self) -> Vec<u8> {
        let (kind, body): (u8, Vec<u8>) = match self {
            Frame::Stdin(d) => (1, d.clone()),
            Frame::StdinClosed => (2, Vec::new()),
            Frame::Resize { rows, cols } => (3, [rows.to_be_bytes(), cols.to_be_bytes()].concat()),
            Frame::Close => (4, Vec::new()),
            Frame::Ping => (5, Vec::new()),
            Frame::Started => (6, Vec::new()),
            Frame::Stdout(d) => (7, d.clone()),
            Frame::Stderr(d) => (8, d.clone()),
            Frame::Exit { code, error } => {
                let mut b = Vec::with_capacity(5);
                match code {
                    Some(c) => {
                        b.push(1);
                        b.extend(c.to_be_bytes());
                    }
                    None => b.extend([0; 5]),
                }
                b.extend(error.as_deref().unwrap_or_default().as_bytes());
                (9, b)
            }
            Frame::Ack(n) => (10, n.to_be_bytes().to_vec()),
        };
        let mut out = Vec::with_capacity(1 + body.len());
        out.push(kind);
        out.extend(body);
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Frame, FrameError> {
        let (&kind, body) = bytes.split_first().ok_or(FrameError::Empty)?;
        if bytes.len() > MAX_FRAME {
            return Err(FrameError::TooLong(bytes.len()));
        }
        let u16_at = |i: usize| -> Result<u16, FrameError> {
            let b = body.get(i..i + 2).ok_or(FrameError::Truncated)?;
            Ok(u16::from_be_bytes([b[0], b[1]]))
        };
        Ok(match kind {
            1 => Frame::Stdin(body.to_vec()),
            2 => Frame::StdinClosed,
            3 => Frame::Resize {
                rows: u16_at(0)?,
                cols: u16_at(2)?,
            },
            4 => Frame::Close,
            5 => Frame::Ping,
            6 => Frame::Started,
            7 => Frame::Stdout(body.to_vec()),
            8 => Frame::Stderr(body.to_vec()),
            9 => {
                let head = body.get(..5).ok_or(FrameError::Truncated)?;
                let code = (head[0] == 1)
                    .then(|| i32::from_be_bytes([head[1], head[2], head[3], head[4]]));
                let text = String::from_utf8_lossy(&body[5..]).into_owned();
                Frame::Exit {
                    code,
                    error: (!text.is_empty()).then_some(text),
                }
            }
            10 => {
                let n = body.get(..8).ok_or(FrameError::Truncated)?;
                Frame::Ack(u64::from_be_bytes(
                    n.try_into().map_err(|_| FrameError::Truncated)?,
                ))
            }
            k => return Err(FrameError::Kind(k)),
        })
    }

    /// The frame as a stream carries it: its length (u32, big-endian)
    /// first.
    pub fn framed(&self) -> Vec<u8> {
        let body = self.encode();
        let mut out = (body.len() as u32).to_be_bytes().to_vec();
        out.extend(body);
        out
    }

    /// The frame as a NATS message carries it: its number first.
    pub fn message(&self, seq: u64) -> Vec<u8> {
        let mut out = seq.to_be_bytes().to_vec();
        out.extend(self.encode());
        out
    }

    /// A NATS message's number and frame.
    pub fn from_message(bytes: &[u8]) -> Result<(u64, Frame), FrameError> {
        let seq = bytes.get(..8).ok_or(FrameError::Truncated)?;
        let seq = u64::from_be_bytes(seq.try_into().map_err(|_| FrameError::Truncated)?);
        Ok((seq, Frame::decode(&bytes[8..])?))
    }
}

/// Reassembles the frames of a stream from the bytes as they arrive.
#[derive(Debug, Default)]
pub struct FrameReader {
    buf: Vec<u8>,
}

impl FrameReader {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes taken in and not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next whole frame, if one has arrived.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        let Some(head) = self.buf.get(..4) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        if len > MAX_FRAME {
            return Err(FrameError::TooLong(len));
        }
        if self.buf.len() < 4 + len {
            return Ok(None);
        }
        let frame = Frame::decode(&self.buf[4..4 + len]);
        self.buf.drain(..4 + len);
        frame.map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<Frame> {
        vec![
            Frame::Stdin(b"ls\n".to_vec()),
            Frame::StdinClosed,
            Frame::Resize {
                rows: 40,
                cols: 132,
            },
            Frame::Close,
            Frame::Ping,
            Frame::Started,
            Frame::Stdout(vec![0, 255, 10]),
            Frame::Stderr(Vec::new()),
            Frame::Exit {
                code: Some(-3),
                error: None,
            },
            Frame::Exit {
                code: None,
                error: Some("killed: the client went away".into()),
            },
            Frame::Ack(1 << 40),
        ]
    }

    #[test]
    fn frames_survive_a_stream_cut_anywhere_and_a_nats_message() {
        let bytes: Vec<u8> = all().iter().flat_map(Frame::framed).collect();
        for cut in [1, 3, 7, 1000] {
            let mut r = FrameReader::default();
            let mut got = Vec::new();
            for piece in bytes.chunks(cut) {
                r.push(piece);
                while let Some(f) = r.next_frame().expect("valid") {
                    got.push(f);
                }
            }
            assert_eq!(got, all(), "cut every {cut} bytes");
        }
        for (i, f) in all().into_iter().enumerate() {
            assert_eq!(Frame::from_message(&f.message(i as u64)), Ok((i as u64, f)));
        }
    }

    #[test]
    fn bad_frames_are_refused_by_name() {
        assert_eq!(Frame::decode(&[]), Err(FrameError::Empty));
        assert_eq!(Frame::decode(&[42]), Err(FrameError::Kind(42)));
        assert_eq!(Frame::decode(&[3, 0]), Err(FrameError::Truncated));
        let mut r = FrameReader::default();
        r.push(&u32::MAX.to_be_bytes());
        assert!(matches!(r.next_frame(), Err(FrameError::TooLong(_))));
        assert_eq!(Frame::from_message(&[1, 2]), Err(FrameError::Truncated));
    }
}
