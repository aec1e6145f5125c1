//! Container logs: stdout and stderr of each run go to
//! `<pod dir>/<container>/<restartCount>.log` (see `sandbox::layout`; bounded: the file is
//! rotated to `.log.1` when it reaches the size limit, so at most two files
//! per run stay on disk), and complete lines are broadcast to subscribers.

use crate::sync::lock;
use std::collections::VecDeque;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

use crate::fanout::Fanout;
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Which standard stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// One line of a container's output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// The container.
    pub container: String,
    /// stdout or stderr.
    pub stream: Stream,
    /// The line, without its newline (invalid UTF-8 replaced).
    pub line: String,
}

/// Longest line kept whole; longer output is cut into pieces of this size.
const MAX_LINE: usize = 16 * 1024;

struct Inner {
    /// `None` once closed to make room ([`LogFiles`]); reopened to append.
    file: Option<File>,
    path: PathBuf,
    written: u64,
    max: u64,
    partial: [Vec<u8>; 2],
    files: Arc<LogFiles>,
    /// An exec's output, kept in memory instead of a file (up to `max`).
    memory: Option<Vec<u8>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            self.files.live.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// The log files of a runtime that are open at once: at most `max`. Past
/// that, the file opened longest ago is closed, and opened again (to
/// append) at its next write, so that thousands of quiet containers do not
/// hold thousands of file descriptors.
pub(crate) struct LogFiles {
    max: usize,
    live: AtomicUsize,
    open: Mutex<VecDeque<Weak<Mutex<Inner>>>>,
}

impl LogFiles {
    pub(crate) fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max: max.max(1),
            live: AtomicUsize::new(0),
            open: Mutex::new(VecDeque::new()),
        })
    }

    /// Log files open now.
    #[cfg(test)]
    fn live(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }

    /// `log` has just opened its file (its lock is not held): counts it and
    /// closes the oldest open ones beyond `max`.
    fn opened(&self, log: &Arc<Mutex<Inner>>) {
        self.live.fetch_add(1, Ordering::Relaxed);
        let mut victims = Vec::new();
        {
            let mut open = lock(&self.open);
            open.push_back(Arc::downgrade(log));
            while self.live.load(Ordering::Relaxed) > self.max + victims.len() {
                match open.pop_front() {
                    Some(w) => {
                        if let Some(inner) = w.upgrade() {
                            victims.push(inner);
                        }
                    }
                    None => break,
                }
            }
            // Entries of logs gone meanwhile are dropped now and then.
            if open.len() > 2 * self.max {
                open.retain(|w| w.strong_count() > 0);
            }
        }
        for inner in victims {
            if Arc::ptr_eq(&inner, log) {
                continue;
            }
            let mut inner = lock(&inner);
            if inner.file.take().is_some() {
                self.live.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
}

/// The log of one run of one container.
#[derive(Clone)]
pub(crate) struct ContainerLog {
    inner: Arc<Mutex<Inner>>,
    container: Arc<str>,
    lines: Arc<Fanout<LogLine>>,
    files: Arc<LogFiles>,
}

impl ContainerLog {
    pub(crate) fn create(
        path: &Path,
        max: u64,
        container: &str,
        lines: Arc<Fanout<LogLine>>,
        files: &Arc<LogFiles>,
    ) -> std::io::Result<Self> {
        let file = match File::create(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // The container's first run: its folder is made now.
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                File::create(path)?
            }
            other => other?,
        };
        let inner = Arc::new(Mutex::new(Inner {
            file: Some(file),
            path: path.to_path_buf(),
            written: 0,
            max: max.max(1024),
            partial: [Vec::new(), Vec::new()],
            files: files.clone(),
            memory: None,
        }));
        files.opened(&inner);
        Ok(Self {
            inner,
            container: container.into(),
            lines,
            files: files.clone(),
        })
    }

    /// Output kept in memory (an exec's): the first `max` bytes, no file,
    /// no subscribers.
    pub(crate) fn capture(max: usize, container: &str, files: &Arc<LogFiles>) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                file: None,
                path: PathBuf::new(),
                written: 0,
                max: max as u64,
                partial: [Vec::new(), Vec::new()],
                files: files.clone(),
                memory: Some(Vec::new()),
            })),
            container: container.into(),
            lines: Arc::new(Fanout::new(1)),
            files: files.clone(),
        }
    }

    /// What [`ContainerLog::capture`] kept.
    pub(crate) fn captured(&self) -> Vec<u8> {
        let inner = lock(&self.inner);
        inner.memory.clone().unwrap_or_default()
    }

    /// Appends guest output.
    pub(crate) fn write(&self, stream: Stream, bytes: &[u8]) {
        let mut inner = lock(&self.inner);
        if inner.append(bytes) {
            drop(inner);
            self.files.opened(&self.inner);
            inner = lock(&self.inner);
        }
        if !self.lines.has_subscribers() {
            return;
        }
        let slot = stream as usize;
        let mut rest = bytes;
        while let Some(i) = rest.iter().position(|&b| b == b'\n') {
            inner.partial[slot].extend_from_slice(&rest[..i]);
            let line = std::mem::take(&mut inner.partial[slot]);
            self.emit(stream, &line);
            rest = &rest[i + 1..];
        }
        inner.partial[slot].extend_from_slice(rest);
        if inner.partial[slot].len() >= MAX_LINE {
            let line = std::mem::take(&mut inner.partial[slot]);
            self.emit(stream, &line);
        }
    }

    /// A line written by the runtime itself (a trap message, for example),
    /// recorded on the container's stderr.
    pub(crate) fn note(&self, text: &str) {
        self.finish();
        let line = format!("wasipod: {text}\n");
        self.write(Stream::Stderr, line.as_bytes());
    }

    /// Emits any unterminated last lines.
    pub(crate) fn finish(&self) {
        let mut inner = lock(&self.inner);
        for stream in [Stream::Stdout, Stream::Stderr] {
            let line = std::mem::take(&mut inner.partial[stream as usize]);
            if !line.is_empty() {
                self.emit(stream, &line);
            }
        }
        if let Some(f) = &mut inner.file {
            let _ = f.flush();
        }
    }

    fn emit(&self, stream: Stream, line: &[u8]) {
        self.lines.send(LogLine {
            container: self.container.to_string(),
            stream,
            line: String::from_utf8_lossy(line).into_owned(),
        });
    }

    pub(crate) fn pipe(&self, stream: Stream) -> LogPipe {
        LogPipe {
            log: self.clone(),
            stream,
        }
    }
}

