//! The wasmtime side: one [`wasmtime::Engine`] per runtime with epoch
//! interruption, the compile cache (in memory and on disk), and running one
//! guest to its end: its CPU quota and weight (`cpu.rs`), its open files
//! (`files.rs`), and the files the runtime makes up for it (`synthetic.rs`:
//! `/dev`, `/etc`, the termination log).

mod cpu;
mod files;
mod synthetic;

pub(crate) use cpu::CpuShare;
pub(crate) use files::FileBudget;
pub(crate) use synthetic::{
    Placeholders as PlaceholderFiles, PodFiles, TERMINATION_MESSAGE_MAX, TerminationLog,
};

use crate::sync::lock;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, ResourceTable};
use wasmtime::{Config, InstancePre, Linker, Module, ResourceLimiter, Store, Trap};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::bindings::CommandPre;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use tokio::io::AsyncWriteExt;

use crate::api::status::{Exit, ExitReason};
use crate::error::RuntimeError;
use crate::log::{ContainerLog, Stream};
use crate::net::PodNet;

/// Where a prepared image came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOrigin {
    /// Compiled now.
    Compiled,
    /// Found in this runtime's memory.
    Memory,
    /// Loaded from the disk cache (no compilation).
    Disk,
}

/// Counters of the compile cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Images compiled by Cranelift.
    pub compiled: u64,
    /// Images found in memory.
    pub memory_hits: u64,
    /// Images loaded from the disk cache.
    pub disk_hits: u64,
    /// Disk cache files refused (corrupt, or written by another engine
    /// configuration) and replaced.
    pub disk_rejected: u64,
}

/// A compiled image ready to instantiate.
pub(crate) enum Prepared {
    /// A wasip1 core module.
    P1(InstancePre<P1State>),
    /// A wasip2 component (a `wasi:cli/command`).
    P2(CommandPre<P2State>),
}

/// A compiled image with its identity, ready to run as many times as
/// wanted (see [`Node::load_images`](crate::sandbox::Node::load_images)).
pub struct Image {
    pub(crate) prepared: Prepared,
    /// `sha256:<hex>` of the wasm bytes.
    pub(crate) digest: String,
}

impl Image {
    /// `sha256:<hex>` of the wasm bytes (the container's `imageID`).
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// Whether it is a wasip2 component (otherwise a wasip1 module).
    pub fn is_component(&self) -> bool {
        matches!(self.prepared, Prepared::P2(_))
    }
}

impl std::fmt::Debug for Image {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Image")
            .field("digest", &self.digest)
            .field("component", &self.is_component())
            .finish()
    }
}

/// Store data of a wasip1 guest.
pub(crate) struct P1State {
    wasi: WasiP1Ctx,
    limits: MemoryLimiter,
    cpu: cpu::CpuAccount,
    files: files::GuestFiles,
    synthetic: synthetic::P1Files,
}

/// Store data of a wasip2 guest.
pub(crate) struct P2State {
    ctx: WasiCtx,
    table: ResourceTable,
    limits: MemoryLimiter,
    cpu: cpu::CpuAccount,
    net: Arc<PodNet>,
    files: files::GuestFiles,
    synthetic: Option<Arc<PodFiles>>,
}

impl WasiView for P2State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

/// Caps a guest's memory (its linear memories and its tables together)
/// and records that the cap was hit, so the exit can be reported as
/// OOMKilled.
struct MemoryLimiter {
    limit: Option<u64>,
    /// Bytes of linear memory and table elements the guest holds.
    used: u64,
    /// Why the guest was stopped, once it was.
    exceeded: Option<String>,
    /// With the pooling allocator, a slot's memory size caps every guest.
    slot_cap: Option<u64>,
    /// Where `used` is published for readers outside the store.
    gauge: Option<Arc<AtomicU64>>,
}

/// What one table element costs the host (a pointer), counted against the
/// memory limit: tables live outside linear memory but in the same RAM.
const TABLE_ELEMENT_BYTES: u64 = 8;

/// The most elements any table may have, memory limit or not.
const MAX_TABLE_ELEMENTS: usize = 10_000_000;

#[derive(Debug)]
struct OomKill;

impl std::fmt::Display for OomKill {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("memory limit exceeded")
    }
}
impl std::error::Error for OomKill {}

