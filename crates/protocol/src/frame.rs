//! Line framing with a hard size limit: a frame over the limit is skipped up to its newline and
//! reported, so a client sending garbage costs the engine at most one bounded buffer.

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// Largest frame accepted, newline excluded.
pub const MAX_FRAME: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("frame is not UTF-8")]
    NotUtf8,
    #[error("connection error: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads newline-delimited frames. It holds at most `limit` bytes of a frame at any time (its
/// buffer never grows past the limit), however the bytes arrive.
pub struct FrameReader<R> {
    inner: R,
    limit: usize,
    buf: Vec<u8>,
}

impl<R: AsyncBufRead + Unpin> FrameReader<R> {
    pub fn new(inner: R) -> Self {
        Self::with_limit(inner, MAX_FRAME)
    }

    pub fn with_limit(inner: R, limit: usize) -> Self {
        FrameReader { inner, limit, buf: Vec::new() }
    }

    /// The next frame; `Ok(None)` at end of stream. Empty lines are skipped.
    /// Waits until some bytes are there to read; false at the end of the stream.
    pub async fn fill(&mut self) -> Result<bool, FrameError> {
        Ok(!self.inner.fill_buf().await?.is_empty())
    }

    pub async fn next(&mut self) -> Result<Option<String>, FrameError> {
        loop {
            self.buf.clear();
            let mut oversized = false;
            loop {
                let available = self.inner.fill_buf().await?;
                if available.is_empty() {
                    if oversized {
                        return Err(FrameError::TooLarge { limit: self.limit });
                    }
                    if self.buf.is_empty() {
                        return Ok(None);
                    }
                    break;
                }
                let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
                    Some(i) => (&available[..i], Some(i + 1)),
                    None => (available, None),
                };
                if !oversized {
                    let needed = self.buf.len() + chunk.len();
                    if needed > self.limit {
                        oversized = true;
                        self.buf = Vec::new();
                    } else {
                        // Grow as a Vec would (doubling), but never past the limit.
                        if needed > self.buf.capacity() {
                            let grown = self.buf.capacity().saturating_mul(2).clamp(needed, self.limit);
                            self.buf.reserve_exact(grown - self.buf.len());
                        }
                        self.buf.extend_from_slice(chunk);
                    }
                }
                let consumed = done.unwrap_or(available.len());
                self.inner.consume(consumed);
                if done.is_some() {
                    break;
                }
            }
            if oversized {
                return Err(FrameError::TooLarge { limit: self.limit });
            }
            if self.buf.iter().all(|b| b.is_ascii_whitespace()) {
                continue;
            }
            return match std::str::from_utf8(&self.buf) {
                Ok(s) => Ok(Some(s.to_owned())),
                Err(_) => Err(FrameError::NotUtf8),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn frames(input: &[u8], limit: usize) -> Vec<Result<Option<String>, String>> {
        let mut r = FrameReader::with_limit(input, limit);
        let mut out = Vec::new();
        loop {
            let f = r.next().await.map_err(|e| e.to_string());
            let end = matches!(f, Ok(None));
            out.push(f);
            if end {
                return out;
            }
        }
    }

    #[tokio::test]
    async fn splits_lines_and_skips_blank_ones() {
        let got = frames(b"a\n\n  \nbc\nlast", 16).await;
        assert_eq!(got, vec![Ok(Some("a".into())), Ok(Some("bc".into())), Ok(Some("last".into())), Ok(None)]);
    }

    #[tokio::test]
    async fn oversized_frame_is_reported_and_the_next_one_still_reads() {
        let mut input = vec![b'x'; 100];
        input.extend_from_slice(b"\nok\n");
        let got = frames(&input, 10).await;
        assert_eq!(got[0], Err("frame larger than 10 bytes".into()));
        assert_eq!(got[1], Ok(Some("ok".into())));
    }

    // Found by the protocol_frame fuzz target: the buffer grew as a Vec does (at least 8 bytes,
    // then doubling), so a frame just under the limit could hold nearly twice the limit.
    #[tokio::test]
    async fn the_buffer_never_grows_past_the_limit() {
        for (limit, frame) in [(1, 1), (5, 5), (100, 100), (100, 99), (1000, 700)] {
            let mut input = vec![b'x'; frame];
            input.push(b'\n');
            // One byte at a time, so the buffer grows step by step.
            let reader = tokio::io::BufReader::with_capacity(1, &input[..]);
            let mut frames = FrameReader::with_limit(reader, limit);
            assert_eq!(frames.next().await.unwrap().map(|f| f.len()), Some(frame));
            assert!(
                frames.buf.capacity() <= limit,
                "{} bytes held for a limit of {limit}",
                frames.buf.capacity()
            );
        }
    }

    #[tokio::test]
    async fn invalid_utf8_is_an_error_not_a_panic() {
        let got = frames(b"\xff\xfe\nok\n", 10).await;
        assert_eq!(got[0], Err("frame is not UTF-8".into()));
        assert_eq!(got[1], Ok(Some("ok".into())));
    }
}
