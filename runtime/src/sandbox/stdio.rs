//! A container's standard streams as files the caller names — the FIFOs
//! containerd makes for a task and its execs — instead of its log.

use std::path::{Path, PathBuf};

use tokio::io::{AsyncRead, AsyncWrite};

use crate::engine::GuestStdio;
use crate::error::RuntimeError;

/// Where a guest's standard streams go (CRI / containerd: the task's
/// `stdin`, `stdout` and `stderr` paths). A FIFO or a regular file; a
/// stream left `None` keeps its default (no stdin; output into the
/// container's log).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StdioPaths {
    /// Read as the guest's stdin.
    pub stdin: Option<PathBuf>,
    /// The guest's stdout.
    pub stdout: Option<PathBuf>,
    /// The guest's stderr (and the runtime's own notes, such as a trap).
    pub stderr: Option<PathBuf>,
}

impl StdioPaths {
    /// Whether every stream keeps its default.
    pub fn is_empty(&self) -> bool {
        self.stdin.is_none() && self.stdout.is_none() && self.stderr.is_none()
    }

    /// Opens the streams without ever blocking: a FIFO through tokio's
    /// pipe support (a writer end is opened read-write, so that opening
    /// never waits for a reader and a reader that comes later still gets
    /// everything), a regular file as a file (output appended). Must be
    /// called within a tokio runtime.
    pub(crate) fn open(&self) -> Result<GuestStdio, RuntimeError> {
        Ok(GuestStdio {
            stdin: self.stdin.as_deref().map(open_reader).transpose()?,
            stdout: self.stdout.as_deref().map(open_writer).transpose()?,
            stderr: self.stderr.as_deref().map(open_writer).transpose()?,
        })
    }
}

/// A guest's standard streams as the caller's own byte streams (an exec
/// served over a network connection: `kubectl exec`). Output is written
/// as the guest writes it; the guest waits when a stream does not take it.
pub struct ExecStreams {
    /// Read as the guest's stdin (`None`: an empty stdin).
    pub stdin: Option<Box<dyn AsyncRead + Send + Sync + Unpin>>,
    /// The guest's stdout.
    pub stdout: Box<dyn AsyncWrite + Send + Sync + Unpin>,
    /// The guest's stderr (and the runtime's own notes, such as a trap).
    pub stderr: Box<dyn AsyncWrite + Send + Sync + Unpin>,
}

impl ExecStreams {
    pub(crate) fn into_guest(self) -> GuestStdio {
        GuestStdio {
            stdin: self.stdin,
            stdout: Some(self.stdout),
            stderr: Some(self.stderr),
        }
    }
}

fn io_err(path: &Path, source: std::io::Error) -> RuntimeError {
    RuntimeError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn is_fifo(path: &Path) -> Result<bool, RuntimeError> {
    use std::os::unix::fs::FileTypeExt;
    Ok(std::fs::metadata(path)
        .map_err(|e| io_err(path, e))?
        .file_type()
        .is_fifo())
}

fn open_reader(path: &Path) -> Result<Box<dyn AsyncRead + Send + Sync + Unpin>, RuntimeError> {
    if is_fifo(path)? {
        let rx = tokio::net::unix::pipe::OpenOptions::new()
            .open_receiver(path)
            .map_err(|e| io_err(path, e))?;
        return Ok(Box::new(rx));
    }
    let file = std::fs::File::open(path).map_err(|e| io_err(path, e))?;
    Ok(Box::new(tokio::fs::File::from_std(file)))
}

fn open_writer(path: &Path) -> Result<Box<dyn AsyncWrite + Send + Sync + Unpin>, RuntimeError> {
    if is_fifo(path)? {
        let tx = tokio::net::unix::pipe::OpenOptions::new()
            .read_write(true)
            .open_sender(path)
            .map_err(|e| io_err(path, e))?;
        return Ok(Box::new(tx));
    }
    let file = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(|e| io_err(path, e))?;
    Ok(Box::new(tokio::fs::File::from_std(file)))
}
