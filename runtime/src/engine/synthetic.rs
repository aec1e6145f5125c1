//! Files the runtime makes up for every guest: the devices of `/dev` and
//! the pod's `/etc/hostname` and `/etc/hosts`, as a container managed by a
//! kubelet sees them.
//!
//! | file | read | write | type |
//! |---|---|---|---|
//! | `/dev/null` | end of file | accepted, discarded | character device |
//! | `/dev/zero` | zeros | accepted, discarded | character device |
//! | `/dev/full` | zeros | fails with `ENOSPC` | character device |
//! | `/dev/random`, `/dev/urandom` | random bytes (the generator of WASI random) | accepted, discarded | character device |
//! | `/dev/termination-log` | what was written | kept (the last 4 KiB) for the container's termination message | regular file |
//! | `/etc/hostname` | the pod's hostname | refused | regular file |
//! | `/etc/hosts` | the kubelet's managed hosts file | refused | regular file |
//!
//! No host device node is ever opened and nothing is written per pod:
//! `/dev` and `/etc` are read-only preopens of two folders of empty
//! placeholder files made once per state folder
//! (`<state>/synthetic/{dev,etc}/`). A guest that opens a placeholder gets
//! a descriptor the runtime recognises (by the placeholder's inode when it
//! is opened, for writing too when it is a device), and its reads, writes
//! and stats are answered here:
//! - wasip2: the `wasi:filesystem/types` methods that read, write or stat
//!   a descriptor are shadowed; a recognised descriptor shares the node's
//!   one handle on its placeholder, which is how it is known afterwards.
//! - wasip1: the `wasi_snapshot_preview1` calls on descriptors are
//!   shadowed and keep a table of the guest's synthetic descriptors; any
//!   other descriptor goes on to wasmtime-wasi's own implementation,
//!   unchanged.

use std::collections::HashMap;
use std::net::IpAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use rand::Rng;
use wasmtime::component::Resource;
use wasmtime::{AsContextMut, Caller, Extern};
use wasmtime_wasi::FsPerms;
use wasmtime_wasi::filesystem::{
    Descriptor as FsDescriptor, File as FsFile, OpenMode, WasiFilesystemCtx, WasiFilesystemCtxView,
    WasiFilesystemView,
};
use wasmtime_wasi::p1::types::{Errno, Filetype};
use wasmtime_wasi::p1::wasi_snapshot_preview1::{self as wasip1, WasiSnapshotPreview1};
use wasmtime_wasi::p2::bindings::filesystem::types::{
    Descriptor, DescriptorFlags, DescriptorStat, DescriptorType, ErrorCode, HostDescriptor,
    OpenFlags, PathFlags,
};
use wasmtime_wasi::p2::pipe::{ClosedInputStream, MemoryInputPipe, SinkOutputStream};
use wasmtime_wasi::p2::{
    DynInputStream, DynOutputStream, InputStream, OutputStream, Pollable, StreamError, StreamResult,
};

use super::{P1State, P2State};
use crate::error::RuntimeError;

/// A synthetic file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Null,
    Zero,
    Full,
    Random,
    Urandom,
    TerminationLog,
    Hostname,
    Hosts,
}

/// Each kind, its folder and its name.
const KINDS: [(Kind, &str, &str); 8] = [
    (Kind::Null, "dev", "null"),
    (Kind::Zero, "dev", "zero"),
    (Kind::Full, "dev", "full"),
    (Kind::Random, "dev", "random"),
    (Kind::Urandom, "dev", "urandom"),
    (Kind::TerminationLog, "dev", "termination-log"),
    (Kind::Hostname, "etc", "hostname"),
    (Kind::Hosts, "etc", "hosts"),
];

/// Most bytes one read of `/dev/zero` or `/dev/urandom` returns (a host
/// call cannot be interrupted: its work is bounded).
const MAX_READ: usize = 1 << 20;

impl Kind {
    fn is_device(self) -> bool {
        !matches!(self, Kind::Hostname | Kind::Hosts | Kind::TerminationLog)
    }

    /// Whether a guest may open it for writing.
    fn writable(self) -> bool {
        self.is_device() || self == Kind::TerminationLog
    }

    /// Fills `buf` with what a read at `pos` returns; how many bytes.
    fn fill(self, pod: &PodFiles, pos: u64, buf: &mut [u8]) -> usize {
        match self {
            Kind::Null => 0,
            Kind::Zero | Kind::Full => {
                buf.fill(0);
                buf.len()
            }
            Kind::Random | Kind::Urandom => {
                rand::rng().fill_bytes(buf);
                buf.len()
            }
            Kind::TerminationLog => pod.termination().read_at(pos, buf),
            Kind::Hostname | Kind::Hosts => {
                let content = pod.content(self);
                let start = usize::try_from(pos)
                    .unwrap_or(usize::MAX)
                    .min(content.len());
                let n = buf.len().min(content.len() - start);
                buf[..n].copy_from_slice(&content[start..start + n]);
                n
            }
        }
    }

    /// Size as stat reports it.
    fn size(self, pod: &PodFiles) -> u64 {
        match self {
            Kind::Hostname | Kind::Hosts => pod.content(self).len() as u64,
            Kind::TerminationLog => pod.termination().len(),
            _ => 0,
        }
    }

    /// A write of `bytes` at `pos`: how many bytes were taken, or `None`
    /// when the file refuses writes (`/dev/full`: no space).
    fn write(self, pod: &PodFiles, pos: u64, bytes: &[u8]) -> Option<usize> {
        match self {
            Kind::Full => None,
            Kind::TerminationLog => {
                pod.termination().write_at(pos, bytes);
                Some(bytes.len())
            }
            _ => Some(bytes.len()),
        }
    }
}

/// Most bytes of a termination message (the kubelet's limit): the file
/// keeps its last 4 KiB.
pub(crate) const TERMINATION_MESSAGE_MAX: usize = 4096;

/// A container's `/dev/termination-log`: its length, and its last
/// [`TERMINATION_MESSAGE_MAX`] bytes (what the kubelet would read of it).
/// Shared by the container's run and its execs.
#[derive(Debug, Default)]
pub(crate) struct TerminationLog(std::sync::Mutex<Tail>);