impl MemoryLimiter {
    /// Accounts for growing a memory or table from `current` to `desired`
    /// bytes; refuses (and remembers why) past the limit.
    fn grow(&mut self, what: &str, current: u64, desired: u64) -> wasmtime::Result<bool> {
        let after = self.used.saturating_sub(current).saturating_add(desired);
        let message = match (self.limit, self.slot_cap) {
            (Some(limit), _) if after > limit => Some(format!(
                "memory limit of {limit} bytes exceeded: the guest asked for {after} bytes ({what})"
            )),
            (_, Some(slot)) if what == "linear memory" && desired > slot => Some(format!(
                "the guest asked for {desired} bytes of linear memory, more than the instance pool's slot of {slot} bytes (RuntimeConfig::pool.max_memory; set resources.limits.memory to fail earlier with a clear limit)"
            )),
            _ => None,
        };
        if let Some(message) = message {
            self.exceeded = Some(message);
            return Err(wasmtime::Error::new(OomKill));
        }
        self.used = after;
        if let Some(g) = &self.gauge {
            g.store(after, Ordering::Relaxed);
        }
        Ok(true)
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.grow("linear memory", current as u64, desired as u64)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > MAX_TABLE_ELEMENTS {
            return Ok(false);
        }
        self.grow(
            "tables",
            current as u64 * TABLE_ELEMENT_BYTES,
            desired as u64 * TABLE_ELEMENT_BYTES,
        )
    }
}

/// The pooling instance allocator's size (see [`crate::config::RuntimeConfig::pool`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolConfig {
    /// Guests (containers, exec probes and hooks) that can run at once;
    /// past that a container fails to start with `StartError`.
    pub slots: u32,
    /// The largest linear memory a guest may have; a container's
    /// `limits.memory` may not exceed it.
    pub max_memory: u64,
}

impl PoolConfig {
    /// The largest useful slot: a wasm32 linear memory cannot grow past
    /// 4 GiB, so a larger `limits.memory` never needs a larger slot.
    pub const MAX_SLOT_MEMORY: u64 = 4 << 30;

    /// A pool for `pods` copies of `spec` at once, plus `spare` guests:
    /// each container and exec action gets a slot, and slots are as large
    /// as the largest memory limit (at least the default 1 GiB, at most
    /// [`PoolConfig::MAX_SLOT_MEMORY`]; a limit above that is then refused
    /// at create, naming its field).
    pub fn sized_for(spec: &crate::spec::PodSpec, pods: u32, spare: u32) -> Self {
        Self {
            slots: spec
                .guest_slots()
                .saturating_mul(pods)
                .saturating_add(spare),
            max_memory: spec
                .largest_memory_limit()
                .unwrap_or(0)
                .clamp(Self::default().max_memory, Self::MAX_SLOT_MEMORY),
        }
    }
}

impl Default for PoolConfig {
    /// 1000 guests (a node's 110 pods of a few containers each, with room),
    /// 1 GiB of linear memory each. Each slot reserves address space, not
    /// memory: about 2 TiB in all, of the 128 TiB a 64-bit process has.
    fn default() -> Self {
        Self {
            slots: 1000,
            max_memory: 1 << 30,
        }
    }
}

/// A directory given to a guest.
#[derive(Debug, Clone)]
pub(crate) struct Preopen {
    pub host: HostDir,
    pub guest: String,
    pub read_only: bool,
}

/// The host side of a preopen.
#[derive(Debug, Clone)]
pub(crate) enum HostDir {
    /// A path no guest can change (a volume's own folder, a container's
    /// runtime folder, a hostPath as the manifest names it).
    Path(PathBuf),
    /// A folder inside a volume (`subPath`, `workingDir`), opened once
    /// through cap-std so that no symlink leads out of the volume, and
    /// handed to wasmtime-wasi as that very open folder (`/proc/self/fd/N`),
    /// never as a path that could be swapped before it is opened again.
    Open(Arc<cap_std::fs::Dir>),
}

impl HostDir {
    /// What wasmtime-wasi opens.
    fn path(&self) -> PathBuf {
        match self {
            HostDir::Path(p) => p.clone(),
            HostDir::Open(dir) => {
                use std::os::fd::AsRawFd;
                PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()))
            }
        }
    }

    /// The folder, opened for the runtime (a new handle).
    pub(crate) fn open(&self) -> std::io::Result<cap_std::fs::Dir> {
        match self {
            HostDir::Open(dir) => dir.try_clone(),
            HostDir::Path(p) => cap_std::fs::Dir::open_ambient_dir(p, cap_std::ambient_authority()),
        }
    }
}

impl std::fmt::Display for HostDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostDir::Path(p) => write!(f, "{}", p.display()),
            HostDir::Open(_) => f.write_str("a folder inside the volume"),
        }
    }
}

/// Everything a guest run needs besides its image.
pub(crate) struct GuestConfig {
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub working_dir: Option<String>,
    pub preopens: Vec<Preopen>,
    pub log: ContainerLog,
    pub memory_limit: Option<u64>,
    /// CPU quota and weight (see [`cpu`]).
    pub cpu: CpuShare,
    /// The pod's network (wasip2 guests reach it through wasi:sockets).
    pub net: Arc<PodNet>,
    /// File-system calls of a wasip2 guest run on its own thread instead of
    /// tokio's blocking pool: for folders the runtime owns (emptyDir,
    /// configMap, secret, `/run/wasipod`), where each call takes
    /// microseconds and the hand-off to another thread costs more.
    pub inline_fs: bool,
    /// The pod's `/dev` and `/etc` files (see [`synthetic`]), when those
    /// folders are among the preopens.
    pub synthetic: Option<Arc<PodFiles>>,
    /// Standard streams other than the log (the containerd shim's FIFOs).
    pub stdio: GuestStdio,
    /// Updated with the bytes of memory and tables the guest holds.
    pub memory_gauge: Option<Arc<AtomicU64>>,
}