impl Inner {
    /// Appends to the file (reopening it if it was closed to make room);
    /// `true` when it had to be reopened.
    fn append(&mut self, bytes: &[u8]) -> bool {
        if let Some(memory) = &mut self.memory {
            let room = (self.max as usize).saturating_sub(memory.len());
            memory.extend_from_slice(&bytes[..bytes.len().min(room)]);
            return false;
        }
        let was_open = self.file.is_some();
        if self.written + bytes.len() as u64 > self.max && self.written > 0 {
            let rotated = self.path.with_extension("log.1");
            if std::fs::rename(&self.path, &rotated).is_ok()
                && let Ok(f) = File::create(&self.path)
            {
                self.file = Some(f);
                self.written = 0;
            }
        }
        if self.file.is_none() {
            match std::fs::OpenOptions::new().append(true).open(&self.path) {
                Ok(f) => self.file = Some(f),
                Err(e) => {
                    tracing::warn!(file = %self.path.display(), error = %e, "could not reopen a log file");
                    return false;
                }
            }
        }
        let take = bytes.len().min(self.max as usize);
        if let Some(f) = &mut self.file
            && f.write_all(&bytes[..take]).is_ok()
        {
            self.written += take as u64;
        }
        !was_open
    }
}

/// Reads a run's log, the rotated part first, keeping only its last
/// `tail_lines` lines and then at most its last `limit_bytes` bytes. A run
/// that has not written yet reads as empty when `missing_ok`.
pub fn read(
    path: &Path,
    tail_lines: Option<usize>,
    limit_bytes: Option<usize>,
    missing_ok: bool,
) -> std::io::Result<Vec<u8>> {
    let mut out = std::fs::read(path.with_extension("log.1")).unwrap_or_default();
    match std::fs::read(path) {
        Ok(bytes) => out.extend(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && missing_ok => {}
        Err(e) => return Err(e),
    }
    if let Some(n) = tail_lines {
        let body = out.strip_suffix(b"\n").unwrap_or(&out);
        let start = if n == 0 {
            out.len()
        } else {
            body.iter()
                .enumerate()
                .rev()
                .filter(|(_, b)| **b == b'\n')
                .nth(n - 1)
                .map_or(0, |(i, _)| i + 1)
        };
        out.drain(..start);
    }
    if let Some(max) = limit_bytes
        && out.len() > max
    {
        out.drain(..out.len() - max);
    }
    Ok(out)
}

/// Removes a run's log (and its rotated part), if it is there.
pub(crate) fn remove_run(path: &Path) {
    for p in [path.with_extension("log.1"), path.to_path_buf()] {
        if let Err(e) = std::fs::remove_file(&p)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(file = %p.display(), error = %e, "could not remove an old log");
        }
    }
}