#[derive(Debug, Default)]
struct Tail {
    /// The file's length.
    len: u64,
    /// The bytes from `len - tail.len()` to `len`.
    tail: Vec<u8>,
}

impl Tail {
    fn start(&self) -> u64 {
        self.len - self.tail.len() as u64
    }

    /// The file with length `len`, the kept window moved to its end.
    fn resize(&mut self, len: u64) {
        let start = len.saturating_sub(TERMINATION_MESSAGE_MAX as u64);
        let mut tail = vec![0; (len - start) as usize];
        let old_start = self.start();
        for (i, b) in tail.iter_mut().enumerate() {
            let at = start + i as u64;
            if at >= old_start && at < self.len {
                *b = self.tail[(at - old_start) as usize];
            }
        }
        self.len = len;
        self.tail = tail;
    }
}

impl TerminationLog {
    pub(crate) fn new() -> Arc<Self> {
        Arc::default()
    }

    fn len(&self) -> u64 {
        crate::sync::lock(&self.0).len
    }

    fn write_at(&self, pos: u64, bytes: &[u8]) {
        let mut t = crate::sync::lock(&self.0);
        let end = pos.saturating_add(bytes.len() as u64);
        if end > t.len {
            t.resize(end);
        }
        // Only what falls in the kept window is stored (any offset a guest
        // gives is safe: nothing here overflows).
        let start = t.start();
        let from = pos.max(start);
        let to = end.min(t.len);
        if from < to {
            let src = &bytes[(from - pos) as usize..(to - pos) as usize];
            let dst = (from - start) as usize;
            t.tail[dst..dst + src.len()].copy_from_slice(src);
        }
    }

    fn set_len(&self, len: u64) {
        crate::sync::lock(&self.0).resize(len);
    }

    /// Reads at `pos` (bytes before the kept window read as zeros).
    fn read_at(&self, pos: u64, buf: &mut [u8]) -> usize {
        let t = crate::sync::lock(&self.0);
        let start = t.start();
        let n = usize::try_from(t.len.saturating_sub(pos))
            .unwrap_or(usize::MAX)
            .min(buf.len());
        for (i, b) in buf[..n].iter_mut().enumerate() {
            let at = pos + i as u64;
            *b = if at >= start {
                t.tail[(at - start) as usize]
            } else {
                0
            };
        }
        n
    }

    /// The last [`TERMINATION_MESSAGE_MAX`] bytes written.
    pub(crate) fn message(&self) -> Vec<u8> {
        crate::sync::lock(&self.0).tail.clone()
    }
}

/// Whether a path's last component names a placeholder (a cheap test
/// before the inode is looked at).
fn candidate(path: &[u8]) -> bool {
    let name = path.rsplit(|b| *b == b'/').next().unwrap_or(path);
    KINDS.iter().any(|(_, _, n)| n.as_bytes() == name)
}

/// The placeholder files of a state folder, and one handle on each.
#[derive(Debug)]
pub(crate) struct Placeholders {
    dir: PathBuf,
    /// (device, inode) of each kind's placeholder, in [`KINDS`] order.
    ids: [(u64, u64); KINDS.len()],
    /// Each placeholder's inode as wasip1 reports it (wasmtime-wasi's
    /// metadata hash of the file, not the host's inode).
    p1_ids: [u64; KINDS.len()],
    /// The two folders' (device, inode).
    dirs: [(u64, u64); 2],
    /// One read-only handle on each placeholder, shared by every wasip2
    /// descriptor of that kind.
    files: Vec<Arc<std::fs::File>>,
}

impl Placeholders {
    /// Makes (or finds) `<state>/synthetic/{dev,etc}/` and their empty files.
    pub(crate) fn create(state_dir: &Path) -> Result<Arc<Self>, RuntimeError> {
        let dir = state_dir.join("synthetic");
        let io = |path: PathBuf| move |e| RuntimeError::Io { path, source: e };
        let mut ids = [(0, 0); KINDS.len()];
        let mut p1_ids = [0; KINDS.len()];
        let mut files = Vec::with_capacity(KINDS.len());
        for (i, (_, folder, name)) in KINDS.iter().enumerate() {
            let folder = dir.join(folder);
            std::fs::create_dir_all(&folder).map_err(io(folder.clone()))?;
            let path = folder.join(name);
            // Created if missing, never truncated: runtimes may share it.
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(io(path.clone()))?;
            let file = std::fs::File::open(&path).map_err(io(path.clone()))?;
            let meta = file.metadata().map_err(io(path.clone()))?;
            if meta.len() != 0 || !meta.is_file() {
                return Err(RuntimeError::Io {
                    path,
                    source: std::io::Error::other("a placeholder must be an empty file"),
                });
            }
            ids[i] = (meta.dev(), meta.ino());
            p1_ids[i] = p1_inode(&file).ok_or_else(|| RuntimeError::Io {
                path: path.clone(),
                source: std::io::Error::other("wasmtime-wasi cannot identify the file"),
            })?;
            files.push(Arc::new(file));
        }
        let mut dirs = [(0, 0); 2];
        for (i, folder) in ["dev", "etc"].iter().enumerate() {
            let meta = std::fs::metadata(dir.join(folder)).map_err(io(dir.join(folder)))?;
            dirs[i] = (meta.dev(), meta.ino());
        }
        Ok(Arc::new(Self {
            dir,
            ids,
            p1_ids,
            dirs,
            files,
        }))
    }

    /// The folder behind a guest's `/dev`.
    pub(crate) fn dev_dir(&self) -> PathBuf {
        self.dir.join("dev")
    }

    /// The folder behind a guest's `/etc`.
    pub(crate) fn etc_dir(&self) -> PathBuf {
        self.dir.join("etc")
    }

    fn by_id(&self, dev: u64, ino: u64) -> Option<Kind> {
        self.ids
            .iter()
            .position(|id| *id == (dev, ino))
            .map(|i| KINDS[i].0)
    }

    fn by_p1_inode(&self, ino: u64) -> Option<Kind> {
        self.p1_ids
            .iter()
            .position(|id| *id == ino)
            .map(|i| KINDS[i].0)
    }

    fn by_handle(&self, file: &Arc<std::fs::File>) -> Option<Kind> {
        self.files
            .iter()
            .position(|f| Arc::ptr_eq(f, file))
            .map(|i| KINDS[i].0)
    }