/// A guest's standard streams where they are not its log: stdin (none by
/// default), stdout and stderr (the log by default).
#[derive(Default)]
pub(crate) struct GuestStdio {
    pub stdin: Option<Box<dyn tokio::io::AsyncRead + Send + Sync + Unpin>>,
    pub stdout: Option<Box<dyn tokio::io::AsyncWrite + Send + Sync + Unpin>>,
    pub stderr: Option<Box<dyn tokio::io::AsyncWrite + Send + Sync + Unpin>>,
}

/// Bytes of a guest's output a stream takes before the guest waits for
/// the reader.
const STDIO_BUDGET: usize = 64 * 1024;
/// How long a guest's end waits for its output streams to drain.
const STDIO_FLUSH: Duration = Duration::from_secs(5);

/// The engine shared by every pod of a runtime.
pub(crate) struct Engine {
    engine: wasmtime::Engine,
    pool: Option<PoolConfig>,
    p1: Linker<P1State>,
    p2: wasmtime::component::Linker<P2State>,
    cache: CompileCache,
    ticker_stop: Arc<AtomicBool>,
    files: Arc<FileBudget>,
    /// The epoch tick.
    tick: Duration,
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

impl Engine {
    pub(crate) fn new(
        cache_dir: Option<PathBuf>,
        tick: Duration,
        pool: Option<PoolConfig>,
        files: Arc<FileBudget>,
    ) -> Result<Self, RuntimeError> {
        let engine = match pool {
            // Freed slots keep the pages their guest touched (up to a limit)
            // and reset them in place, found with the PAGEMAP_SCAN ioctl
            // (Linux 6.7+): the next guest starts without page faults and no
            // madvise is needed. Without the ioctl the reset would be a
            // memset of the whole limit, so that kernel gets the plain pool.
            Some(p) => Self::config(Some((p, true))).or_else(|_| Self::config(Some((p, false))))?,
            None => Self::config(None)?,
        };

        let mut p1 = Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut p1, |s: &mut P1State| {
            s.files.before_p1_call(&mut s.wasi);
            &mut s.wasi
        })
        .map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
        // wasmtime-wasi refuses exit codes >= 126; a process may use 0..=255.
        p1.allow_shadowing(true);
        p1.func_wrap(
            "wasi_snapshot_preview1",
            "proc_exit",
            |code: i32| -> wasmtime::Result<()> { Err(wasmtime::Error::new(I32Exit(code & 0xff))) },
        )
        .map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
        synthetic::add_p1(&mut p1).map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;

        let mut p2 = wasmtime::component::Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut p2)
            .map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
        // wasi:sockets over the in-memory pod network replaces
        // wasmtime-wasi's host sockets.
        p2.allow_shadowing(true);
        crate::net::add_to_linker(&mut p2, |s: &mut P2State| crate::net::NetView {
            table: &mut s.table,
            pod: &s.net,
        })
        .map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
        files::add_p2(&mut p2).map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
        synthetic::add_p2(&mut p2).map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;

        if let Some(dir) = &cache_dir {
            std::fs::create_dir_all(dir).map_err(|e| RuntimeError::Io {
                path: dir.clone(),
                source: e,
            })?;
        }
        let mut h = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        let cache = CompileCache {
            dir: cache_dir,
            engine_hash: format!("{:016x}", h.finish()),
            memory: Mutex::new(HashMap::new()),
            paths: Mutex::new(HashMap::new()),
            inflight: Mutex::new(std::collections::HashSet::new()),
            done: std::sync::Condvar::new(),
            compiled: AtomicU64::new(0),
            memory_hits: AtomicU64::new(0),
            disk_hits: AtomicU64::new(0),
            disk_rejected: AtomicU64::new(0),
        };

