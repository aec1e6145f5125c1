//! One direction of a virtual TCP connection: a bounded in-memory byte
//! buffer. The writer gets at most `capacity` bytes ahead of the reader
//! (backpressure); closing either end is seen by the other (EOF, or a
//! closed stream for a writer whose reader is gone).

use crate::sync::lock;
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use tokio::sync::Notify;
use wasmtime_wasi::p2::{InputStream, OutputStream, Pollable, StreamError, StreamResult};

#[derive(Debug)]
struct State {
    buf: BytesMut,
    capacity: usize,
    writer_closed: bool,
    reader_closed: bool,
}

/// The shared buffer; [`PipeReader`] and [`PipeWriter`] are its ends.
#[derive(Debug)]
pub(crate) struct Pipe {
    state: Mutex<State>,
    readable: Notify,
    writable: Notify,
}

impl Pipe {
    pub(crate) fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Pipe {
            state: Mutex::new(State {
                buf: BytesMut::new(),
                capacity: capacity.max(1),
                writer_closed: false,
                reader_closed: false,
            }),
            readable: Notify::new(),
            writable: Notify::new(),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// No more bytes will be written (the reader sees EOF once drained).
    pub(crate) fn close_write(&self) {
        self.state().writer_closed = true;
        self.readable.notify_waiters();
    }

    /// Nothing will be read any more (the writer sees a closed stream and
    /// buffered bytes are dropped).
    pub(crate) fn close_read(&self) {
        let mut s = self.state();
        s.reader_closed = true;
        s.buf.clear();
        drop(s);
        self.writable.notify_waiters();
    }
}

/// The reading end, given to a guest as a `wasi:io/streams.input-stream`.
pub(crate) struct PipeReader(pub(crate) Arc<Pipe>);

/// The writing end, given to a guest as a `wasi:io/streams.output-stream`.
pub(crate) struct PipeWriter(pub(crate) Arc<Pipe>);

impl Drop for PipeReader {
    fn drop(&mut self) {
        self.0.close_read();
    }
}

impl Drop for PipeWriter {
    fn drop(&mut self) {
        self.0.close_write();
    }
}

impl PipeReader {
    /// Reads up to `size` bytes: `Ok(empty)` when nothing is buffered yet,
    /// `Err(Closed)` at end of stream.
    pub(crate) fn read_now(&mut self, size: usize) -> StreamResult<Bytes> {
        let mut s = self.0.state();
        if s.buf.is_empty() {
            return if s.writer_closed || s.reader_closed {
                Err(StreamError::Closed)
            } else {
                Ok(Bytes::new())
            };
        }
        let n = size.min(s.buf.len());
        let out = s.buf.split_to(n).freeze();
        drop(s);
        self.0.writable.notify_waiters();
        Ok(out)
    }

    /// Waits until a read would not return empty.
    pub(crate) async fn readable(&self) {
        loop {
            let notified = self.0.readable.notified();
            {
                let s = self.0.state();
                if !s.buf.is_empty() || s.writer_closed || s.reader_closed {
                    return;
                }
            }
            notified.await;
        }
    }
}

impl PipeWriter {
    /// How many bytes may be written now; `Err(Closed)` once the reader is gone.
    pub(crate) fn room(&self) -> StreamResult<usize> {
        let s = self.0.state();
        if s.reader_closed || s.writer_closed {
            return Err(StreamError::Closed);
        }
        Ok(s.capacity.saturating_sub(s.buf.len()))
    }

    pub(crate) fn write_now(&mut self, bytes: &[u8]) -> StreamResult<()> {
        let mut s = self.0.state();
        if s.reader_closed || s.writer_closed {
            return Err(StreamError::Closed);
        }
        if bytes.len() > s.capacity.saturating_sub(s.buf.len()) {
            return Err(StreamError::Trap(wasmtime::format_err!(
                "write beyond the permitted size"
            )));
        }
        s.buf.extend_from_slice(bytes);
        drop(s);
        self.0.readable.notify_waiters();
        Ok(())
    }

    /// Waits until there is room (or the reader is gone).
    pub(crate) async fn writable(&self) {
        loop {
            let notified = self.0.writable.notified();
            {
                let s = self.0.state();
                if s.buf.len() < s.capacity || s.reader_closed || s.writer_closed {
                    return;
                }
            }
            notified.await;
        }
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for PipeReader {
    async fn ready(&mut self) {
        self.readable().await
    }
}

#[wasmtime_wasi::async_trait]
impl InputStream for PipeReader {
    fn read(&mut self, size: usize) -> StreamResult<Bytes> {
        self.read_now(size)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for PipeWriter {
    async fn ready(&mut self) {
        self.writable().await
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for PipeWriter {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.write_now(&bytes)
    }
    fn flush(&mut self) -> StreamResult<()> {
        // Bytes are visible to the reader as soon as they are written.
        Ok(())
    }
    fn check_write(&mut self) -> StreamResult<usize> {
        self.room()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bounded_with_eof_and_closed_reader() {
        let pipe = Pipe::new(4);
        let mut w = PipeWriter(pipe.clone());
        let mut r = PipeReader(pipe.clone());
        assert_eq!(w.room().unwrap(), 4);
        w.write_now(b"abcd").unwrap();
        assert_eq!(w.room().unwrap(), 0, "backpressure");
        assert!(w.write_now(b"e").is_err());
        assert_eq!(&r.read_now(3).unwrap()[..], b"abc");
        w.writable().await;
        w.write_now(b"ef").unwrap();
        assert_eq!(&r.read_now(10).unwrap()[..], b"def");
        assert!(r.read_now(10).unwrap().is_empty(), "nothing yet, not EOF");
        drop(w);
        r.readable().await;
        assert!(matches!(r.read_now(10), Err(StreamError::Closed)), "EOF");

        let pipe = Pipe::new(8);
        let w = PipeWriter(pipe.clone());
        drop(PipeReader(pipe));
        assert!(
            matches!(w.room(), Err(StreamError::Closed)),
            "the peer is gone"
        );
    }
}