    fn handle(&self, kind: Kind) -> Arc<std::fs::File> {
        let i = KINDS.iter().position(|(k, _, _)| *k == kind).unwrap_or(0);
        self.files[i].clone()
    }

    /// The kind of `name` in a folder with this (device, inode), if that
    /// folder is `/dev` or `/etc`.
    fn in_dir(&self, dir: (u64, u64), name: &str) -> Option<Kind> {
        let folder = ["dev", "etc"][self.dirs.iter().position(|d| *d == dir)?];
        KINDS
            .iter()
            .find(|(_, f, n)| *f == folder && *n == name)
            .map(|(k, _, _)| *k)
    }
}

/// The inode wasmtime-wasi's wasip1 reports for `file`: its metadata hash,
/// asked of wasmtime-wasi itself (which answers at once for a descriptor
/// allowed to block the current thread).
fn p1_inode(file: &std::fs::File) -> Option<u64> {
    use std::task::{Context, Poll, Waker};
    let mut table = wasmtime::component::ResourceTable::new();
    let mut ctx = WasiFilesystemCtx::default();
    let file = FsFile::new(
        file.try_clone().ok()?,
        FsPerms::ReadOnly,
        OpenMode::READ,
        true,
    );
    let fd = table.push(FsDescriptor::File(file)).ok()?;
    let mut view = WasiFilesystemCtxView {
        ctx: &mut ctx,
        table: &mut table,
    };
    let hash = HostDescriptor::metadata_hash(&mut view, fd);
    let mut hash = std::pin::pin!(hash);
    match hash.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(Ok(h)) => Some(h.lower),
        _ => None,
    }
}

/// What a pod's synthetic files hold (and, for one container's guests,
/// its termination log).
#[derive(Debug)]
pub(crate) struct PodFiles {
    placeholders: Arc<Placeholders>,
    hostname: Vec<u8>,
    hosts: Vec<u8>,
    termination: Arc<TerminationLog>,
}

impl PodFiles {
    /// The files of a pod with this hostname and IP.
    pub(crate) fn new(placeholders: Arc<Placeholders>, hostname: &str, ip: IpAddr) -> Arc<Self> {
        Arc::new(Self {
            placeholders,
            hostname: format!("{hostname}\n").into_bytes(),
            hosts: hosts_file(hostname, ip).into_bytes(),
            termination: TerminationLog::new(),
        })
    }

    /// The files of one container's guests: the pod's, with this
    /// container's `/dev/termination-log`.
    pub(crate) fn with_termination_log(&self, log: Arc<TerminationLog>) -> Arc<Self> {
        Arc::new(Self {
            placeholders: self.placeholders.clone(),
            hostname: self.hostname.clone(),
            hosts: self.hosts.clone(),
            termination: log,
        })
    }

    fn termination(&self) -> &TerminationLog {
        &self.termination
    }

    fn content(&self, kind: Kind) -> &[u8] {
        match kind {
            Kind::Hostname => &self.hostname,
            Kind::Hosts => &self.hosts,
            _ => &[],
        }
    }
}

/// `/etc/hosts` as the kubelet writes it for a pod on the pod network.
fn hosts_file(hostname: &str, ip: IpAddr) -> String {
    format!(
        "# Kubernetes-managed hosts file.\n\
         127.0.0.1\tlocalhost\n\
         ::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\n\
         fe00::0\tip6-mcastprefix\n\
         fe00::1\tip6-allnodes\n\
         fe00::2\tip6-allrouters\n\
         {ip}\t{hostname}\n"
    )
}

// ---------------------------------------------------------------- wasip2

/// A wasip2 descriptor's kind, if it is synthetic, and whether it was
/// opened for writing.
fn p2_kind(state: &mut P2State, fd: &Resource<Descriptor>) -> Option<(Kind, bool, Arc<PodFiles>)> {
    let pod = state.synthetic.clone()?;
    match state.table.get(fd) {
        Ok(FsDescriptor::File(f)) => pod
            .placeholders
            .by_handle(&f.file)
            .map(|k| (k, f.open_mode.contains(OpenMode::WRITE), pod.clone())),
        _ => None,
    }
}

/// wasmtime-wasi's `open-at`, which also recognises placeholders: one
/// opened becomes that kind's shared handle; a device opened for writing
/// (which the read-only `/dev` refuses) is opened for reading, then
/// marked writable.
pub(super) async fn p2_open_at(
    state: &mut P2State,
    fd: Resource<Descriptor>,
    path_flags: PathFlags,
    path: String,
    open_flags: OpenFlags,
    flags: DescriptorFlags,
) -> wasmtime::Result<Result<Resource<Descriptor>, ErrorCode>> {
    let check = state.synthetic.is_some() && candidate(path.as_bytes());
    let parent = Resource::<Descriptor>::new_borrow(fd.rep());
    let first = state
        .filesystem()
        .open_at(fd, path_flags, path.clone(), open_flags, flags)
        .await;
    if !check {
        return match first {
            Ok(d) => Ok(Ok(d)),
            Err(e) => Ok(Err(e.downcast()?)),
        };
    }
    let wants_write = flags.contains(DescriptorFlags::WRITE)
        || open_flags.intersects(OpenFlags::CREATE | OpenFlags::TRUNCATE);
    let (opened, retried) = match first {
        Ok(d) => (d, false),
        Err(e) => {
            let code = e.downcast()?;
            let exclusive = open_flags.contains(OpenFlags::CREATE | OpenFlags::EXCLUSIVE);
            if !wants_write || exclusive || code != ErrorCode::NotPermitted {
                return Ok(Err(code));
            }
            let again = state
                .filesystem()
                .open_at(
                    parent,
                    path_flags,
                    path,
                    open_flags & !(OpenFlags::CREATE | OpenFlags::TRUNCATE),
                    flags & !DescriptorFlags::WRITE,
                )
                .await;
            match again {
                Ok(d) => (d, true),
                Err(_) => return Ok(Err(code)),
            }
        }
    };
    let Some(pod) = state.synthetic.clone() else {
        return Ok(Ok(opened));
    };
    let kind = match state.table.get(&opened) {
        Ok(FsDescriptor::File(f)) => f
            .file
            .metadata()
            .ok()
            .and_then(|m| pod.placeholders.by_id(m.dev(), m.ino())),
        _ => None,
    };
    match kind {
        Some(kind) if !retried || kind.writable() => {
            if let Ok(FsDescriptor::File(f)) = state.table.get_mut(&opened) {
                f.file = pod.placeholders.handle(kind);
                if wants_write {
                    f.open_mode |= OpenMode::WRITE;
                }
            }
            if kind == Kind::TerminationLog && open_flags.contains(OpenFlags::TRUNCATE) {
                pod.termination().set_len(0);
            }
            Ok(Ok(opened))
        }
        _ if retried => {
            let _ = state.table.delete(opened);
            Ok(Err(ErrorCode::NotPermitted))
        }
        _ => Ok(Ok(opened)),
    }
}