        let ticker_stop = Arc::new(AtomicBool::new(false));
        let stop = ticker_stop.clone();
        let weak = engine.weak();
        std::thread::Builder::new()
            .name("wasipod-epoch".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    match weak.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })
            .map_err(|e| RuntimeError::Engine(format!("epoch thread: {e}")))?;

        Ok(Self {
            engine,
            pool,
            p1,
            p2,
            cache,
            ticker_stop,
            files,
            tick,
        })
    }

    /// The wasmtime engine: epoch interruption, and the pooling allocator
    /// when given (`true`: keep freed pages resident, found by PAGEMAP_SCAN).
    fn config(pool: Option<(PoolConfig, bool)>) -> Result<wasmtime::Engine, RuntimeError> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        if let Some((p, keep_resident)) = pool {
            // One reservation for every slot: instantiation takes a slot
            // instead of mapping memory, and no per-instance mappings pile
            // up (an on-demand instance costs several, against the kernel's
            // vm.max_map_count).
            let mut pc = wasmtime::PoolingAllocationConfig::default();
            pc.total_component_instances(p.slots)
                .total_core_instances(p.slots.saturating_mul(8))
                .total_memories(p.slots.saturating_mul(2))
                .total_tables(p.slots.saturating_mul(8))
                .total_stacks(p.slots)
                .max_memory_size(usize::try_from(p.max_memory).unwrap_or(usize::MAX));
            if keep_resident {
                pc.pagemap_scan(wasmtime::Enabled::Yes)
                    .linear_memory_keep_resident(1 << 20)
                    .table_keep_resident(64 << 10)
                    .async_stack_keep_resident(64 << 10);
            }
            config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pc));
            config.memory_reservation(p.max_memory);
        }
        wasmtime::Engine::new(&config).map_err(|e| RuntimeError::Engine(format!("{e:#}")))
    }

    pub(crate) fn stats(&self) -> CacheStats {
        self.cache.stats()
    }

    pub(crate) fn pool(&self) -> Option<PoolConfig> {
        self.pool
    }

    pub(crate) fn wasmtime(&self) -> &wasmtime::Engine {
        &self.engine
    }

    /// The images of these files when every one is loaded and unchanged
    /// (then nothing needs a blocking thread); counted as memory hits.
    pub(crate) fn loaded(&self, paths: &[&Path]) -> Option<Vec<Arc<Image>>> {
        let images = paths
            .iter()
            .map(|p| self.cache.by_path(p))
            .collect::<Option<Vec<_>>>()?;
        self.cache
            .memory_hits
            .fetch_add(images.len() as u64, Ordering::Relaxed);
        Some(images)
    }

    /// Loads an image: from memory, from the disk cache, or by compiling it.
    /// `field` names the manifest field for errors.
    pub(crate) fn load(
        &self,
        path: &Path,
        field: &str,
    ) -> Result<(Arc<Image>, CacheOrigin, Duration), RuntimeError> {
        let start = Instant::now();
        let image_err = |message: String| RuntimeError::Image {
            field: field.to_string(),
            path: path.to_path_buf(),
            message,
        };
        // An unchanged file (same size and modification time) is neither
        // read nor hashed again.
        if let Some(image) = self.cache.by_path(path) {
            self.cache.memory_hits.fetch_add(1, Ordering::Relaxed);
            return Ok((image, CacheOrigin::Memory, start.elapsed()));
        }
        let stamp = FileStamp::of(path);
        // A file this cache has seen with the same stamp: its digest and
        // kind without reading it (a big image is tens of megabytes).
        let known = stamp.and_then(|s| self.cache.known_image(path, s));
        let mut bytes = None;
        let (digest, known_kind) = match known {
            Some((digest, kind)) => (digest, Some(kind)),
            None => {
                let read = std::fs::read(path).map_err(|e| image_err(e.to_string()))?;
                let digest: [u8; 32] = Sha256::digest(&read).into();
                bytes = Some(read);
                (digest, None)
            }
        };
        if let Some(stamp) = stamp {
            lock(&self.cache.paths).insert(path.to_path_buf(), (stamp, digest));
        }
        // One load per image at a time: a caller that finds the image being
        // loaded waits, then takes it from memory (or loads it itself if
        // the first failed).
        let _turn = loop {
            if let Some(image) = lock(&self.cache.memory).get(&digest) {
                self.cache.memory_hits.fetch_add(1, Ordering::Relaxed);
                return Ok((image.clone(), CacheOrigin::Memory, start.elapsed()));
            }
            let mut inflight = lock(&self.cache.inflight);
            if inflight.insert(digest) {
                break Turn {
                    cache: &self.cache,
                    digest,
                };
            }
            while inflight.contains(&digest) {
                inflight = self
                    .cache
                    .done
                    .wait(inflight)
                    .unwrap_or_else(|e| e.into_inner());
            }
        };
        let hex = to_hex(&digest);
        // Known and verified on disk: mapped, neither the image nor the
        // artifact is read.
        let cached = known_kind.and_then(|kind| self.cache.load_cached(&self.engine, &hex, kind));
        let (compiled, origin, kind) = match (cached, known_kind) {
            (Some(c), Some(kind)) => (c, CacheOrigin::Disk, kind),
            _ => {
                let bytes = match bytes {
                    Some(b) => b,
                    None => std::fs::read(path).map_err(|e| image_err(e.to_string()))?,
                };
                // Refused before compiling (and caching) anything.
                crate::spec::wasm::inspect(&bytes).map_err(image_err)?;
                let kind = WasmKind::detect(&bytes).ok_or_else(|| {
                    image_err(
                        "not a WebAssembly module or component (bad magic number or version)"
                            .into(),
                    )
                })?;
                let (compiled, origin) = self
                    .cache
                    .compile_or_load(&self.engine, &bytes, &hex, kind, known_kind.is_none())
                    .map_err(image_err)?;
                (compiled, origin, kind)
            }
        };
        if let Some(stamp) = stamp {
            self.cache.remember_image(path, stamp, &digest, kind);
        }
        let prepared = match compiled {
            Compiled::Module(m) => {
                if m.get_export("_start").is_none() {
                    return Err(image_err(
                        "the module has no _start export: it is a library (reactor), not a WASI command".into(),
                    ));
                }
                Prepared::P1(
                    self.p1.instantiate_pre(&m).map_err(|e| {
                        image_err(format!("cannot link as a wasip1 command: {e:#}"))
                    })?,
                )
            }
            Compiled::Component(c) => {
                let pre = self
                    .p2
                    .instantiate_pre(&c)
                    .map_err(|e| image_err(format!("cannot link as a wasip2 command: {e:#}")))?;
                Prepared::P2(CommandPre::new(pre).map_err(|e| {
                    image_err(format!(
                        "not a wasi:cli/command component (no wasi:cli/run export): {e:#}"
                    ))
                })?)
            }
        };
        let image = Arc::new(Image {
            prepared,
            digest: format!("sha256:{hex}"),
        });
        lock(&self.cache.memory).insert(digest, image.clone());
        Ok((image, origin, start.elapsed()))
    }

    /// Runs a guest to its end. Dropping the returned future kills the guest
    /// at once, wherever it is (running wasm or blocked in a host call).
    pub(crate) async fn run(&self, image: &Image, mut cfg: GuestConfig) -> Exit {
        let mut builder = WasiCtxBuilder::new();
        builder.args(&cfg.argv).envs(&cfg.env);
        // Output goes to the log unless the caller gave streams; a handle on
        // each given stream is kept to flush it (and to add the runtime's
        // note) once the guest has ended.
        let mut outputs: [Option<std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send + Sync>>>; 2] =
            [None, None];
        for (slot, given, stream) in [
            (0, cfg.stdio.stdout.take(), Stream::Stdout),
            (1, cfg.stdio.stderr.take(), Stream::Stderr),
        ] {
            match given {
                Some(w) => {
                    let s = wasmtime_wasi::cli::AsyncStdoutStream::new(STDIO_BUDGET, w);
                    outputs[slot] = Some(Box::into_pin(
                        wasmtime_wasi::cli::StdoutStream::async_stream(&s),
                    ));
                    match stream {
                        Stream::Stdout => builder.stdout(s),
                        Stream::Stderr => builder.stderr(s),
                    };
                }
                None => {
                    match stream {
                        Stream::Stdout => builder.stdout(cfg.log.pipe(Stream::Stdout)),
                        Stream::Stderr => builder.stderr(cfg.log.pipe(Stream::Stderr)),
                    };
                }
            }
        }
        if let Some(r) = cfg.stdio.stdin.take() {
            builder.stdin(wasmtime_wasi::cli::AsyncStdinStream::new(r));
        }
        builder
            // Not for wasip1: wasmtime-wasi then serves a wasip1 sleep with
            // a blocking thread sleep, which would stall the executor (and
            // every pod on it) instead of yielding.
            .allow_blocking_current_thread(
                cfg.inline_fs && matches!(image.prepared, Prepared::P2(_)),
            );
        if let Some(wd) = &cfg.working_dir {
            builder.initial_cwd(wd);
        }
        // wasmtime-wasi opens its own descriptors: the folders handed over
        // (HostDir::Open) are closed once it has.
        for p in std::mem::take(&mut cfg.preopens) {
            let perms = if p.read_only {
                FsPerms::ReadOnly
            } else {
                FsPerms::ReadWrite
            };
            if let Err(e) = builder.preopened_dir(p.host.path(), &p.guest, perms) {
                return Exit {
                    code: 128,
                    reason: ExitReason::StartError,
                    message: Some(format!("cannot open mount {} ({}): {e:#}", p.guest, p.host)),
                };
            }
        }
        let limits = MemoryLimiter {
            limit: cfg.memory_limit,
            used: 0,
            exceeded: None,
            slot_cap: self.pool.map(|p| p.max_memory),
            gauge: cfg.memory_gauge.clone(),
        };
        let (result, exceeded) = match &image.prepared {
            Prepared::P1(pre) => {
                let mut store = Store::new(
                    &self.engine,
                    P1State {
                        wasi: builder.build_p1(),
                        limits,
                        cpu: cpu::CpuAccount::new(cfg.cpu, self.tick),
                        files: files::GuestFiles::new(self.files.clone()),
                        synthetic: synthetic::P1Files::new(cfg.synthetic.clone()),
                    },
                );
                arm(&mut store);
                let result = async {
                    let instance = pre
                        .instantiate_async(&mut store)
                        .await
                        .map_err(|e| e.context(StartFailed))?;
                    let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
                    start.call_async(&mut store, ()).await
                }
                .await;
                (result, exceeded_memory(&mut store))
            }
            Prepared::P2(pre) => {
                let mut store = Store::new(
                    &self.engine,
                    P2State {
                        ctx: builder.build(),
                        table: ResourceTable::new(),
                        limits,
                        cpu: cpu::CpuAccount::new(cfg.cpu, self.tick),
                        net: cfg.net.clone(),
                        files: files::GuestFiles::new(self.files.clone()),
                        synthetic: cfg.synthetic.clone(),
                    },
                );
                arm(&mut store);
                let result = async {
                    let command = pre
                        .instantiate_async(&mut store)
                        .await
                        .map_err(|e| e.context(StartFailed))?;
                    match command.wasi_cli_run().call_run(&mut store).await? {
                        Ok(()) => Ok(()),
                        Err(()) => Err(wasmtime::Error::new(I32Exit(1))),
                    }
                }
                .await;
                (result, exceeded_memory(&mut store))
            }
        };
        let exceeded = exceeded.or_else(|| {
            result
                .as_ref()
                .err()
                .and_then(|e| files::too_many(e, &self.files))
                .map(Exceeded::Files)
        });
        let exit = classify(result, exceeded);
        cfg.log.finish();
        if let Some(detail) = &exit.message
            && exit.reason != ExitReason::Completed
        {
            cfg.log.note(detail);
            if let Some(err) = &mut outputs[1] {
                let line = format!("wasipod: {detail}\n");
                let _ = tokio::time::timeout(STDIO_FLUSH, err.write_all(line.as_bytes())).await;
            }
        }
        // Everything the guest wrote reaches its reader before its exit is
        // reported (bounded: a reader that stopped reading cannot hold it).
        // (A flush only asks the stream's writer task; the second waits
        // until the first is done.)
        for w in outputs.iter_mut().flatten() {
            let _ = tokio::time::timeout(STDIO_FLUSH, async {
                let _ = w.flush().await;
                w.flush().await
            })
            .await;
        }
        exit
    }
}