/// A guest's stdout or stderr, writing into a [`ContainerLog`].
#[derive(Clone)]
pub(crate) struct LogPipe {
    log: ContainerLog,
    stream: Stream,
}

impl IsTerminal for LogPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogPipe {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for LogPipe {
    async fn ready(&mut self) {}
}

impl OutputStream for LogPipe {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.log.write(self.stream, &bytes);
        Ok(())
    }
    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }
    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

impl tokio::io::AsyncWrite for LogPipe {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.log.write(self.stream, buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_line_split() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c/0.log");
        let fanout = Arc::new(Fanout::new(64));
        let mut rx = fanout.subscribe();
        let files = LogFiles::new(8);
        let log = ContainerLog::create(&path, 1024, "c", fanout, &files).unwrap();
        log.write(Stream::Stdout, b"hel");
        log.write(Stream::Stdout, b"lo\nwor");
        log.write(Stream::Stderr, b"err\n");
        log.finish();
        let lines: Vec<String> = std::iter::from_fn(|| rx.try_recv().ok())
            .map(|l| l.line)
            .collect();
        assert_eq!(lines, ["hello", "err", "wor"]);
        for _ in 0..100 {
            log.write(Stream::Stdout, &[b'x'; 100]);
        }
        let on_disk = std::fs::metadata(&path).unwrap().len()
            + std::fs::metadata(path.with_extension("log.1"))
                .unwrap()
                .len();
        assert!(on_disk <= 2048, "log kept {on_disk} bytes");
        assert!(
            read(&path, None, None, false)
                .unwrap()
                .ends_with(&[b'x'; 100])
        );
    }

    #[test]
    fn at_most_max_files_stay_open_and_closed_ones_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let files = LogFiles::new(2);
        let fanout = Arc::new(Fanout::new(4));
        let logs: Vec<ContainerLog> = (0..5)
            .map(|i| {
                let path = dir.path().join(format!("{i}.log"));
                ContainerLog::create(&path, 1 << 20, "c", fanout.clone(), &files).unwrap()
            })
            .collect();
        assert_eq!(files.live(), 2);
        for (i, log) in logs.iter().enumerate() {
            log.write(Stream::Stdout, format!("line {i}\n").as_bytes());
            log.write(Stream::Stdout, b"more\n");
        }
        assert_eq!(files.live(), 2);
        for i in 0..5 {
            let text = std::fs::read_to_string(dir.path().join(format!("{i}.log"))).unwrap();
            assert_eq!(text, format!("line {i}\nmore\n"));
        }
        drop(logs);
        assert_eq!(files.live(), 0);
    }

    #[test]
    fn tail_and_limit_keep_the_newest_output() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        std::fs::write(&path, "one\ntwo\nthree\n").unwrap();
        let read =
            |tail, limit| String::from_utf8(read(&path, tail, limit, false).unwrap()).unwrap();
        assert_eq!(read(Some(2), None), "two\nthree\n");
        assert_eq!(read(Some(5), None), "one\ntwo\nthree\n");
        assert_eq!(read(Some(0), None), "");
        assert_eq!(read(None, Some(6)), "three\n");
        let missing = dir.path().join("1.log");
        assert!(super::read(&missing, None, None, true).unwrap().is_empty());
        assert!(super::read(&missing, None, None, false).is_err());
    }
}