/// An endless stream of zeros or random bytes.
struct Endless(Kind);

impl InputStream for Endless {
    fn read(&mut self, size: usize) -> StreamResult<Bytes> {
        let mut buf = vec![0; size.min(MAX_READ)];
        if self.0 != Kind::Zero && self.0 != Kind::Full {
            rand::rng().fill_bytes(&mut buf);
        }
        Ok(buf.into())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for Endless {
    async fn ready(&mut self) {}
}

/// `/dev/full` for writing: no space left.
struct NoSpace;

fn no_space() -> StreamError {
    StreamError::LastOperationFailed(wasmtime::Error::new(std::io::Error::from_raw_os_error(
        libc::ENOSPC,
    )))
}

impl OutputStream for NoSpace {
    fn write(&mut self, _bytes: Bytes) -> StreamResult<()> {
        Err(no_space())
    }
    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }
    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(MAX_READ)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for NoSpace {
    async fn ready(&mut self) {}
}

fn input_stream(kind: Kind, pod: &PodFiles, offset: u64) -> DynInputStream {
    match kind {
        Kind::Null => Box::new(ClosedInputStream),
        Kind::Zero | Kind::Full | Kind::Random | Kind::Urandom => Box::new(Endless(kind)),
        Kind::Hostname | Kind::Hosts => {
            let content = pod.content(kind);
            let start = usize::try_from(offset)
                .unwrap_or(usize::MAX)
                .min(content.len());
            Box::new(MemoryInputPipe::new(content[start..].to_vec()))
        }
        Kind::TerminationLog => {
            let mut buf = vec![0; MAX_READ];
            let n = kind.fill(pod, offset, &mut buf);
            buf.truncate(n);
            Box::new(MemoryInputPipe::new(buf))
        }
    }
}

/// A stream writing at `offset`, or appending when `None`.
fn output_stream(kind: Kind, pod: &Arc<PodFiles>, offset: Option<u64>) -> DynOutputStream {
    match kind {
        Kind::Full => Box::new(NoSpace),
        Kind::TerminationLog => Box::new(TerminationStream {
            pod: pod.clone(),
            offset,
        }),
        _ => Box::new(SinkOutputStream),
    }
}

/// A stream into a termination log.
struct TerminationStream {
    pod: Arc<PodFiles>,
    /// Where the next write goes; `None`: the end.
    offset: Option<u64>,
}

impl OutputStream for TerminationStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        let log = self.pod.termination();
        let at = self.offset.unwrap_or_else(|| log.len());
        log.write_at(at, &bytes);
        if let Some(o) = &mut self.offset {
            *o = at.saturating_add(bytes.len() as u64);
        }
        Ok(())
    }
    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }
    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(MAX_READ)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for TerminationStream {
    async fn ready(&mut self) {}
}

/// The stat of a synthetic file, from its placeholder's.
fn patch_stat(kind: Kind, pod: &PodFiles, mut stat: DescriptorStat) -> DescriptorStat {
    if kind.is_device() {
        stat.type_ = DescriptorType::CharacterDevice;
    }
    stat.size = kind.size(pod);
    stat
}

type Fs<T> = wasmtime::Result<(Result<T, ErrorCode>,)>;

fn fs<T>(r: wasmtime_wasi::p2::FsResult<T>) -> Fs<T> {
    match r {
        Ok(v) => Ok((Ok(v),)),
        Err(e) => Ok((Err(e.downcast()?),)),
    }
}

