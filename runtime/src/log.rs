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

use crate::api::status::Time;
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

    /// Appends guest output: each complete line becomes a record of the
    /// CRI log format (`<RFC 3339 time> <stdout|stderr> F <line>`); a line
    /// longer than 16 KiB is cut into partial records (`P`) as containerd
    /// does. Complete lines also go to the subscribers. An exec's capture
    /// keeps the bytes as they came.
    pub(crate) fn write(&self, stream: Stream, bytes: &[u8]) {
        let mut inner = lock(&self.inner);
        if inner.memory.is_some() {
            inner.append(bytes);
            return;
        }
        let live = self.lines.has_subscribers();
        let slot = stream as usize;
        let mut reopened = false;
        let mut rest = bytes;
        while let Some(i) = rest.iter().position(|&b| b == b'\n') {
            let mut line = std::mem::take(&mut inner.partial[slot]);
            line.extend_from_slice(&rest[..i]);
            reopened |= inner.record(stream, true, &line);
            if live {
                self.emit(stream, &line);
            }
            rest = &rest[i + 1..];
        }
        inner.partial[slot].extend_from_slice(rest);
        while inner.partial[slot].len() >= MAX_LINE {
            let piece: Vec<u8> = inner.partial[slot].drain(..MAX_LINE).collect();
            reopened |= inner.record(stream, false, &piece);
            if live {
                self.emit(stream, &piece);
            }
        }
        drop(inner);
        if reopened {
            self.files.opened(&self.inner);
        }
    }

    /// A line written by the runtime itself (a trap message, for example),
    /// recorded on the container's stderr.
    pub(crate) fn note(&self, text: &str) {
        self.finish();
        let line = format!("wasipod: {text}\n");
        self.write(Stream::Stderr, line.as_bytes());
    }

    /// Records and emits any unterminated last lines (as complete ones, as
    /// containerd does when a stream ends), and flushes the file.
    pub(crate) fn finish(&self) {
        let mut inner = lock(&self.inner);
        let mut reopened = false;
        for stream in [Stream::Stdout, Stream::Stderr] {
            let line = std::mem::take(&mut inner.partial[stream as usize]);
            if !line.is_empty() {
                if inner.memory.is_none() {
                    reopened |= inner.record(stream, true, &line);
                }
                self.emit(stream, &line);
            }
        }
        if let Some(f) = &mut inner.file {
            let _ = f.flush();
        }
        drop(inner);
        if reopened {
            self.files.opened(&self.inner);
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
    /// Appends one CRI log record; `true` when the file had to be reopened.
    fn record(&mut self, stream: Stream, full: bool, content: &[u8]) -> bool {
        let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let mut bytes = Vec::with_capacity(time.len() + content.len() + 12);
        bytes.extend_from_slice(time.as_bytes());
        bytes.extend_from_slice(match (stream, full) {
            (Stream::Stdout, true) => b" stdout F ",
            (Stream::Stdout, false) => b" stdout P ",
            (Stream::Stderr, true) => b" stderr F ",
            (Stream::Stderr, false) => b" stderr P ",
        });
        bytes.extend_from_slice(content);
        bytes.push(b'\n');
        self.append(&bytes)
    }

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

/// Which part of a log to read, as `kubectl logs` asks for it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogOptions {
    /// The container (may be empty where a pod has one container).
    pub container: String,
    /// The previous run's log instead of the current one (`--previous`).
    pub previous: bool,
    /// Only the last lines (`--tail`).
    pub tail_lines: Option<usize>,
    /// At most this many bytes, the newest (`--limit-bytes`).
    pub limit_bytes: Option<usize>,
    /// Only lines written at or after this time (`--since-time`, `--since`).
    pub since: Option<Time>,
    /// Each line prefixed with its RFC 3339 time (`--timestamps`).
    pub timestamps: bool,
    /// Go on with new output until the run ends (`--follow`).
    pub follow: bool,
}

impl LogOptions {
    /// The whole current log of `container`.
    pub fn container(container: &str) -> Self {
        Self {
            container: container.to_string(),
            ..Self::default()
        }
    }

    /// The previous run's log instead.
    pub fn previous(mut self) -> Self {
        self.previous = true;
        self
    }

    /// Only the last `n` lines.
    pub fn tail(mut self, n: usize) -> Self {
        self.tail_lines = Some(n);
        self
    }
}

/// One record of the CRI log format.
struct Record<'a> {
    time: &'a [u8],
    full: bool,
    content: &'a [u8],
}

