//! Bounded capture of a guest's stdout and stderr.
//!
//! wasmtime-wasi's `MemoryOutputPipe` closes when full, which makes a Rust guest
//! panic on its next `println!`. A plugin that logs too much must not fail for
//! it, so this capture keeps a bounded window (the head for stdout, the tail for
//! stderr, whose end explains a failure), counts everything, and only fails the
//! run (as `OutputTooLarge`) past a hard ceiling on the bytes written.

use bytes::Bytes;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};

use crate::domain::Captured;

/// Which part of the stream survives when it is longer than the window.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Keep {
    /// The first bytes (logs: the start explains what happened).
    Head,
    /// The last bytes (stderr: the end holds the panic message).
    Tail,
}

/// The guest wrote more than the hard ceiling; the run fails as `OutputTooLarge`.
#[derive(Debug, thiserror::Error)]
#[error("output exceeds the limit of {limit} bytes")]
pub(crate) struct OutputOverflow {
    pub(crate) limit: u64,
}

/// A shared, bounded buffer; clones write to the same capture.
#[derive(Clone)]
pub(crate) struct Capture {
    inner: Arc<Mutex<Buffer>>,
}

struct Buffer {
    data: Vec<u8>,
    window: usize,
    keep: Keep,
    written: u64,
    ceiling: u64,
    overflowed: bool,
}

impl Capture {
    /// Keeps `window` bytes; writing more than `ceiling` bytes in total fails.
    pub(crate) fn new(window: u64, ceiling: u64, keep: Keep) -> Self {
        let window = usize::try_from(window).unwrap_or(usize::MAX);
        Self {
            inner: Arc::new(Mutex::new(Buffer {
                data: Vec::new(),
                window,
                keep,
                written: 0,
                ceiling,
                overflowed: false,
            })),
        }
    }

    fn push(&self, bytes: &[u8]) -> Result<(), OutputOverflow> {
        let mut b = self.inner.lock().expect("capture lock");
        b.written += bytes.len() as u64;
        if b.written > b.ceiling {
            b.overflowed = true;
            return Err(OutputOverflow { limit: b.ceiling });
        }
        match b.keep {
            Keep::Head => {
                let room = b.window.saturating_sub(b.data.len());
                let n = room.min(bytes.len());
                b.data.extend_from_slice(&bytes[..n]);
            }
            Keep::Tail => {
                b.data.extend_from_slice(bytes);
                // Trim lazily (amortised O(1) per byte): keep at most 2x the window.
                if b.data.len() > b.window.saturating_mul(2).max(4096) {
                    let cut = b.data.len() - b.window;
                    b.data.drain(..cut);
                }
            }
        }
        Ok(())
    }

    /// True once the ceiling was passed.
    pub(crate) fn overflowed(&self) -> Option<u64> {
        let b = self.inner.lock().expect("capture lock");
        b.overflowed.then_some(b.ceiling)
    }

    /// The kept window as text, and whether anything was dropped.
    pub(crate) fn finish(&self) -> Captured {
        let b = self.inner.lock().expect("capture lock");
        let data = match b.keep {
            Keep::Head => &b.data[..],
            Keep::Tail => &b.data[b.data.len().saturating_sub(b.window)..],
        };
        Captured {
            text: String::from_utf8_lossy(data).into_owned(),
            truncated: b.written > data.len() as u64,
        }
    }

    /// The raw bytes written, for a command plugin's stdout (its result), whose
    /// window equals its ceiling so nothing is ever dropped silently.
    pub(crate) fn bytes(&self) -> Vec<u8> {
        self.inner.lock().expect("capture lock").data.clone()
    }
}

/// How much a guest may write per `check-write` round trip.
const WRITE_BUDGET: usize = 64 << 10;

#[async_trait::async_trait]
impl Pollable for Capture {
    async fn ready(&mut self) {}
}

impl OutputStream for Capture {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes).map_err(|e| StreamError::Trap(wasmtime::Error::new(e)))
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_BUDGET)
    }
}

impl AsyncWrite for Capture {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Poll::Ready(
            self.push(buf).map(|()| buf.len()).map_err(|e| io::Error::new(io::ErrorKind::StorageFull, e)),
        )
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl IsTerminal for Capture {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Capture {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_keeps_the_start_and_marks_truncation() {
        let c = Capture::new(4, 100, Keep::Head);
        c.push(b"abcdef").unwrap();
        let out = c.finish();
        assert_eq!(out.text, "abcd");
        assert!(out.truncated);
    }

    #[test]
    fn tail_keeps_the_end() {
        let c = Capture::new(4, 100_000, Keep::Tail);
        for _ in 0..3000 {
            c.push(b"0123456789").unwrap();
        }
        c.push(b"END!").unwrap();
        let out = c.finish();
        assert_eq!(out.text, "END!");
        assert!(out.truncated);
    }

    #[test]
    fn passing_the_ceiling_overflows() {
        let c = Capture::new(4, 10, Keep::Head);
        c.push(b"12345").unwrap();
        assert!(c.overflowed().is_none());
        assert_eq!(c.push(b"123456").unwrap_err().limit, 10);
        assert_eq!(c.overflowed(), Some(10));
    }
}