/// Shadows the `wasi:filesystem/types` methods that read, write or stat
/// a descriptor (`open-at` is shadowed by [`super::files`], which calls
/// [`p2_open_at`]).
pub(crate) fn add_p2(linker: &mut wasmtime::component::Linker<P2State>) -> wasmtime::Result<()> {
    let mut i = linker.instance("wasi:filesystem/types@0.2.12")?;
    i.func_wrap_async(
        "[method]descriptor.read-via-stream",
        |mut store, (fd, offset): (Resource<Descriptor>, u64)| {
            Box::new(async move {
                let state = store.data_mut();
                match p2_kind(state, &fd) {
                    Some((kind, _, pod)) => {
                        let s = state.table.push(input_stream(kind, &pod, offset))?;
                        Ok((Ok(s),))
                    }
                    None => fs(state.filesystem().read_via_stream(fd, offset)),
                }
            })
        },
    )?;
    i.func_wrap_async(
        "[method]descriptor.write-via-stream",
        |mut store, (fd, offset): (Resource<Descriptor>, u64)| {
            Box::new(async move {
                let state = store.data_mut();
                match p2_kind(state, &fd) {
                    Some((kind, true, pod)) => Ok((Ok(state.table.push(output_stream(
                        kind,
                        &pod,
                        Some(offset),
                    ))?),)),
                    Some(_) => Ok((Err(ErrorCode::BadDescriptor),)),
                    None => fs(state.filesystem().write_via_stream(fd, offset)),
                }
            })
        },
    )?;
    i.func_wrap_async(
        "[method]descriptor.append-via-stream",
        |mut store, (fd,): (Resource<Descriptor>,)| {
            Box::new(async move {
                let state = store.data_mut();
                match p2_kind(state, &fd) {
                    Some((kind, true, pod)) => {
                        Ok((Ok(state.table.push(output_stream(kind, &pod, None))?),))
                    }
                    Some(_) => Ok((Err(ErrorCode::BadDescriptor),)),
                    None => fs(state.filesystem().append_via_stream(fd)),
                }
            })
        },
    )?;
    i.func_wrap_async(
        "[method]descriptor.read",
        |mut store, (fd, len, offset): (Resource<Descriptor>, u64, u64)| {
            Box::new(async move {
                let state = store.data_mut();
                match p2_kind(state, &fd) {
                    Some((kind, _, pod)) => {
                        let want = usize::try_from(len).unwrap_or(usize::MAX).min(MAX_READ);
                        let mut buf = vec![0; want];
                        let n = kind.fill(&pod, offset, &mut buf);
                        buf.truncate(n);
                        let eof = n == 0 && want > 0;
                        Ok((Ok((buf, eof)),))
                    }
                    None => fs(state.filesystem().read(fd, len, offset).await),
                }
            })
        },
    )?;
    i.func_wrap_async(
        "[method]descriptor.write",
        |mut store, (fd, buf, offset): (Resource<Descriptor>, Vec<u8>, u64)| {
            Box::new(async move {
                let state = store.data_mut();
                match p2_kind(state, &fd) {
                    Some((kind, true, pod)) => match kind.write(&pod, offset, &buf) {
                        Some(n) => Ok((Ok(n as u64),)),
                        None => Ok((Err(ErrorCode::InsufficientSpace),)),
                    },
                    Some(_) => Ok((Err(ErrorCode::BadDescriptor),)),
                    None => fs(state.filesystem().write(fd, buf, offset).await),
                }
            })
        },
    )?;
    i.func_wrap_async(
        "[method]descriptor.stat",
        |mut store, (fd,): (Resource<Descriptor>,)| {
            Box::new(async move {
                let state = store.data_mut();
                let kind = p2_kind(state, &fd);
                let stat = state.filesystem().stat(fd).await;
                match (kind, stat) {
                    (Some((kind, _, pod)), Ok(stat)) => Ok((Ok(patch_stat(kind, &pod, stat)),)),
                    (_, stat) => fs(stat),
                }
            })
        },
    )?;
    i.func_wrap_async(
        "[method]descriptor.stat-at",
        |mut store, (fd, flags, path): (Resource<Descriptor>, PathFlags, String)| {
            Box::new(async move {
                let state = store.data_mut();
                let kind = p2_kind_at(state, &fd, &path);
                let stat = state.filesystem().stat_at(fd, flags, path).await;
                match (kind, stat) {
                    (Some((kind, pod)), Ok(stat)) => Ok((Ok(patch_stat(kind, &pod, stat)),)),
                    (_, stat) => fs(stat),
                }
            })
        },
    )?;
    i.func_wrap_async(
        "[method]descriptor.get-type",
        |mut store, (fd,): (Resource<Descriptor>,)| {
            Box::new(async move {
                let state = store.data_mut();
                match p2_kind(state, &fd) {
                    Some((kind, _, _)) if kind.is_device() => {
                        Ok((Ok(DescriptorType::CharacterDevice),))
                    }
                    _ => fs(state.filesystem().get_type(fd).await),
                }
            })
        },
    )?;
    i.func_wrap_async(
        "[method]descriptor.set-size",
        |mut store, (fd, size): (Resource<Descriptor>, u64)| {
            Box::new(async move {
                let state = store.data_mut();
                match p2_kind(state, &fd) {
                    // Truncating a device (`> /dev/null`) does nothing.
                    Some((kind, true, _)) if kind.is_device() => Ok((Ok(()),)),
                    Some((Kind::TerminationLog, true, pod)) => {
                        pod.termination().set_len(size);
                        Ok((Ok(()),))
                    }
                    Some(_) => Ok((Err(ErrorCode::BadDescriptor),)),
                    None => fs(state.filesystem().set_size(fd, size).await),
                }
            })
        },
    )?;
    Ok(())
}

/// The kind of `path` under the directory `fd`, when that is `/dev` or
/// `/etc` and `path` one of their names.
fn p2_kind_at(
    state: &mut P2State,
    fd: &Resource<Descriptor>,
    path: &str,
) -> Option<(Kind, Arc<PodFiles>)> {
    let pod = state.synthetic.clone()?;
    if !candidate(path.as_bytes()) || path.contains('/') {
        return None;
    }
    match state.table.get(fd) {
        Ok(FsDescriptor::Dir(d)) => {
            let m = d.dir.metadata().ok()?;
            let kind = pod.placeholders.in_dir((m.dev(), m.ino()), path)?;
            Some((kind, pod))
        }
        _ => None,
    }
}

// ---------------------------------------------------------------- wasip1

/// One wasip1 guest's synthetic descriptors.
#[derive(Default)]
pub(crate) struct P1Files {
    pod: Option<Arc<PodFiles>>,
    open: HashMap<u32, P1Open>,
}

#[derive(Debug, Clone, Copy)]
struct P1Open {
    kind: Kind,
    /// The file position (devices have none that moves).
    pos: u64,
    write: bool,
    /// Writes go to the end (`O_APPEND`).
    append: bool,
}

impl P1Files {
    pub(crate) fn new(pod: Option<Arc<PodFiles>>) -> Self {
        Self {
            pod,
            open: HashMap::new(),
        }
    }

    fn get(&self, fd: i32) -> Option<(P1Open, Arc<PodFiles>)> {
        if self.open.is_empty() {
            return None;
        }
        let open = *self.open.get(&(fd as u32))?;
        Some((open, self.pod.clone()?))
    }
}

/// wasmtime-wasi's own implementation of a wasip1 call, as its linker
/// calls it.
macro_rules! original {
    ($caller:ident, $func:ident ( $($arg:expr),* $(,)? )) => {
        original!(@call $caller, $func, [.await], $($arg),*)
    };
    ($caller:ident, sync $func:ident ( $($arg:expr),* $(,)? )) => {
        original!(@call $caller, $func, [], $($arg),*)
    };
    (@call $caller:ident, $func:ident, [$($await:tt)*], $($arg:expr),*) => {{
        let fuel = $caller.as_context_mut().hostcall_fuel();
        match $caller.get_export("memory") {
            Some(Extern::Memory(m)) => {
                let (mem, state) = m.data_and_store_mut(&mut $caller);
                state.files.before_p1_call(&mut state.wasi);
                let ctx = &mut state.wasi;
                WasiSnapshotPreview1::set_hostcall_fuel(ctx, fuel);
                let mut mem = wiggle::GuestMemory::Unshared(mem);
                wasip1::$func(ctx, &mut mem, $($arg),*) $($await)*
            }
            _ => Err(wasmtime::format_err!("missing required memory export")),
        }
    }};
}