/// Parses `<time> <stream> <P|F> <content>`; a line in any other shape (a
/// log written by an older wasipod) is taken whole as content.
fn parse(line: &[u8]) -> Record<'_> {
    let mut parts = line.splitn(4, |b| *b == b' ');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(time), Some(b"stdout" | b"stderr"), Some(tag @ (b"P" | b"F")), content) => Record {
            time,
            full: tag == b"F",
            content: content.unwrap_or_default(),
        },
        _ => Record {
            time: b"",
            full: true,
            content: line,
        },
    }
}

/// Turns CRI records (whole lines of a log file) into the output as the
/// program wrote it, applying `since` and `timestamps`.
pub(crate) fn decode(
    records: &[u8],
    options: &LogOptions,
    out: &mut Vec<u8>,
    at_line_start: &mut bool,
) {
    let since = options
        .since
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true));
    for line in records.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let r = parse(line);
        if let Some(since) = &since
            && !r.time.is_empty()
            && !newer_or_equal(r.time, since.as_bytes())
        {
            continue;
        }
        if options.timestamps && *at_line_start && !r.time.is_empty() {
            out.extend_from_slice(r.time);
            out.push(b' ');
        }
        out.extend_from_slice(r.content);
        if r.full {
            out.push(b'\n');
        }
        *at_line_start = r.full;
    }
}

/// Compares two RFC 3339 UTC times as written (`…Z`, nanoseconds): parsed,
/// since the text of fewer fraction digits does not sort.
fn newer_or_equal(time: &[u8], since: &[u8]) -> bool {
    let parse = |b: &[u8]| {
        std::str::from_utf8(b)
            .ok()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
    };
    match (parse(time), parse(since)) {
        (Some(t), Some(s)) => t >= s,
        _ => true,
    }
}