/// The store data of a guest of either kind.
trait GuestState: Send + 'static {
    fn limits(&mut self) -> &mut MemoryLimiter;
    fn cpu(&mut self) -> &mut cpu::CpuAccount;
}

impl GuestState for P1State {
    fn limits(&mut self) -> &mut MemoryLimiter {
        &mut self.limits
    }
    fn cpu(&mut self) -> &mut cpu::CpuAccount {
        &mut self.cpu
    }
}

impl GuestState for P2State {
    fn limits(&mut self) -> &mut MemoryLimiter {
        &mut self.limits
    }
    fn cpu(&mut self) -> &mut cpu::CpuAccount {
        &mut self.cpu
    }
}

/// What every guest's store gets before it runs: its memory limiter, and
/// at each epoch deadline its CPU accounting and a yield ([`cpu`]).
fn arm<T: GuestState>(store: &mut Store<T>) {
    store.limiter(|s| s.limits());
    let ticks = store.data_mut().cpu().slice_ticks();
    store.set_epoch_deadline(ticks);
    store.epoch_deadline_callback(|mut s| Ok(s.data_mut().cpu().on_deadline()));
}

/// Why the memory limiter stopped the guest, if it did.
fn exceeded_memory<T: GuestState>(store: &mut Store<T>) -> Option<Exceeded> {
    store
        .data_mut()
        .limits()
        .exceeded
        .take()
        .map(Exceeded::Memory)
}

