//! The container-runtime level (CRI): pod sandboxes and the containers in
//! them, with no pod policy — no init order, restarts, probes or grace
//! periods. This is what the containerd shim drives (as containerd drives a
//! runtime for the kubelet), and what wasipod's own pod worker
//! ([`kubelet`](crate::kubelet)) drives on one machine.
//!
//! - [`Node`]: what every sandbox of a process shares: the wasmtime engine
//!   and compile cache, the pod network, the cap on open log files, the
//!   state folder and its lock.
//! - [`PodSandbox`]: one pod's folder, volumes and network attachment (pod
//!   IP, `localhost`, published ports). Two containers of one sandbox share
//!   its volumes and its loopback.
//! - [`Container`]: one run of one program in a sandbox: created, started,
//!   signalled ([`Signal::Term`] follows the SIGTERM contract, [`Signal::Kill`]
//!   ends it at once), waited on, exec'd into, dropped.
//! - [`StdioPaths`]: a container's or an exec's standard streams as files
//!   (the FIFOs containerd makes) instead of its log.
//! - [`HostNetns`]: a host network namespace a
//!   sandbox is attached to (the containerd shim's pods): guests' listeners
//!   are mirrored there and outbound connections leave from it.
//! - [`layout`]: every path under the state folder and a pod's folder.
//!
//! ```no_run
//! use wasipod::sandbox::{ContainerConfig, Node, PodSandbox, SandboxConfig, Signal};
//! # async fn demo() -> Result<(), wasipod::RuntimeError> {
//! let node = Node::new(&wasipod::RuntimeConfig::default())?;
//! let image = node.load_image("server.wasm".as_ref(), "image").await?.image;
//! let sandbox = PodSandbox::run(&node, SandboxConfig::new("default", "web"))?;
//! sandbox.mount_volumes()?;
//! let server = sandbox.create_container(ContainerConfig::new("server", image))?;
//! server.start()?;
//! let probe = server.exec(vec!["server".into(), "--check".into()]).await?;
//! println!("exec exited {}", probe.exit.code);
//! server.kill(Signal::Term);
//! println!("server exited {}", server.wait().await.exit.code);
//! sandbox.remove();
//! # Ok(()) }
//! ```

mod container;
pub mod layout;
pub mod state;
mod stdio;
pub(crate) mod volume;

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use tokio::sync::broadcast;

pub use crate::engine::{CacheOrigin, Image};
pub use container::{
    Container, ContainerConfig, ContainerExit, DEFAULT_TERMINATION_MESSAGE_PATH, ExecResult,
    RunState, SIGTERM_HANDLER_FILE, Signal, TERMINATION_FILE,
};
pub use layout::PodLayout;
pub use stdio::{ExecStreams, StdioPaths};

use crate::api::status::Time;
use crate::config::RuntimeConfig;
use crate::engine::{CacheStats, Engine, FileBudget, PlaceholderFiles, PodFiles, PoolConfig};
use crate::error::RuntimeError;
use crate::fanout::Fanout;
use crate::log::{LogFiles, LogLine};
use crate::net::{HostNetns, Network, OutboundRule, PodNet, PortMapping};
use crate::spec::{PodSpec, VolumeSpec};
use crate::sync::lock;
use volume::Volumes;

/// What every sandbox of a process shares. Built once (it starts the
/// engine's epoch ticker and locks a state folder); cheap to share.
pub struct Node {
    engine: Arc<Engine>,
    network: Arc<Network>,
    log_files: Arc<LogFiles>,
    /// The placeholders behind every guest's `/dev` and `/etc`.
    placeholders: Arc<PlaceholderFiles>,
    config: RuntimeConfig,
    state_dir: PathBuf,
    /// This process's lock on the state folder (see [`state`]).
    owner: state::Owner,
    /// Where guests' disk storage goes (see [`RuntimeConfig::data_dir`]).
    data_dir: PathBuf,
    /// This process's lock on the data folder, when it is not the state
    /// folder.
    data_owner: Option<state::Owner>,
    /// One permit per core: how many images compile at once.
    compile_slots: Arc<tokio::sync::Semaphore>,
    /// The state folder when it is temporary (removed with the node, or
    /// by [`Node::remove_temporary_state`]).
    temp: Mutex<Option<tempfile::TempDir>>,
    /// The data folder when it is temporary.
    data_temp: Mutex<Option<tempfile::TempDir>>,
    temporary: bool,
}