/// Keeps the last `tail_lines` lines and then the last `limit_bytes`.
pub(crate) fn trim(out: &mut Vec<u8>, options: &LogOptions) {
    if let Some(n) = options.tail_lines {
        let body = out.strip_suffix(b"\n").unwrap_or(out);
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
    if let Some(max) = options.limit_bytes
        && out.len() > max
    {
        out.drain(..out.len() - max);
    }
}

/// Reads a run's log (the rotated part first) as the program wrote it,
/// with `options` applied (`follow` aside). A run that has not written yet
/// reads as empty when `missing_ok`.
pub fn read(path: &Path, options: &LogOptions, missing_ok: bool) -> std::io::Result<Vec<u8>> {
    let mut raw = std::fs::read(path.with_extension("log.1")).unwrap_or_default();
    match std::fs::read(path) {
        Ok(bytes) => raw.extend(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && missing_ok => {}
        Err(e) => return Err(e),
    }
    let mut out = Vec::with_capacity(raw.len());
    decode(&raw, options, &mut out, &mut true);
    trim(&mut out, options);
    Ok(out)
}

/// Follows a run's log file as it grows (and rotates): each call to
/// [`Tail::next`] returns the complete records written since the last.
pub(crate) struct Tail {
    path: PathBuf,
    /// Bytes of the current file already returned.
    offset: u64,
    /// Its identity (a rotation makes a new file).
    inode: Option<u64>,
}

impl Tail {
    /// Starts at the beginning of the file as it is now.
    pub(crate) fn from_start(path: &Path) -> Self {
        let meta = std::fs::metadata(path).ok();
        Self {
            path: path.to_path_buf(),
            offset: 0,
            inode: meta.map(|m| std::os::unix::fs::MetadataExt::ino(&m)),
        }
    }

    /// The complete records added since the last call (after a rotation,
    /// the rest of the rotated file first).
    pub(crate) fn next(&mut self) -> Vec<u8> {
        use std::io::{Read, Seek, SeekFrom};
        let mut out = Vec::new();
        let meta = std::fs::metadata(&self.path).ok();
        let inode = meta.as_ref().map(std::os::unix::fs::MetadataExt::ino);
        if inode != self.inode {
            // Rotated: what is left of the old file is now `.log.1`.
            if self.inode.is_some() {
                let rotated = self.path.with_extension("log.1");
                if let Ok(mut f) = File::open(&rotated)
                    && f.seek(SeekFrom::Start(self.offset)).is_ok()
                {
                    let _ = f.read_to_end(&mut out);
                }
            }
            self.inode = inode;
            self.offset = 0;
        }
        if let Ok(mut f) = File::open(&self.path)
            && f.seek(SeekFrom::Start(self.offset)).is_ok()
        {
            let mut fresh = Vec::new();
            let _ = f.read_to_end(&mut fresh);
            // Only complete records; the rest is read next time.
            let end = fresh.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            self.offset += end as u64;
            out.extend_from_slice(&fresh[..end]);
        }
        out
    }
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
        // On disk: CRI records, read back as written (the unterminated
        // last line completed, as containerd does).
        let all = LogOptions::default();
        assert_eq!(read(&path, &all, false).unwrap(), b"hello\nerr\nwor\n");
        let raw = std::fs::read_to_string(&path).unwrap();
        let first = raw.lines().next().unwrap();
        let (time, rest) = first.split_once(' ').unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc3339(time).is_ok(),
            "{first}"
        );
        assert_eq!(rest, "stdout F hello");
        let mut line = [b'x'; 100];
        line[99] = b'\n';
        for _ in 0..100 {
            log.write(Stream::Stdout, &line);
        }
        let on_disk = std::fs::metadata(&path).unwrap().len()
            + std::fs::metadata(path.with_extension("log.1"))
                .unwrap()
                .len();
        assert!(on_disk <= 2048, "log kept {on_disk} bytes");
        assert!(read(&path, &all, false).unwrap().ends_with(&line));
    }

    #[test]
    fn long_lines_become_partial_records_and_read_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        let files = LogFiles::new(8);
        let log =
            ContainerLog::create(&path, 1 << 20, "c", Arc::new(Fanout::new(4)), &files).unwrap();
        let long = vec![b'y'; 40 * 1024];
        log.write(Stream::Stderr, &long);
        log.write(Stream::Stderr, b"\nshort\n");
        let raw = std::fs::read_to_string(&path).unwrap();
        let tags: Vec<&str> = raw
            .lines()
            .map(|l| &l[l.find(' ').unwrap() + 1..][..8])
            .collect();
        assert_eq!(tags, ["stderr P", "stderr P", "stderr F", "stderr F"]);
        let mut expected = long.clone();
        expected.extend_from_slice(b"\nshort\n");
        assert_eq!(
            read(&path, &LogOptions::default(), false).unwrap(),
            expected
        );
        let stamped = LogOptions {
            timestamps: true,
            tail_lines: Some(1),
            ..LogOptions::default()
        };
        let last = String::from_utf8(read(&path, &stamped, false).unwrap()).unwrap();
        let (time, text) = last.split_once(' ').unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(time).is_ok(), "{last}");
        assert_eq!(text, "short\n");
        let future = LogOptions {
            since: Some(chrono::Utc::now() + chrono::Duration::seconds(60)),
            ..LogOptions::default()
        };
        assert!(read(&path, &future, false).unwrap().is_empty());
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
            let path = dir.path().join(format!("{i}.log"));
            let text = read(&path, &LogOptions::default(), false).unwrap();
            assert_eq!(text, format!("line {i}\nmore\n").as_bytes());
        }
        drop(logs);
        assert_eq!(files.live(), 0);
    }

    #[test]
    fn tail_and_limit_keep_the_newest_output() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        std::fs::write(&path, "one\ntwo\nthree\n").unwrap();
        let read = |tail_lines, limit_bytes| {
            let options = LogOptions {
                tail_lines,
                limit_bytes,
                ..LogOptions::default()
            };
            String::from_utf8(read(&path, &options, false).unwrap()).unwrap()
        };
        assert_eq!(read(Some(2), None), "two\nthree\n");
        assert_eq!(read(Some(5), None), "one\ntwo\nthree\n");
        assert_eq!(read(Some(0), None), "");
        assert_eq!(read(None, Some(6)), "three\n");
        let missing = dir.path().join("1.log");
        let all = LogOptions::default();
        assert!(super::read(&missing, &all, true).unwrap().is_empty());
        assert!(super::read(&missing, &all, false).is_err());
    }
}