/// Maps how a guest call ended to a container exit, with Kubernetes'
/// conventions: exit codes as given, 137 for OOMKilled, and for traps the
/// codes of the matching signals (139 for an out-of-bounds access like
/// SIGSEGV, 134 for other traps like abort's SIGABRT).
/// A limit that stopped a guest.
enum Exceeded {
    /// Its memory limit (or the pool's slot): OOMKilled.
    Memory(String),
    /// Its open-file cap (wasip1).
    Files(String),
}

fn classify(result: wasmtime::Result<()>, exceeded: Option<Exceeded>) -> Exit {
    let err = match result {
        Ok(()) => return Exit::code(0),
        Err(e) => e,
    };
    if let Some(exit) = err.downcast_ref::<I32Exit>() {
        return Exit::code(exit.0);
    }
    match exceeded {
        Some(Exceeded::Memory(message)) => {
            return Exit {
                code: 137,
                reason: ExitReason::OomKilled,
                message: Some(message),
            };
        }
        Some(Exceeded::Files(message)) => {
            return Exit {
                code: 1,
                reason: ExitReason::Error,
                message: Some(message),
            };
        }
        None => {}
    }
    if err.downcast_ref::<StartFailed>().is_some() && err.downcast_ref::<Trap>().is_none() {
        return Exit {
            code: 128,
            reason: ExitReason::StartError,
            message: Some(format!("{err:#}")),
        };
    }
    // The error chain with the guest's wasm backtrace; never `{:?}`, which
    // adds the host's Rust backtrace when RUST_BACKTRACE is set.
    let detail = format!("{err:#}");
    let detail: String = detail.chars().take(4096).collect();
    match err.downcast_ref::<Trap>() {
        Some(trap) => Exit {
            code: if matches!(trap, Trap::MemoryOutOfBounds | Trap::HeapMisaligned) {
                139
            } else {
                134
            },
            reason: ExitReason::Error,
            message: Some(format!("{trap}; {detail}")),
        },
        None => Exit {
            code: 1,
            reason: ExitReason::Error,
            message: Some(detail),
        },
    }
}