/// An image as [`Node::load_image`] returns it.
#[derive(Debug, Clone)]
pub struct LoadedImage {
    /// The compiled image.
    pub image: Arc<Image>,
    /// Where it came from.
    pub origin: CacheOrigin,
    /// How long loading (or compiling) took.
    pub took: Duration,
    /// When its loading began (after waiting for a free core).
    pub started_at: Time,
    /// When it was ready.
    pub finished_at: Time,
}

impl Node {
    /// Builds the engine, the pod network and the state folder
    /// ([`RuntimeConfig::state_dir`], or a temporary one on tmpfs),
    /// reclaiming what runtimes that died left there.
    pub fn new(config: &RuntimeConfig) -> Result<Arc<Self>, RuntimeError> {
        let (state_dir, temp) = match &config.state_dir {
            Some(d) => (d.clone(), None),
            None => {
                let t = state::temp_state_dir()?;
                (t.path().to_path_buf(), Some(t))
            }
        };
        let pods = layout::pods_dir(&state_dir);
        std::fs::create_dir_all(&pods).map_err(|e| RuntimeError::Io {
            path: pods,
            source: e,
        })?;
        let engine = Arc::new(Engine::new(
            config.cache_dir.clone(),
            config.epoch_tick,
            config.pool,
            FileBudget::new(config.max_open_files, config.max_open_files_total),
        )?);
        let network = Network::new(&config.pod_cidr, config.net_limits)?;
        let owner = state::Owner::acquire(
            &state_dir,
            config.retain_deleted_pods || config.keep_records,
        )?;
        let (data_dir, data_temp) = match (&config.data_dir, &temp) {
            (Some(d), _) => (d.clone(), None),
            (None, None) => (state_dir.clone(), None),
            (None, Some(_)) => {
                let t = state::temp_data_dir()?;
                (t.path().to_path_buf(), Some(t))
            }
        };
        // Its pods' folders there hold only what guests wrote: a dead
        // runtime's are reclaimed whole.
        let data_owner = (data_dir != state_dir)
            .then(|| state::Owner::acquire(&data_dir, false))
            .transpose()?;
        Ok(Arc::new(Self {
            engine,
            network,
            log_files: LogFiles::new(config.max_open_log_files),
            placeholders: PlaceholderFiles::create(&state_dir)?,
            config: config.clone(),
            state_dir,
            owner,
            data_dir,
            data_owner,
            data_temp: Mutex::new(data_temp),
            temporary: temp.is_some(),
            compile_slots: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get().max(2)),
            )),
            temp: Mutex::new(temp),
        }))
    }

    /// The configuration.
    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    /// The state folder (see [`layout`]).
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// Whether the state folder is temporary (removed as a whole with the
    /// node, so pods need no record and no removal of their own).
    pub fn is_temporary(&self) -> bool {
        self.temporary
    }

    /// Removes a temporary state folder now, with whatever pods still have
    /// in it (their owner is going away: the pods are being killed).
    pub fn remove_temporary_state(&self) {
        drop(lock(&self.temp).take());
        drop(lock(&self.data_temp).take());
    }

    /// Where guests' disk storage goes (emptyDirs of the default medium,
    /// containers' roots).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The trash of the data folder (on its file system).
    pub(crate) fn data_trash(&self) -> PathBuf {
        self.data_owner.as_ref().unwrap_or(&self.owner).trash()
    }

    /// Removes the folder of pod `namespace/name` with `uid` (and its
    /// folder in a separate data folder), in the background: what is left
    /// of a recorded pod whose deletion a restart interrupted. Names that
    /// are not a DNS label, a DNS subdomain and a UUID are ignored.
    pub fn discard_pod_folder(&self, namespace: &str, name: &str, uid: &str) {
        if !crate::spec::is_dns_label(namespace)
            || !crate::spec::is_dns_subdomain(name)
            || !crate::spec::is_uuid(uid)
        {
            return;
        }
        let layout = PodLayout::new(&self.state_dir, namespace, name, uid)
            .with_data(&self.data_dir, self.config.roots_on_disk);
        let mut aside: Vec<PathBuf> = state::move_aside(layout.dir(), &self.owner.trash())
            .into_iter()
            .collect();
        if layout.data() != layout.dir() {
            aside.extend(state::move_aside(layout.data(), &self.data_trash()));
        }
        state::remove_in_background(aside);
    }

    /// The trash on the file system of this pod's containers' roots.
    pub(crate) fn root_trash(&self, layout: &PodLayout) -> PathBuf {
        if layout.roots_on_disk() {
            self.data_trash()
        } else {
            self.owner.trash()
        }
    }

    /// Compile cache counters.
    pub fn cache_stats(&self) -> CacheStats {
        self.engine.stats()
    }

    /// The instance pool's settings, if guests are pooled.
    pub fn pool(&self) -> Option<PoolConfig> {
        self.engine.pool()
    }

    /// The wasmtime engine guests run on.
    pub fn wasmtime_engine(&self) -> &wasmtime::Engine {
        self.engine.wasmtime()
    }

    /// Loads (from memory or the disk cache) or compiles one image. `field`
    /// names what asked for it, for errors.
    pub async fn load_image(&self, path: &Path, field: &str) -> Result<LoadedImage, RuntimeError> {
        let mut all = self
            .load_images(vec![(path.to_path_buf(), field.to_string())])
            .await?;
        Ok(all.remove(0))
    }

    /// Loads several images: from memory without leaving the async thread
    /// when all are loaded and unchanged; otherwise each on the blocking
    /// pool, in parallel, at most one per core at a time (compiling a large
    /// guest takes seconds); an image another caller is loading is waited
    /// for, not compiled twice. Results come in the order asked.
    pub async fn load_images(
        &self,
        wanted: Vec<(PathBuf, String)>,
    ) -> Result<Vec<LoadedImage>, RuntimeError> {
        let paths: Vec<&Path> = wanted.iter().map(|(p, _)| p.as_path()).collect();
        if let Some(images) = self.engine.loaded(&paths) {
            let now = crate::api::status::now();
            return Ok(images
                .into_iter()
                .map(|image| LoadedImage {
                    image,
                    origin: CacheOrigin::Memory,
                    took: Duration::ZERO,
                    started_at: now,
                    finished_at: now,
                })
                .collect());
        }
        let mut tasks = Vec::with_capacity(wanted.len());
        for (path, field) in wanted {
            let engine = self.engine.clone();
            let cores = self.compile_slots.clone();
            tasks.push(tokio::spawn(async move {
                let _core = cores.acquire_owned().await;
                tokio::task::spawn_blocking(move || {
                    let started_at = chrono::Utc::now();
                    engine
                        .load(&path, &field)
                        .map(|(image, origin, took)| LoadedImage {
                            image,
                            origin,
                            took,
                            started_at,
                            finished_at: chrono::Utc::now(),
                        })
                })
                .await
            }));
        }
        let mut out = Vec::with_capacity(tasks.len());
        let mut first_error = None;
        for task in tasks {
            match task.await {
                Ok(Ok(Ok(loaded))) => out.push(loaded),
                Ok(Ok(Err(e))) => {
                    first_error.get_or_insert(e);
                }
                Ok(Err(e)) | Err(e) => {
                    first_error.get_or_insert(RuntimeError::Engine(format!("image loader: {e}")));
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }
}

/// What a sandbox is made from (CRI's `PodSandboxConfig`, plus the volumes
/// it owns).
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// `metadata.namespace` (a DNS label).
    pub namespace: String,
    /// `metadata.name` (a DNS subdomain).
    pub name: String,
    /// `metadata.uid` (a UUID).
    pub uid: String,
    /// The pod's hostname (`HOSTNAME`, and its name on the pod network).
    pub hostname: String,
    /// The volumes, by index as [`crate::spec::MountSpec::volume`] names them.
    pub volumes: Vec<VolumeSpec>,
    /// Host ports forwarded to the pod.
    pub publish: Vec<PortMapping>,
    /// Which outside addresses the pod may reach.
    pub outbound: Vec<OutboundRule>,
    /// A network namespace of the host the pod is attached to (see
    /// [`HostNetns`]): the guests' listeners are mirrored there and
    /// outbound connections leave from it. `None` for wasipod's own pods.
    pub host_network: Option<HostNetns>,
}

impl SandboxConfig {
    /// A sandbox with no volumes, ports or outbound access, a new uid, and
    /// the name as hostname.
    pub fn new(namespace: &str, name: &str) -> Self {
        Self {
            namespace: namespace.to_string(),
            name: name.to_string(),
            uid: uuid::Uuid::new_v4().to_string(),
            hostname: name.chars().take(63).collect(),
            volumes: Vec::new(),
            publish: Vec::new(),
            outbound: Vec::new(),
            host_network: None,
        }
    }
}

impl From<&PodSpec> for SandboxConfig {
    fn from(spec: &PodSpec) -> Self {
        Self {
            namespace: spec.namespace.clone(),
            name: spec.name.clone(),
            uid: spec.uid.clone(),
            hostname: spec.hostname.clone(),
            volumes: spec.volumes.clone(),
            publish: spec.publish.clone(),
            outbound: spec.outbound.clone(),
            host_network: None,
        }
    }
}

/// A host port forwarded into a sandbox.
#[derive(Debug, Clone)]
pub struct Published {
    /// What was asked for.
    pub mapping: PortMapping,
    /// The address actually listened on.
    pub address: SocketAddr,
}

pub(crate) struct SandboxInner {
    node: Arc<Node>,
    config: SandboxConfig,
    layout: PodLayout,
    net: Arc<PodNet>,
    /// What its guests' `/dev` and `/etc` files hold.
    files: Arc<PodFiles>,
    published: Vec<Published>,
    /// Set once by [`PodSandbox::mount_volumes`].
    volumes: OnceLock<Volumes>,
    /// Every container's output, line by line.
    logs: Arc<Fanout<LogLine>>,
    /// The containers created in it (dropped ones are skipped).
    containers: Mutex<Vec<Weak<container::ContainerInner>>>,
    /// The names of every container ever created in it: whose runtime
    /// folders removal takes away.
    names: Mutex<BTreeSet<String>>,
}

impl Drop for SandboxInner {
    fn drop(&mut self) {
        // Published ports close and outbound connections end with the pod.
        self.net.stop.cancel();
    }
}

/// A pod sandbox: the pod's folder, volumes and network attachment. Cheap
/// to clone; its published ports close when the last clone is dropped.
#[derive(Clone)]
pub struct PodSandbox {
    inner: Arc<SandboxInner>,
}

impl PodSandbox {
    /// Creates a sandbox (CRI `RunPodSandbox`): its folder, a pod IP on the
    /// node's network, and its published ports, bound now so that a taken
    /// port fails here. Nothing is left behind on failure.
    ///
    /// Steps: check the names that make the folder's name; create the
    /// folder and record it as this node's; attach to the pod network;
    /// bind the published ports and start forwarding them.
    pub fn run(node: &Arc<Node>, config: SandboxConfig) -> Result<Self, RuntimeError> {
        // Each part is checked again here, for configs built in code: the
        // folder name must never lead anywhere but into `pods/`.
        if !crate::spec::is_dns_label(&config.namespace)
            || !crate::spec::is_dns_subdomain(&config.name)
            || !crate::spec::is_uuid(&config.uid)
        {
            return Err(RuntimeError::Limit {
                field: "metadata".into(),
                message: format!(
                    "namespace {:?}, name {:?} and uid {:?} must be a DNS label, a DNS subdomain and a UUID",
                    config.namespace, config.name, config.uid
                ),
            });
        }
        let layout = PodLayout::new(
            &node.state_dir,
            &config.namespace,
            &config.name,
            &config.uid,
        )
        .with_data(&node.data_dir, node.config.roots_on_disk);
        let dir = layout.dir().to_path_buf();
        // One call on the usual path; the whole chain if `pods/` is gone.
        std::fs::create_dir(&dir)
            .or_else(|_| std::fs::create_dir_all(&dir))
            .map_err(|e| RuntimeError::Io {
                path: dir.clone(),
                source: e,
            })?;
        let attached = Self::attach(node, &config);
        let (net, published) = match attached {
            Ok(a) => a,
            Err(e) => {
                let mut aside: Vec<PathBuf> = state::move_aside(&dir, &node.owner.trash())
                    .into_iter()
                    .collect();
                if layout.data() != layout.dir() {
                    aside.extend(state::move_aside(layout.data(), &node.data_trash()));
                }
                state::remove_in_background(aside);
                return Err(e);
            }
        };
        // A temporary state folder is reclaimed whole if this process
        // dies: its pods need no record.
        if !node.is_temporary() {
            let folder = PodLayout::folder_name(&config.namespace, &config.name, &config.uid);
            node.owner.record(&folder);
            if let Some(data) = &node.data_owner {
                data.record(&folder);
            }
        }
        Ok(Self {
            inner: Arc::new(SandboxInner {
                node: node.clone(),
                files: PodFiles::new(node.placeholders.clone(), &config.hostname, net.ip.into()),
                config,
                layout,
                net,
                published,
                volumes: OnceLock::new(),
                logs: Arc::new(Fanout::new(4096)),
                containers: Mutex::new(Vec::new()),
                names: Mutex::new(BTreeSet::new()),
            }),
        })
    }

    /// A pod IP, then the published ports (bound, and forwarded to the pod
    /// IP until the sandbox goes).
    fn attach(
        node: &Node,
        config: &SandboxConfig,
    ) -> Result<(Arc<PodNet>, Vec<Published>), RuntimeError> {
        let net = node.network.attach(
            &config.hostname,
            config.outbound.clone(),
            config.host_network.clone(),
        )?;
        let mut listeners = Vec::with_capacity(config.publish.len());
        for m in &config.publish {
            let address = SocketAddr::new(m.host_ip, m.host_port);
            let listener = std::net::TcpListener::bind(address)
                .and_then(|l| l.set_nonblocking(true).map(|()| l))
                .and_then(tokio::net::TcpListener::from_std)
                .map_err(|e| RuntimeError::Publish {
                    source_field: m.source.clone(),
                    address,
                    message: e.to_string(),
                })?;
            listeners.push((m.clone(), listener));
        }
        let mut published = Vec::with_capacity(listeners.len());
        for (mapping, listener) in listeners {
            let address = listener
                .local_addr()
                .unwrap_or_else(|_| SocketAddr::new(mapping.host_ip, mapping.host_port));
            let target = SocketAddr::new(net.ip.into(), mapping.container_port);
            tokio::spawn(crate::net::bridge::publish(
                Arc::downgrade(&net),
                listener,
                target,
                net.stop.clone(),
            ));
            published.push(Published { mapping, address });
        }
        Ok((net, published))
    }

    /// Creates the volumes the sandbox owns (emptyDir, configMap, secret)
    /// and checks its hostPath folders. Kept apart from [`PodSandbox::run`]
    /// so that a pod worker can report a failed mount as the pod's status,
    /// as the kubelet does. A second call does nothing.
    pub fn mount_volumes(&self) -> Result<(), RuntimeError> {
        if self.inner.volumes.get().is_some() {
            return Ok(());
        }
        let volumes = Volumes::prepare(
            &self.inner.config.volumes,
            &self.inner.layout,
            [self.inner.node.owner.trash(), self.inner.node.data_trash()],
        )?;
        if let Err(extra) = self.inner.volumes.set(volumes) {
            // Two callers at once: the second set is not needed.
            extra.remove();
        }
        Ok(())
    }

    /// The host folder of the sandbox's volume `index` (as
    /// [`SandboxConfig::volumes`] lists them), once mounted.
    pub fn volume_dir(&self, index: usize) -> Option<PathBuf> {
        self.inner.volumes.get()?.host_dir(index)
    }

    /// Adds a host folder to the mounted volumes and returns its index for
    /// [`crate::spec::MountSpec::volume`] (`field` names it in errors): how
    /// the containerd shim gives a container the bind mounts of its OCI
    /// spec, which arrive after the sandbox was made. It is used as a
    /// `hostPath` volume is; the sandbox never removes it.
    pub fn add_host_volume(&self, path: &Path, field: &str) -> Result<usize, RuntimeError> {
        Volumes::add_host_dir(container::volumes_of(&self.inner)?, path, field)
    }

    /// What it was made from.
    pub fn config(&self) -> &SandboxConfig {
        &self.inner.config
    }

    /// The node it runs on.
    pub fn node(&self) -> &Arc<Node> {
        &self.inner.node
    }

    /// The pod IP.
    pub fn ip(&self) -> Ipv4Addr {
        self.inner.net.ip
    }

    /// The pod's folder and the paths in it.
    pub fn layout(&self) -> &PodLayout {
        &self.inner.layout
    }

    /// The host ports forwarded into the pod.
    pub fn published(&self) -> &[Published] {
        &self.inner.published
    }

    /// Every container's output from now on, line by line.
    pub fn subscribe_logs(&self) -> broadcast::Receiver<LogLine> {
        self.inner.logs.subscribe()
    }

    /// A connection to `port` of the pod as from its own loopback (what
    /// `kubectl port-forward` opens: the kubelet dials `localhost` in the
    /// pod's network namespace), as a tokio stream: bytes flow both ways,
    /// with half-close, until either side closes or the pod goes away.
    /// Nothing listening there is `ConnectionRefused`.
    pub fn connect(&self, port: u16) -> std::io::Result<tokio::io::DuplexStream> {
        static NEXT_PORT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(50000);
        let source = NEXT_PORT
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            .max(50000);
        let loopback = Ipv4Addr::LOCALHOST.into();
        let (to_pod, from_pod) = self
            .inner
            .net
            .enqueue(
                SocketAddr::new(loopback, port),
                SocketAddr::new(loopback, source),
            )
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::ConnectionRefused))?;
        Ok(crate::net::bridge::stream(to_pod, from_pod))
    }

    pub(crate) fn net(&self) -> &Arc<PodNet> {
        &self.inner.net
    }

    /// Creates a container (CRI `CreateContainer`): its log file for this
    /// attempt (the log of attempt − 2 is removed: the current and the
    /// previous run's stay), a fresh runtime folder, its mounts opened.
    /// The volumes must be mounted.
    pub fn create_container(&self, config: ContainerConfig) -> Result<Container, RuntimeError> {
        lock(&self.inner.names).insert(config.name.clone());
        let container = Container::create(self.inner.clone(), config)?;
        let mut all = lock(&self.inner.containers);
        all.retain(|c| c.strong_count() > 0);
        all.push(container.downgrade());
        Ok(container)
    }

    /// Ends every container at once ([`Signal::Kill`]) and closes the
    /// published ports and outbound connections (CRI `StopPodSandbox`).
    pub fn stop(&self) {
        let containers: Vec<Container> = lock(&self.inner.containers)
            .iter()
            .filter_map(Container::upgrade)
            .collect();
        for c in containers {
            c.kill(Signal::Kill);
        }
        self.inner.net.stop.cancel();
    }

    /// Stops the sandbox and takes away what it holds on disk (CRI
    /// `RemovePodSandbox`): its volumes, containers' roots and runtime
    /// folders, and its whole
    /// folder with the logs unless [`RuntimeConfig::retain_deleted_pods`].
    /// Each is moved aside at once and removed in the background. Its pod
    /// IP is free once the last clone of the sandbox and of its containers
    /// is dropped.
    pub fn remove(&self) {
        self.release();
        let trash = self.inner.node.owner.trash();
        if !self.inner.node.config.retain_deleted_pods
            && let Some(aside) = state::move_aside(self.inner.layout.dir(), &trash)
        {
            state::remove_in_background(vec![aside]);
        }
    }

    /// Stops the sandbox and takes away its volatile parts (volumes,
    /// containers' roots and runtime folders, its folder in a separate data
    /// folder), keeping its folder with the logs and the record: what a
    /// runtime that stops leaves of a pod it will bring back
    /// ([`RuntimeConfig::keep_records`]).
    pub fn release(&self) {
        self.stop();
        let trash = self.inner.node.owner.trash();
        let data_trash = self.inner.node.data_trash();
        if let Some(v) = self.inner.volumes.get() {
            v.remove();
        }
        let mut aside = Vec::new();
        for c in lock(&self.inner.names).iter() {
            volume::remove_tree(&self.inner.layout.run_dir(c), &trash, &mut aside);
            let root_trash = self.inner.node.root_trash(&self.inner.layout);
            volume::remove_tree(&self.inner.layout.root_dir(c), &root_trash, &mut aside);
        }
        // Its folder in a separate data folder holds only what guests
        // wrote: it goes whole.
        let data = self.inner.layout.data();
        if data != self.inner.layout.dir() {
            aside.extend(state::move_aside(data, &data_trash));
        }
        state::remove_in_background(aside);
    }
}