fn errno(e: Errno) -> i32 {
    e as i32
}

/// The guest's memory.
fn memory<'a>(caller: &'a mut Caller<'_, P1State>) -> Result<&'a mut [u8], i32> {
    match caller.get_export("memory") {
        Some(Extern::Memory(m)) => Ok(m.data_mut(caller)),
        _ => Err(errno(Errno::Fault)),
    }
}

fn range(mem: &[u8], ptr: i32, len: usize) -> Result<std::ops::Range<usize>, i32> {
    let start = ptr as u32 as usize;
    let end = start.checked_add(len).ok_or(errno(Errno::Fault))?;
    if end > mem.len() {
        return Err(errno(Errno::Fault));
    }
    Ok(start..end)
}

fn read_u32(mem: &[u8], ptr: i32) -> Result<u32, i32> {
    let r = range(mem, ptr, 4)?;
    Ok(u32::from_le_bytes(mem[r].try_into().unwrap_or_default()))
}

fn write_bytes(mem: &mut [u8], ptr: i32, bytes: &[u8]) -> Result<(), i32> {
    let r = range(mem, ptr, bytes.len())?;
    mem[r].copy_from_slice(bytes);
    Ok(())
}

/// The buffers of an iovec array (`{ptr: u32, len: u32}` each).
fn iovecs(mem: &[u8], ptr: i32, count: i32) -> Result<Vec<std::ops::Range<usize>>, i32> {
    let count = count as u32 as usize;
    let table = range(mem, ptr, count.checked_mul(8).ok_or(errno(Errno::Fault))?)?;
    let mut out = Vec::with_capacity(count);
    for chunk in mem[table].chunks_exact(8) {
        let p = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        let l = u32::from_le_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]);
        out.push(range(mem, p as i32, l as usize)?);
    }
    Ok(out)
}

/// A read of a synthetic descriptor at `pos` into the buffers of `iovs`;
/// the bytes read are stored at `nread`.
fn p1_read(
    caller: &mut Caller<'_, P1State>,
    open: P1Open,
    pod: &PodFiles,
    pos: u64,
    iovs: i32,
    count: i32,
    nread: i32,
) -> Result<u64, i32> {
    let mem = memory(caller)?;
    let mut total = 0usize;
    for buf in iovecs(mem, iovs, count)? {
        let room = MAX_READ - total;
        let buf = buf.start..buf.end.min(buf.start + room);
        let want = buf.len();
        let n = open.kind.fill(pod, pos + total as u64, &mut mem[buf]);
        total += n;
        if n < want || total >= MAX_READ {
            break;
        }
    }
    write_bytes(mem, nread, &(total as u32).to_le_bytes())?;
    Ok(total as u64)
}

/// A write to a synthetic descriptor at `pos` (`None`: the end): its
/// length, stored at `nwritten` and returned.
fn p1_write(
    caller: &mut Caller<'_, P1State>,
    open: P1Open,
    pod: &PodFiles,
    pos: Option<u64>,
    iovs: i32,
    count: i32,
    nwritten: i32,
) -> Result<u64, i32> {
    if !open.write {
        return Err(errno(Errno::Badf));
    }
    let mem = memory(caller)?;
    let mut at = pos.unwrap_or_else(|| open.kind.size(pod));
    let mut total = 0u64;
    for buf in iovecs(mem, iovs, count)? {
        let n = open
            .kind
            .write(pod, at, &mem[buf])
            .ok_or(errno(Errno::Nospc))?;
        at = at.saturating_add(n as u64);
        total += n as u64;
    }
    let total32 = u32::try_from(total).map_err(|_| errno(Errno::Inval))?;
    write_bytes(mem, nwritten, &total32.to_le_bytes())?;
    Ok(total)
}

/// Rights of a descriptor that may be written.
const FD_WRITE: u64 = 1 << 6;
/// Offsets in `filestat` (wasip1's layout).
const FILESTAT_INO: i32 = 8;
const FILESTAT_FILETYPE: i32 = 16;
const FILESTAT_SIZE: i32 = 32;
/// Offsets in `fdstat`.
const FDSTAT_FILETYPE: i32 = 0;
const FDSTAT_RIGHTS: i32 = 8;
/// wasip1 open flags and fd flags.
const O_CREAT: i32 = 1;
const O_EXCL: i32 = 4;
const O_TRUNC: i32 = 8;
const FDFLAGS_APPEND: i32 = 1;
/// Rights that only a writer needs.
const WRITE_RIGHTS: i64 =
    (FD_WRITE | 1 << 8 /* allocate */ | 1 << 22/* filestat_set_size */) as i64;

/// Writes a synthetic file's type and size into a `filestat` at `buf`.
fn patch_filestat(
    caller: &mut Caller<'_, P1State>,
    kind: Kind,
    pod: &PodFiles,
    buf: i32,
) -> Result<(), i32> {
    let mem = memory(caller)?;
    if kind.is_device() {
        write_bytes(
            mem,
            buf.wrapping_add(FILESTAT_FILETYPE),
            &[Filetype::CharacterDevice as u8],
        )?;
    }
    write_bytes(
        mem,
        buf.wrapping_add(FILESTAT_SIZE),
        &kind.size(pod).to_le_bytes(),
    )
}

/// The kind of the placeholder that wasip1 descriptor `fd` has open.
async fn p1_identify(caller: &mut Caller<'_, P1State>, fd: u32) -> Option<Kind> {
    let pod = caller.data().synthetic.pod.clone()?;
    let Some(Extern::Memory(m)) = caller.get_export("memory") else {
        return None;
    };
    let (mem, state) = m.data_and_store_mut(caller);
    let mut mem = wiggle::GuestMemory::Unshared(mem);
    let stat = WasiSnapshotPreview1::fd_filestat_get(&mut state.wasi, &mut mem, fd.into())
        .await
        .ok()?;
    pod.placeholders.by_p1_inode(stat.ino)
}