/// Marks an error raised while instantiating (before the guest ran).
#[derive(Debug)]
struct StartFailed;

impl std::fmt::Display for StartFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("could not start the guest (no free slot in the instance pool, or instantiation failed)")
    }
}

impl std::error::Error for StartFailed {}

#[derive(Clone, Copy, PartialEq, Eq)]
enum WasmKind {
    Module,
    Component,
}

impl WasmKind {
    /// `\0asm` then the version: 1 for core modules, 0x0d with layer 1 for
    /// components.
    fn detect(bytes: &[u8]) -> Option<Self> {
        match bytes.get(..8)? {
            [0, b'a', b's', b'm', 1, 0, 0, 0] => Some(WasmKind::Module),
            [0, b'a', b's', b'm', _, _, 1, 0] => Some(WasmKind::Component),
            _ => None,
        }
    }
}

enum Compiled {
    Module(Module),
    Component(Component),
}

/// What identifies a file's contents without reading it: size,
/// modification and change times, inode (a write changes the times).
#[derive(Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    ino: u64,
}

impl FileStamp {
    fn of(path: &Path) -> Option<Self> {
        std::fs::metadata(path).ok().map(|m| Self::from_meta(&m))
    }

    fn from_meta(m: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        FileStamp {
            len: m.len(),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
            ctime_ns: i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec()),
            ino: m.ino(),
        }
    }

    /// `<len> <mtime ns> <ctime ns> <inode>`.
    fn text(&self) -> String {
        format!(
            "{} {} {} {}",
            self.len, self.mtime_ns, self.ctime_ns, self.ino
        )
    }
}

struct CompileCache {
    dir: Option<PathBuf>,
    engine_hash: String,
    memory: Mutex<HashMap<[u8; 32], Arc<Image>>>,
    /// The digest of each image file seen, with the stamp it had.
    paths: Mutex<HashMap<PathBuf, (FileStamp, [u8; 32])>>,
    /// Images being loaded or compiled now: a second caller for the same
    /// image waits for the first (`done` wakes it) instead of compiling too.
    inflight: Mutex<std::collections::HashSet<[u8; 32]>>,
    done: std::sync::Condvar,
    compiled: AtomicU64,
    memory_hits: AtomicU64,
    disk_hits: AtomicU64,
    disk_rejected: AtomicU64,
}

/// A caller's turn to load one image; others wait until it is dropped.
struct Turn<'a> {
    cache: &'a CompileCache,
    digest: [u8; 32],
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        lock(&self.cache.inflight).remove(&self.digest);
        self.cache.done.notify_all();
    }
}

impl CompileCache {
    fn stats(&self) -> CacheStats {
        CacheStats {
            compiled: self.compiled.load(Ordering::Relaxed),
            memory_hits: self.memory_hits.load(Ordering::Relaxed),
            disk_hits: self.disk_hits.load(Ordering::Relaxed),
            disk_rejected: self.disk_rejected.load(Ordering::Relaxed),
        }
    }

    /// The image of an unchanged file already loaded.
    fn by_path(&self, path: &Path) -> Option<Arc<Image>> {
        let (stamp, digest) = *lock(&self.paths).get(path)?;
        if FileStamp::of(path)? != stamp {
            return None;
        }
        lock(&self.memory).get(&digest).cloned()
    }

    fn file(&self, hex: &str) -> Option<PathBuf> {
        self.dir
            .as_ref()
            .map(|d| d.join(format!("{hex}-{}.cwasm", self.engine_hash)))
    }

    /// The digest and kind of an image file this cache has read before with
    /// the same stamp (`<dir>/images/<hash of the path>`).
    fn known_image(&self, path: &Path, stamp: FileStamp) -> Option<([u8; 32], WasmKind)> {
        let text = std::fs::read_to_string(self.image_index(path)?).ok()?;
        let (head, rest) = text.trim_end().split_once(' ')?;
        let (kind, recorded) = rest.split_once(' ')?;
        if recorded != stamp.text() {
            return None;
        }
        let digest = from_hex(head)?;
        let kind = match kind {
            "module" => WasmKind::Module,
            "component" => WasmKind::Component,
            _ => return None,
        };
        Some((digest, kind))
    }

    /// Records what [`CompileCache::known_image`] reads.
    fn remember_image(&self, path: &Path, stamp: FileStamp, digest: &[u8; 32], kind: WasmKind) {
        let Some(index) = self.image_index(path) else {
            return;
        };
        if self.known_image(path, stamp).is_some() {
            return;
        }
        let kind = match kind {
            WasmKind::Module => "module",
            WasmKind::Component => "component",
        };
        let line = format!("{} {kind} {}\n", to_hex(digest), stamp.text());
        if let Err(e) = write_atomically(&index, line.as_bytes()) {
            tracing::warn!(file = %index.display(), error = %e, "could not record an image in the compile cache");
        }
    }

