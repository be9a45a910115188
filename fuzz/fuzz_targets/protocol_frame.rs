//! An arbitrary byte stream, delivered in arbitrary chunks, through `FrameReader` with a small
//! limit, then each frame as a JSON-RPC request through `Call::parse`.
//!
//! Properties: the frames are those of a plain model of the framing (lines, blank ones
//! skipped, over the limit or not UTF-8 an error, the next line still read) whatever the
//! chunking; the reader never allocates more than the limit at once; a request that parses
//! re-parses from its own wire form to the same call.
#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::future::Future;
use std::io;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};

use arbitrary::Arbitrary;
use gitvisor_protocol::{Call, FrameError, FrameReader, Request, METHOD_NAMES};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tokio::io::{AsyncBufRead, AsyncRead, ReadBuf};

/// Records the largest single allocation while `TRACKING` is on.
struct Tracking;

static TRACKING: AtomicBool = AtomicBool::new(false);
static LARGEST: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if TRACKING.load(Ordering::Relaxed) {
            LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        }
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if TRACKING.load(Ordering::Relaxed) {
            LARGEST.fetch_max(new_size, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Tracking = Tracking;

#[derive(Arbitrary, Debug)]
struct Input {
    limit: u8,
    /// Sizes of the chunks the stream arrives in (cycled; 0 is taken as 1).
    chunks: Vec<u8>,
    /// Which method a frame's JSON is tried as, besides the request's own.
    method: u8,
    stream: Vec<u8>,
}

/// Hands out `data` in chunks of the given sizes, as a socket might.
struct Chunked<'a> {
    data: &'a [u8],
    sizes: &'a [u8],
    next_size: usize,
    pos: usize,
    window_end: usize,
}

impl Chunked<'_> {
    fn window(&mut self) -> &[u8] {
        if self.pos == self.window_end {
            let size = match self.sizes {
                [] => usize::MAX,
                sizes => usize::from(sizes[self.next_size % sizes.len()].max(1)),
            };
            self.next_size += 1;
            self.window_end = self.pos.saturating_add(size).min(self.data.len());
        }
        &self.data[self.pos..self.window_end]
    }
}

impl AsyncRead for Chunked<'_> {
    fn poll_read(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let window = this.window();
        let n = window.len().min(buf.remaining());
        buf.put_slice(&window[..n]);
        this.pos += n;
        Poll::Ready(Ok(()))
    }
}

impl AsyncBufRead for Chunked<'_> {
    fn poll_fill_buf(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        Poll::Ready(Ok(self.get_mut().window()))
    }

    fn consume(self: Pin<&mut Self>, amt: usize) {
        let this = self.get_mut();
        this.pos = (this.pos + amt).min(this.window_end);
    }
}

/// Polls a future that never waits (the reader above is always ready).
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("the reader is always ready"),
    }
}

#[derive(Debug, PartialEq)]
enum Frame {
    Text(String),
    TooLarge,
    NotUtf8,
}

/// What the stream is, frame by frame, by the rules the reader documents.
fn model(stream: &[u8], limit: usize) -> Vec<Frame> {
    let mut lines: Vec<&[u8]> = stream.split(|&b| b == b'\n').collect();
    if stream.is_empty() || stream.ends_with(b"\n") {
        lines.pop();
    }
    lines
        .into_iter()
        .filter_map(|line| {
            if line.len() > limit {
                Some(Frame::TooLarge)
            } else if line.iter().all(u8::is_ascii_whitespace) {
                None
            } else {
                Some(std::str::from_utf8(line).map_or(Frame::NotUtf8, |s| Frame::Text(s.to_owned())))
            }
        })
        .collect()
}

fuzz_target!(|input: Input| {
    let limit = usize::from(input.limit).max(1);
    let reader = Chunked { data: &input.stream, sizes: &input.chunks, next_size: 0, pos: 0, window_end: 0 };
    let mut frames = FrameReader::with_limit(reader, limit);
    let mut got = Vec::new();
    // Each frame consumes at least one byte, so this ends.
    for _ in 0..=input.stream.len() {
        LARGEST.store(0, Ordering::Relaxed);
        TRACKING.store(true, Ordering::Relaxed);
        let next = ready(frames.next());
        TRACKING.store(false, Ordering::Relaxed);
        let largest = LARGEST.load(Ordering::Relaxed);
        assert!(largest <= limit, "the reader allocated {largest} bytes at once, over its limit of {limit}");
        match next {
            Ok(None) => break,
            Ok(Some(text)) => {
                assert!(text.len() <= limit);
                got.push(Frame::Text(text));
            }
            Err(FrameError::TooLarge { limit: l }) => {
                assert_eq!(l, limit);
                got.push(Frame::TooLarge);
            }
            Err(FrameError::NotUtf8) => got.push(Frame::NotUtf8),
            Err(FrameError::Io(e)) => panic!("no I/O error here: {e}"),
        }
    }
    assert_eq!(got, model(&input.stream, limit), "chunks {:?}", input.chunks);
    assert!(matches!(ready(frames.next()), Ok(None)), "the end stays the end");

    for frame in &got {
        let Frame::Text(text) = frame else { continue };
        if let Ok(request) = serde_json::from_str::<Request>(text) {
            call(&request.method, request.params);
        }
        if let Ok(params) = serde_json::from_str::<Value>(text) {
            let method = METHOD_NAMES[usize::from(input.method) % METHOD_NAMES.len()];
            call(method, params);
        }
    }
});

/// A call that parses is named by its method and goes back on the wire as the same call.
fn call(method: &str, params: Value) {
    let Ok(call) = Call::parse(method, params) else { return };
    assert_eq!(call.name(), method);
    assert_eq!(Call::parse(call.name(), call.params()).as_ref(), Ok(&call), "{method} round trip");
}