/// Whether the path the guest passed (`ptr`, `len`) names a placeholder
/// (read in place: most opens name none).
fn names_candidate(caller: &mut Caller<'_, P1State>, ptr: i32, len: i32) -> bool {
    caller.data().synthetic.pod.is_some()
        && memory(caller)
            .ok()
            .and_then(|mem| {
                range(mem, ptr, len as u32 as usize)
                    .ok()
                    .map(|r| candidate(&mem[r]))
            })
            .unwrap_or(false)
}

/// Shadows the wasip1 calls on descriptors (see the module's doc).
pub(crate) fn add_p1(linker: &mut wasmtime::Linker<P1State>) -> wasmtime::Result<()> {
    const M: &str = "wasi_snapshot_preview1";
    type OpenArgs = (i32, i32, i32, i32, i32, i64, i64, i32, i32);
    linker.func_wrap_async(
        M,
        "path_open",
        |mut caller: Caller<'_, P1State>,
         (fd, dirflags, path, len, oflags, base, inheriting, fdflags, result): OpenArgs| {
            Box::new(async move {
                let check = names_candidate(&mut caller, path, len);
                let first = original!(
                    caller,
                    path_open(
                        fd, dirflags, path, len, oflags, base, inheriting, fdflags, result
                    )
                )?;
                if !check {
                    return Ok(first);
                }
                let wants_write = base & FD_WRITE as i64 != 0
                    || oflags & (O_CREAT | O_TRUNC) != 0
                    || fdflags & FDFLAGS_APPEND != 0;
                let retried = first != 0;
                if retried {
                    let exclusive = oflags & O_CREAT != 0 && oflags & O_EXCL != 0;
                    if !wants_write || exclusive {
                        return Ok(first);
                    }
                    let again = original!(
                        caller,
                        path_open(
                            fd,
                            dirflags,
                            path,
                            len,
                            oflags & !(O_CREAT | O_TRUNC),
                            base & !WRITE_RIGHTS,
                            inheriting,
                            fdflags & !FDFLAGS_APPEND,
                            result
                        )
                    )?;
                    if again != 0 {
                        return Ok(first);
                    }
                }
                let Ok(new) = memory(&mut caller).and_then(|m| read_u32(m, result)) else {
                    return Ok(first);
                };
                match p1_identify(&mut caller, new).await {
                    Some(kind) if !retried || kind.writable() => {
                        caller.data_mut().synthetic.open.insert(
                            new,
                            P1Open {
                                kind,
                                pos: 0,
                                write: wants_write,
                                append: fdflags & FDFLAGS_APPEND != 0,
                            },
                        );
                        if kind == Kind::TerminationLog
                            && oflags & O_TRUNC != 0
                            && let Some(pod) = caller.data().synthetic.pod.clone()
                        {
                            pod.termination().set_len(0);
                        }
                        Ok(0)
                    }
                    _ if retried => {
                        original!(caller, fd_close(new as i32))?;
                        Ok(first)
                    }
                    _ => Ok(0),
                }
            })
        },
    )?;
    linker.func_wrap_async(
        M,
        "fd_read",
        |mut caller: Caller<'_, P1State>, (fd, iovs, count, nread): (i32, i32, i32, i32)| {
            Box::new(async move {
                let Some((open, pod)) = caller.data().synthetic.get(fd) else {
                    return original!(caller, fd_read(fd, iovs, count, nread));
                };
                match p1_read(&mut caller, open, &pod, open.pos, iovs, count, nread) {
                    Ok(n) => {
                        if let Some(o) = caller.data_mut().synthetic.open.get_mut(&(fd as u32))
                            && !open.kind.is_device()
                        {
                            o.pos += n;
                        }
                        Ok(0)
                    }
                    Err(e) => Ok(e),
                }
            })
        },
    )?;
    linker.func_wrap_async(
        M,
        "fd_pread",
        |mut caller: Caller<'_, P1State>,
         (fd, iovs, count, offset, nread): (i32, i32, i32, i64, i32)| {
            Box::new(async move {
                let Some((open, pod)) = caller.data().synthetic.get(fd) else {
                    return original!(caller, fd_pread(fd, iovs, count, offset, nread));
                };
                let pos = offset as u64;
                Ok(p1_read(&mut caller, open, &pod, pos, iovs, count, nread)
                    .map_or_else(|e| e, |_| 0))
            })
        },
    )?;
    linker.func_wrap_async(
        M,
        "fd_write",
        |mut caller: Caller<'_, P1State>, (fd, iovs, count, nwritten): (i32, i32, i32, i32)| {
            Box::new(async move {
                let Some((open, pod)) = caller.data().synthetic.get(fd) else {
                    return original!(caller, fd_write(fd, iovs, count, nwritten));
                };
                let at = (!open.append).then_some(open.pos);
                match p1_write(&mut caller, open, &pod, at, iovs, count, nwritten) {
                    Ok(n) => {
                        if let Some(o) = caller.data_mut().synthetic.open.get_mut(&(fd as u32))
                            && !open.kind.is_device()
                        {
                            o.pos = at.unwrap_or_else(|| open.kind.size(&pod) - n) + n;
                        }
                        Ok(0)
                    }
                    Err(e) => Ok(e),
                }
            })
        },
    )?;
    linker.func_wrap_async(
        M,
        "fd_pwrite",
        |mut caller: Caller<'_, P1State>,
         (fd, iovs, count, offset, nwritten): (i32, i32, i32, i64, i32)| {
            Box::new(async move {
                match caller.data().synthetic.get(fd) {
                    Some((open, pod)) => Ok(p1_write(
                        &mut caller,
                        open,
                        &pod,
                        Some(offset as u64),
                        iovs,
                        count,
                        nwritten,
                    )
                    .map_or_else(|e| e, |_| 0)),
                    None => original!(caller, fd_pwrite(fd, iovs, count, offset, nwritten)),
                }
            })
        },
    )?;
    linker.func_wrap_async(
        M,
        "fd_seek",
        |mut caller: Caller<'_, P1State>, (fd, offset, whence, out): (i32, i64, i32, i32)| {
            Box::new(async move {
                let Some((open, pod)) = caller.data().synthetic.get(fd) else {
                    return original!(caller, fd_seek(fd, offset, whence, out));
                };
                let base = match whence {
                    0 => 0,
                    1 => open.pos as i64,
                    2 => open.kind.size(&pod) as i64,
                    _ => return Ok(errno(Errno::Inval)),
                };
                let Some(pos) = base.checked_add(offset).filter(|p| *p >= 0) else {
                    return Ok(errno(Errno::Inval));
                };
                // A device's position stays 0, as Linux reports it.
                let pos = if open.kind.is_device() { 0 } else { pos as u64 };
                if let Some(o) = caller.data_mut().synthetic.open.get_mut(&(fd as u32)) {
                    o.pos = pos;
                }
                Ok(memory(&mut caller)
                    .and_then(|m| write_bytes(m, out, &pos.to_le_bytes()))
                    .err()
                    .unwrap_or(0))
            })
        },
    )?;
    linker.func_wrap_async(
        M,
        "fd_tell",
        |mut caller: Caller<'_, P1State>, (fd, out): (i32, i32)| {
            Box::new(async move {
                let Some((open, _)) = caller.data().synthetic.get(fd) else {
                    return original!(caller, sync fd_tell(fd, out));
                };
                Ok(memory(&mut caller)
                    .and_then(|m| write_bytes(m, out, &open.pos.to_le_bytes()))
                    .err()
                    .unwrap_or(0))
            })
        },
    )?;
    linker.func_wrap_async(
        M,
        "fd_filestat_get",
        |mut caller: Caller<'_, P1State>, (fd, buf): (i32, i32)| {
            Box::new(async move {
                let synthetic = caller.data().synthetic.get(fd);
                let r = original!(caller, fd_filestat_get(fd, buf))?;
                match synthetic {
                    Some((open, pod)) if r == 0 => {
                        Ok(patch_filestat(&mut caller, open.kind, &pod, buf)
                            .err()
                            .unwrap_or(0))
                    }
                    _ => Ok(r),
                }
            })
        },
    )?;
    linker.func_wrap_async(
        M,
        "path_filestat_get",
        |mut caller: Caller<'_, P1State>,
         (fd, flags, path, len, buf): (i32, i32, i32, i32, i32)| {
            Box::new(async move {
                let check = names_candidate(&mut caller, path, len);
                let r = original!(caller, path_filestat_get(fd, flags, path, len, buf))?;
                if r != 0 || !check {
                    return Ok(r);
                }
                let Some(pod) = caller.data().synthetic.pod.clone() else {
                    return Ok(r);
                };
                let ino = memory(&mut caller).and_then(|m| {
                    let at = range(m, buf.wrapping_add(FILESTAT_INO), 8)?;
                    Ok(u64::from_le_bytes(m[at].try_into().unwrap_or_default()))
                });
                match ino.ok().and_then(|i| pod.placeholders.by_p1_inode(i)) {
                    Some(kind) => Ok(patch_filestat(&mut caller, kind, &pod, buf)
                        .err()
                        .unwrap_or(0)),
                    None => Ok(r),
                }
            })
        },
    )?;
    linker.func_wrap_async(
        M,
        "fd_fdstat_get",
        |mut caller: Caller<'_, P1State>, (fd, buf): (i32, i32)| {
            Box::new(async move {
                let synthetic = caller.data().synthetic.get(fd);
                let r = original!(caller, fd_fdstat_get(fd, buf))?;
                let Some((open, _)) = synthetic.filter(|_| r == 0) else {
                    return Ok(r);
                };
                let patched = memory(&mut caller).and_then(|m| {
                    if open.kind.is_device() {
                        write_bytes(
                            m,
                            buf.wrapping_add(FDSTAT_FILETYPE),
                            &[Filetype::CharacterDevice as u8],
                        )?;
                    }
                    if open.write {
                        let at = range(m, buf.wrapping_add(FDSTAT_RIGHTS), 8)?;
                        let rights =
                            u64::from_le_bytes(m[at.clone()].try_into().unwrap_or_default());
                        m[at].copy_from_slice(&(rights | FD_WRITE).to_le_bytes());
                    }
                    Ok(())
                });
                Ok(patched.err().unwrap_or(0))
            })
        },
    )?;
    linker.func_wrap_async(
        M,
        "fd_filestat_set_size",
        |mut caller: Caller<'_, P1State>, (fd, size): (i32, i64)| {
            Box::new(async move {
                match caller.data().synthetic.get(fd) {
                    Some((open, _)) if open.write && open.kind.is_device() => Ok(0),
                    Some((open, pod)) if open.write && open.kind == Kind::TerminationLog => {
                        pod.termination().set_len(size as u64);
                        Ok(0)
                    }
                    Some(_) => Ok(errno(Errno::Badf)),
                    None => original!(caller, fd_filestat_set_size(fd, size)),
                }
            })
        },
    )?;
    linker.func_wrap_async(
        M,
        "fd_close",
        |mut caller: Caller<'_, P1State>, (fd,): (i32,)| {
            Box::new(async move {
                let r = original!(caller, fd_close(fd))?;
                if r == 0 {
                    caller.data_mut().synthetic.open.remove(&(fd as u32));
                }
                Ok(r)
            })
        },
    )?;
    linker.func_wrap_async(
        M,
        "fd_renumber",
        |mut caller: Caller<'_, P1State>, (from, to): (i32, i32)| {
            Box::new(async move {
                let r = original!(caller, fd_renumber(from, to))?;
                if r == 0 {
                    let open = &mut caller.data_mut().synthetic.open;
                    open.remove(&(to as u32));
                    if let Some(o) = open.remove(&(from as u32)) {
                        open.insert(to as u32, o);
                    }
                }
                Ok(r)
            })
        },
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_termination_log_keeps_its_last_4_kib_at_any_offset() {
        let log = TerminationLog::new();
        log.write_at(0, b"hello");
        log.write_at(5, b" world");
        assert_eq!(log.message(), b"hello world");
        log.write_at(6, b"W");
        assert_eq!(log.message(), b"hello World");
        let big = vec![b'x'; 5000];
        log.write_at(log.len(), &big);
        assert_eq!(log.len(), 5011);
        assert_eq!(log.message(), vec![b'x'; TERMINATION_MESSAGE_MAX]);
        // Offsets a guest may give, up to the largest: no overflow.
        log.write_at(u64::MAX - 2, b"abcdef");
        assert_eq!(log.len(), u64::MAX);
        assert!(
            log.message().ends_with(b"ab"),
            "the bytes that fit below u64::MAX"
        );
        log.set_len(0);
        assert!(log.message().is_empty());
    }
}