    fn image_index(&self, path: &Path) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        let absolute = std::path::absolute(path).ok()?;
        let key = Sha256::digest(absolute.as_os_str().as_encoded_bytes());
        Some(dir.join("images").join(to_hex(&key)))
    }

    /// The checksum file of an artifact: `<sha256 hex> <stamp>`, the stamp
    /// being the artifact's when the checksum was last verified.
    fn sum_file(artifact: &Path) -> PathBuf {
        artifact.with_extension("sum")
    }

    /// A cached artifact, memory-mapped by wasmtime. Its SHA-256 is
    /// checked only when the file's stamp differs from the one recorded at
    /// the last check (then recorded again); a damaged, foreign or
    /// unchecked file is refused (counted) and `None` returned.
    fn load_cached(
        &self,
        engine: &wasmtime::Engine,
        hex: &str,
        kind: WasmKind,
    ) -> Option<Compiled> {
        let file = self.file(hex)?;
        let opened = std::fs::File::open(&file).ok()?;
        let loaded = self.verified(&file, &opened).and_then(|()| {
            // SAFETY: the file is byte-for-byte what `serialize` wrote (its
            // SHA-256 was checked for this very stamp; the file name carries
            // the engine's compatibility hash, and wasmtime checks its own
            // header against the engine once more).
            unsafe {
                match kind {
                    WasmKind::Module => Module::deserialize_open_file(engine, opened)
                        .ok()
                        .map(Compiled::Module),
                    WasmKind::Component => Component::deserialize_file(engine, &file)
                        .ok()
                        .map(Compiled::Component),
                }
            }
        });
        match loaded {
            Some(c) => {
                self.disk_hits.fetch_add(1, Ordering::Relaxed);
                Some(c)
            }
            None => {
                self.disk_rejected.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(file = %file.display(), "refused a corrupt or incompatible compile cache file");
                None
            }
        }
    }

    /// Whether `file` (opened as `opened`) matches its checksum.
    fn verified(&self, file: &Path, opened: &std::fs::File) -> Option<()> {
        let stamp = FileStamp::from_meta(&opened.metadata().ok()?);
        let sum_file = Self::sum_file(file);
        let text = std::fs::read_to_string(&sum_file).ok()?;
        let (sum, checked) = text.trim_end().split_once(' ')?;
        if checked == stamp.text() {
            return Some(());
        }
        let bytes = std::fs::read(file).ok()?;
        if to_hex(&Sha256::digest(&bytes)) != sum {
            return None;
        }
        let _ = write_atomically(&sum_file, format!("{sum} {}\n", stamp.text()).as_bytes());
        Some(())
    }

    fn compile_or_load(
        &self,
        engine: &wasmtime::Engine,
        bytes: &[u8],
        hex: &str,
        kind: WasmKind,
        try_disk: bool,
    ) -> Result<(Compiled, CacheOrigin), String> {
        if try_disk
            && self.file(hex).is_some_and(|f| f.exists())
            && let Some(c) = self.load_cached(engine, hex, kind)
        {
            return Ok((c, CacheOrigin::Disk));
        }
        let (compiled, artifact) = match kind {
            WasmKind::Module => {
                let m = Module::new(engine, bytes)
                    .map_err(|e| format!("invalid wasm module: {e:#}"))?;
                let art = m.serialize().ok();
                (Compiled::Module(m), art)
            }
            WasmKind::Component => {
                let c = Component::new(engine, bytes)
                    .map_err(|e| format!("invalid wasm component: {e:#}"))?;
                let art = c.serialize().ok();
                (Compiled::Component(c), art)
            }
        };
        self.compiled.fetch_add(1, Ordering::Relaxed);
        if let (Some(file), Some(art)) = (self.file(hex), artifact)
            && let Err(e) = Self::store(&file, &art)
        {
            tracing::warn!(file = %file.display(), error = %e, "could not write the compile cache");
        }
        Ok((compiled, CacheOrigin::Compiled))
    }

    /// Writes an artifact as wasmtime serialised it (so that it can be
    /// mapped as it is), then its checksum file with the artifact's stamp.
    fn store(file: &Path, artifact: &[u8]) -> std::io::Result<()> {
        write_atomically(file, artifact)?;
        let stamp = FileStamp::of(file).ok_or_else(|| std::io::Error::other("vanished"))?;
        let line = format!("{} {}\n", to_hex(&Sha256::digest(artifact)), stamp.text());
        write_atomically(&Self::sum_file(file), line.as_bytes())
    }
}

/// Writes a file whole or not at all (a temporary file renamed over it).
fn write_atomically(file: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = file.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.persist(file).map_err(|e| e.error)?;
    Ok(())
}

fn from_hex(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if text.len() != 64 {
        return None;
    }
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
