//! The task service: containerd's task API over one wasipod pod sandbox.
//!
//! One shim process serves one pod: the CRI's sandbox task (the pod
//! itself, running no guest) and every container of that sandbox, or one
//! container started outside the CRI in a sandbox of its own. Each
//! container task is a [`Container`] of the sandbox; each exec runs the
//! container's program once more in it ([`Container::exec_stdio`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use async_trait::async_trait;
use containerd_shim::asynchronous::ExitSignal;
use containerd_shim::protos::api::{self, Status as TaskStatus};
use containerd_shim::protos::cgroups::metrics::{MemoryEntry, MemoryStat, Metrics};
use containerd_shim::protos::events::task::{
    TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskIO, TaskOOM, TaskStart,
};
use containerd_shim::protos::protobuf::MessageField;
use containerd_shim::protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim::protos::shim_async::Task as TaskApi;
use containerd_shim::protos::topics;
use containerd_shim::protos::ttrpc::context::Context;
use containerd_shim::publisher::RemotePublisher;
use containerd_shim::{TtrpcContext, TtrpcResult};
use tokio::sync::watch;
use wasipod::RuntimeConfig;
use wasipod::sandbox::{
    Container, ContainerConfig, Node, PodSandbox, SandboxConfig, Signal, StdioPaths,
};
use wasipod::spec::MountSpec;
use wasipod::status::ExitReason;

use crate::bundle::{self, Bundle, Role};
use crate::error;
use crate::rootfs;

/// How a process (a task or an exec) ended.
#[derive(Debug, Clone, Copy)]
struct Exited {
    code: u32,
    at: SystemTime,
}

/// Filled once, when the process ends.
type ExitCell = watch::Sender<Option<Exited>>;

enum Kind {
    /// The CRI's pod sandbox: no guest; "running" from its start until it
    /// is killed.
    Sandbox,
    /// A container of the sandbox.
    Container(Container),
}

struct Task {
    bundle: PathBuf,
    stdio: StdioPaths,
    kind: Kind,
    started: bool,
    exit: ExitCell,
    /// The root file system this shim mounted (unmounted on delete).
    rootfs: Option<PathBuf>,
    execs: HashMap<String, Exec>,
}

struct Exec {
    argv: Vec<String>,
    stdio: StdioPaths,
    started: bool,
    exit: ExitCell,
    /// Ends the exec's guest (it ends with 137).
    abort: Option<tokio::task::AbortHandle>,
}

#[derive(Default)]
struct State {
    /// The pod: made by the sandbox task, or by a standalone container.
    sandbox: Option<PodSandbox>,
    tasks: HashMap<String, Task>,
}

struct Inner {
    namespace: String,
    /// The shim's own folder: the node's state (see [`state_dir`]).
    state_dir: PathBuf,
    publisher: RemotePublisher,
    /// Signalled to end the shim (Shutdown with no task left).
    exit: Arc<ExitSignal>,
    node: Mutex<Option<Arc<Node>>>,
    state: Mutex<State>,
}

/// The task service of one shim process.
#[derive(Clone)]
pub struct Service {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn timestamp(at: SystemTime) -> Timestamp {
    let d = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
        ..Default::default()
    }
}

fn pid() -> u32 {
    std::process::id()
}

fn path_of(s: &str) -> Option<PathBuf> {
    (!s.is_empty()).then(|| PathBuf::from(s))
}

/// The folder of the shim serving pod `group` (the sandbox's id, or a
/// standalone container's) in containerd namespace `namespace`:
/// `$WASIPOD_SHIM_ROOT/<namespace>/<group>` (default root
/// `/run/wasipod-shim`). It holds the node's state (pod folders, runtime
/// folders, guests' roots) and goes when the shim ends.
pub fn state_dir(namespace: &str, group: &str) -> PathBuf {
    std::env::var_os("WASIPOD_SHIM_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/run/wasipod-shim"))
        .join(namespace)
        .join(group)
}

/// The node-wide compile cache: `$WASIPOD_CACHE_DIR`, else
/// `/var/lib/wasipod/cache`, shared by every shim process of the node.
fn cache_dir() -> PathBuf {
    std::env::var_os("WASIPOD_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/lib/wasipod/cache"))
}

impl Service {
    /// A service publishing its events to containerd through `publisher`.
    pub fn new(
        namespace: &str,
        group: &str,
        publisher: RemotePublisher,
        exit: Arc<ExitSignal>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                namespace: namespace.to_string(),
                state_dir: state_dir(namespace, group),
                publisher,
                exit,
                node: Mutex::new(None),
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// The node (engine, cache, pod network), made at the first task.
    fn node(&self) -> TtrpcResult<Arc<Node>> {
        let mut node = lock(&self.inner.node);
        if let Some(n) = &*node {
            return Ok(n.clone());
        }
        let config = RuntimeConfig::default()
            .cache_dir(cache_dir())
            .state_dir(&self.inner.state_dir);
        let made = Node::new(&config).map_err(error::runtime)?;
        *node = Some(made.clone());
        Ok(made)
    }

    async fn publish(
        &self,
        topic: &str,
        event: Box<dyn containerd_shim::protos::protobuf::MessageDyn>,
    ) {
        if let Err(e) = self
            .inner
            .publisher
            .publish(Context::default(), topic, &self.inner.namespace, event)
            .await
        {
            log::warn!("publishing {topic}: {e}");
        }
    }

    /// Makes the pod sandbox a bundle describes.
    fn run_sandbox(&self, id: &str, b: &Bundle) -> TtrpcResult<PodSandbox> {
        let node = self.node()?;
        let (namespace, name, uid) = b.pod_identity(id, &self.inner.namespace);
        let mut config = SandboxConfig::new(&namespace, &name);
        if let Some(uid) = uid {
            config.uid = uid;
        }
        if let Some(h) = b.hostname() {
            config.hostname = h;
        }
        config.host_network = b.host_network();
        config.outbound = Bundle::outbound(&config.host_network);
        let sandbox = PodSandbox::run(&node, config).map_err(error::runtime)?;
        if let Err(e) = sandbox.mount_volumes() {
            sandbox.remove();
            return Err(error::runtime(e));
        }
        Ok(sandbox)
    }

    /// Creates a container of `sandbox` from its bundle (its root file
    /// system mounted at `rootfs`).
    async fn create_container(
        &self,
        id: &str,
        b: &Bundle,
        sandbox: &PodSandbox,
        stdio: StdioPaths,
    ) -> TtrpcResult<Container> {
        let module = b.module_path().map_err(error::internal)?;
        let image = sandbox
            .node()
            .load_image(&module, "process.args[0]")
            .await
            .map_err(error::runtime)?
            .image;
        let root = b.rootfs();
        // The image's root is the guest's `/`; its `/tmp` is made as
        // a runtime does for a mount point.
        if !b.root_read_only() {
            let _ = std::fs::create_dir(root.join("tmp"));
        }
        let mut mounts = Vec::new();
        let root_volume = sandbox
            .add_host_volume(&root, "root.path")
            .map_err(error::runtime)?;
        mounts.push(MountSpec {
            volume: root_volume,
            mount_path: "/".into(),
            read_only: b.root_read_only(),
            sub_path: None,
            field: "root".into(),
        });
        let (binds, _) = b.bind_mounts();
        for bind in binds {
            let field = format!("mounts[{}]", bind.index);
            let volume = sandbox
                .add_host_volume(&bind.source, &field)
                .map_err(error::runtime)?;
            mounts.push(MountSpec {
                volume,
                mount_path: bind.destination,
                read_only: bind.read_only,
                sub_path: None,
                field,
            });
        }
        let cwd = b.cwd();
        let working_dir_mount = cwd.as_deref().and_then(|cwd| {
            let paths: Vec<(usize, String)> = mounts
                .iter()
                .enumerate()
                .map(|(i, m)| (i, m.mount_path.clone()))
                .collect();
            bundle::working_dir_mount(&paths, cwd)
        });
        let (memory, cpu_limit, cpu_request) = b.resources();
        let mut config = ContainerConfig::new(id, image);
        config.argv = b.args();
        config.env = b.env();
        config.mounts = mounts;
        config.working_dir = cwd;
        config.working_dir_mount = working_dir_mount;
        config.memory_limit = memory;
        config.cpu_limit_millis = cpu_limit;
        config.cpu_request_millis = cpu_request;
        config.stdio = stdio;
        config.field = format!("container {}", b.container_name(id));
        sandbox.create_container(config).map_err(error::runtime)
    }

    /// Watches a started container: when it ends, copies its termination
    /// message where the kubelet reads it, records the exit, and tells
    /// containerd (an OOM event first, for a guest stopped at its memory
    /// limit).
    fn monitor(
        &self,
        id: String,
        container: Container,
        exit: ExitCell,
        termination: Option<PathBuf>,
    ) {
        let this = self.clone();
        tokio::spawn(async move {
            let ended = container.wait().await;
            if let Some(file) = termination {
                let message = container.termination_message();
                if !message.is_empty()
                    && let Err(e) = std::fs::write(&file, &message)
                {
                    log::warn!("writing the termination message to {}: {e}", file.display());
                }
            }
            // Now, not the status' time: that one has Kubernetes' whole
            // seconds, and containerd wants the moment.
            let exited = Exited {
                code: ended.exit.code as u32,
                at: SystemTime::now(),
            };
            if ended.exit.reason == ExitReason::OomKilled {
                this.publish(
                    topics::TASK_OOM_EVENT_TOPIC,
                    Box::new(TaskOOM {
                        container_id: id.clone(),
                        ..Default::default()
                    }),
                )
                .await;
            }
            exit.send_replace(Some(exited));
            // As when a container's init process ends, its execs end too.
            let execs: Vec<(String, Exited)> = {
                let mut state = lock(&this.inner.state);
                state
                    .tasks
                    .get_mut(&id)
                    .map(|task| {
                        task.execs
                            .iter_mut()
                            .filter(|(_, e)| e.started && e.exit.borrow().is_none())
                            .filter_map(|(exec_id, e)| {
                                Self::kill_exec(e, 9);
                                e.exit.borrow().map(|x| (exec_id.clone(), x))
                            })
                            .collect()
                    })
                    .unwrap_or_default()
            };
            for (exec_id, exited) in execs {
                this.publish_exit(&id, &exec_id, exited).await;
            }
            this.publish_exit(&id, &id, exited).await;
        });
    }

    async fn publish_exit(&self, container: &str, process: &str, exited: Exited) {
        self.publish(
            topics::TASK_EXIT_EVENT_TOPIC,
            Box::new(TaskExit {
                container_id: container.to_string(),
                id: process.to_string(),
                pid: pid(),
                exit_status: exited.code,
                exited_at: MessageField::some(timestamp(exited.at)),
                ..Default::default()
            }),
        )
        .await;
    }

    /// Starts an exec: the container's program once more, with its argv,
    /// its own streams, in the same sandbox.
    fn start_exec(&self, id: &str, exec_id: &str) -> TtrpcResult<()> {
        let mut state = lock(&self.inner.state);
        let task = state.tasks.get_mut(id).ok_or_else(|| error::no_task(id))?;
        let Kind::Container(container) = &task.kind else {
            return Err(error::invalid(
                "the pod sandbox runs no program to exec into",
            ));
        };
        let container = container.clone();
        let exec = task
            .execs
            .get_mut(exec_id)
            .ok_or_else(|| error::not_found(&format!("exec {exec_id} of task {id}")))?;
        if exec.started {
            return Err(error::precondition(format!(
                "exec {exec_id} was already started"
            )));
        }
        exec.started = true;
        let (argv, stdio, exit) = (exec.argv.clone(), exec.stdio.clone(), exec.exit.clone());
        let this = self.clone();
        let (id, exec_id) = (id.to_string(), exec_id.to_string());
        let job = tokio::spawn(async move {
            let code = match container.exec_stdio(argv, &stdio).await {
                Ok(exit) => exit.code,
                Err(e) => {
                    log::warn!("exec {exec_id} of {id}: {e}");
                    128
                }
            };
            let exited = Exited {
                code: code as u32,
                at: SystemTime::now(),
            };
            exit.send_replace(Some(exited));
            this.publish_exit(&id, &exec_id, exited).await;
        });
        exec.abort = Some(job.abort_handle());
        Ok(())
    }

    /// The exit cell of a task or exec.
    fn exit_cell(&self, id: &str, exec_id: &str) -> TtrpcResult<ExitCell> {
        let state = lock(&self.inner.state);
        let task = state.tasks.get(id).ok_or_else(|| error::no_task(id))?;
        if exec_id.is_empty() {
            return Ok(task.exit.clone());
        }
        task.execs
            .get(exec_id)
            .map(|e| e.exit.clone())
            .ok_or_else(|| error::not_found(&format!("exec {exec_id} of task {id}")))
    }

    /// Ends an exec's guest (137; 143 for SIGTERM: an exec has no handler).
    fn kill_exec(exec: &mut Exec, signal: u32) {
        if exec.exit.borrow().is_some() {
            return;
        }
        if let Some(job) = exec.abort.take() {
            job.abort();
        }
        let code = if signal == 15 { 143 } else { 137 };
        exec.exit.send_replace(Some(Exited {
            code,
            at: SystemTime::now(),
        }));
    }
}

fn new_cell() -> ExitCell {
    watch::channel(None).0
}

#[async_trait]
impl TaskApi for Service {
    async fn create(
        &self,
        _ctx: &TtrpcContext,
        req: api::CreateTaskRequest,
    ) -> TtrpcResult<api::CreateTaskResponse> {
        if req.terminal {
            return Err(error::invalid(
                "a wasm guest has no terminal: run the container without a TTY (tty: false, no -t)",
            ));
        }
        if lock(&self.inner.state).tasks.contains_key(&req.id) {
            return Err(error::status(
                containerd_shim::protos::ttrpc::Code::ALREADY_EXISTS,
                format!("task {} already exists", req.id),
            ));
        }
        let b = Bundle::load(Path::new(&req.bundle)).map_err(error::internal)?;
        if b.terminal() {
            return Err(error::invalid(
                "process.terminal: a wasm guest has no terminal: run the container without a TTY",
            ));
        }
        let stdio = StdioPaths {
            stdin: path_of(&req.stdin),
            stdout: path_of(&req.stdout),
            stderr: path_of(&req.stderr),
        };
        let role = b.role();
        let kind = match &role {
            Role::Sandbox => {
                let sandbox = self.run_sandbox(&req.id, &b)?;
                lock(&self.inner.state).sandbox = Some(sandbox);
                Kind::Sandbox
            }
            Role::InSandbox(_) | Role::Standalone => {
                let existing = lock(&self.inner.state).sandbox.clone();
                let (sandbox, own) = match (&role, existing) {
                    (_, Some(s)) => (s, false),
                    (Role::Standalone, None) => (self.run_sandbox(&req.id, &b)?, true),
                    (_, None) => {
                        return Err(error::precondition(format!(
                            "the pod sandbox of container {} is not served by this shim",
                            req.id
                        )));
                    }
                };
                let mounted = rootfs::mount(&req.rootfs, &b.rootfs()).map_err(error::internal)?;
                let made = self
                    .create_container(&req.id, &b, &sandbox, stdio.clone())
                    .await;
                match made {
                    Ok(c) => {
                        if own {
                            lock(&self.inner.state).sandbox = Some(sandbox);
                        }
                        lock(&self.inner.state).tasks.insert(
                            req.id.clone(),
                            Task {
                                bundle: b.dir.clone(),
                                stdio: stdio.clone(),
                                kind: Kind::Container(c),
                                started: false,
                                exit: new_cell(),
                                rootfs: mounted.then(|| b.rootfs()),
                                execs: HashMap::new(),
                            },
                        );
                        self.publish_create(&req).await;
                        return Ok(api::CreateTaskResponse {
                            pid: pid(),
                            ..Default::default()
                        });
                    }
                    Err(e) => {
                        if mounted {
                            rootfs::unmount(&b.rootfs());
                        }
                        if own {
                            sandbox.remove();
                        }
                        return Err(e);
                    }
                }
            }
        };
        lock(&self.inner.state).tasks.insert(
            req.id.clone(),
            Task {
                bundle: b.dir.clone(),
                stdio,
                kind,
                started: false,
                exit: new_cell(),
                rootfs: None,
                execs: HashMap::new(),
            },
        );
        self.publish_create(&req).await;
        Ok(api::CreateTaskResponse {
            pid: pid(),
            ..Default::default()
        })
    }

    async fn start(
        &self,
        _ctx: &TtrpcContext,
        req: api::StartRequest,
    ) -> TtrpcResult<api::StartResponse> {
        if !req.exec_id.is_empty() {
            self.start_exec(&req.id, &req.exec_id)?;
            self.publish(
                topics::TASK_EXEC_STARTED_EVENT_TOPIC,
                Box::new(TaskExecStarted {
                    container_id: req.id.clone(),
                    exec_id: req.exec_id.clone(),
                    pid: pid(),
                    ..Default::default()
                }),
            )
            .await;
            return Ok(api::StartResponse {
                pid: pid(),
                ..Default::default()
            });
        }
        let started = {
            let mut state = lock(&self.inner.state);
            let task = state
                .tasks
                .get_mut(&req.id)
                .ok_or_else(|| error::no_task(&req.id))?;
            if task.started {
                return Err(error::precondition(format!(
                    "task {} was already started",
                    req.id
                )));
            }
            task.started = true;
            match &task.kind {
                Kind::Sandbox => None,
                Kind::Container(c) => {
                    c.start().map_err(error::runtime)?;
                    let termination = Bundle::load(&task.bundle)
                        .ok()
                        .and_then(|b| b.bind_mounts().1);
                    Some((c.clone(), task.exit.clone(), termination))
                }
            }
        };
        self.publish(
            topics::TASK_START_EVENT_TOPIC,
            Box::new(TaskStart {
                container_id: req.id.clone(),
                pid: pid(),
                ..Default::default()
            }),
        )
        .await;
        if let Some((container, exit, termination)) = started {
            self.monitor(req.id.clone(), container, exit, termination);
        }
        Ok(api::StartResponse {
            pid: pid(),
            ..Default::default()
        })
    }

    async fn state(
        &self,
        _ctx: &TtrpcContext,
        req: api::StateRequest,
    ) -> TtrpcResult<api::StateResponse> {
        let state = lock(&self.inner.state);
        let task = state
            .tasks
            .get(&req.id)
            .ok_or_else(|| error::no_task(&req.id))?;
        let (started, exited, stdio) = if req.exec_id.is_empty() {
            (task.started, *task.exit.borrow(), &task.stdio)
        } else {
            let e = task
                .execs
                .get(&req.exec_id)
                .ok_or_else(|| error::not_found(&format!("exec {}", req.exec_id)))?;
            (e.started, *e.exit.borrow(), &e.stdio)
        };
        let status = match (started, exited) {
            (_, Some(_)) => TaskStatus::STOPPED,
            (true, None) => TaskStatus::RUNNING,
            (false, None) => TaskStatus::CREATED,
        };
        let show = |p: &Option<PathBuf>| {
            p.as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        };
        Ok(api::StateResponse {
            id: req.id.clone(),
            exec_id: req.exec_id.clone(),
            bundle: task.bundle.display().to_string(),
            pid: pid(),
            status: status.into(),
            stdin: show(&stdio.stdin),
            stdout: show(&stdio.stdout),
            stderr: show(&stdio.stderr),
            terminal: false,
            exit_status: exited.map_or(0, |e| e.code),
            exited_at: exited.map(|e| timestamp(e.at)).into(),
            ..Default::default()
        })
    }

    async fn wait(
        &self,
        _ctx: &TtrpcContext,
        req: api::WaitRequest,
    ) -> TtrpcResult<api::WaitResponse> {
        let cell = self.exit_cell(&req.id, &req.exec_id)?;
        let mut rx = cell.subscribe();
        drop(cell);
        let exited = match rx.wait_for(Option::is_some).await {
            Ok(e) => e.unwrap_or(Exited {
                code: 137,
                at: SystemTime::now(),
            }),
            // The task was deleted while waited on.
            Err(_) => Exited {
                code: 137,
                at: SystemTime::now(),
            },
        };
        Ok(api::WaitResponse {
            exit_status: exited.code,
            exited_at: MessageField::some(timestamp(exited.at)),
            ..Default::default()
        })
    }

    async fn kill(&self, _ctx: &TtrpcContext, req: api::KillRequest) -> TtrpcResult<api::Empty> {
        let signal = match req.signal {
            // SIGTERM, and the signals a runtime sends to ask a process to
            // end (SIGINT, SIGQUIT, SIGHUP), follow the SIGTERM contract.
            1 | 2 | 3 | 15 => Signal::Term,
            9 => Signal::Kill,
            0 => Signal::Term,
            other => {
                return Err(error::invalid(format!(
                    "signal {other}: a wasm guest takes SIGTERM (wasipod's file contract) and SIGKILL only"
                )));
            }
        };
        // The processes this kill ended at once, to tell containerd about.
        let mut ended: Vec<(String, Exited)> = Vec::new();
        {
            let mut state = lock(&self.inner.state);
            let task = state
                .tasks
                .get_mut(&req.id)
                .ok_or_else(|| error::no_task(&req.id))?;
            if !req.exec_id.is_empty() {
                let exec = task
                    .execs
                    .get_mut(&req.exec_id)
                    .ok_or_else(|| error::not_found(&format!("exec {}", req.exec_id)))?;
                if exec.exit.borrow().is_some() {
                    return Err(error::not_found(&format!(
                        "process {}: already finished",
                        req.exec_id
                    )));
                }
                if req.signal != 0 {
                    Self::kill_exec(exec, req.signal);
                    ended.extend(exec.exit.borrow().map(|x| (req.exec_id.clone(), x)));
                }
            } else {
                if task.exit.borrow().is_some() {
                    return Err(error::not_found(&format!(
                        "process {}: already finished",
                        req.id
                    )));
                }
                if req.signal == 0 {
                    return Ok(api::Empty::default());
                }
                if req.all {
                    for (exec_id, exec) in task.execs.iter_mut() {
                        if exec.exit.borrow().is_none() {
                            Self::kill_exec(exec, req.signal);
                            ended.extend(exec.exit.borrow().map(|x| (exec_id.clone(), x)));
                        }
                    }
                }
                match &task.kind {
                    Kind::Container(c) => c.kill(signal),
                    Kind::Sandbox => {
                        // The pause process exits 0 on SIGTERM; SIGKILL is 137.
                        let exited = Exited {
                            code: if signal == Signal::Kill { 137 } else { 0 },
                            at: SystemTime::now(),
                        };
                        task.exit.send_replace(Some(exited));
                        ended.push((req.id.clone(), exited));
                    }
                }
            }
        }
        for (process, exited) in ended {
            self.publish_exit(&req.id, &process, exited).await;
        }
        Ok(api::Empty::default())
    }

    async fn exec(
        &self,
        _ctx: &TtrpcContext,
        req: api::ExecProcessRequest,
    ) -> TtrpcResult<api::Empty> {
        if req.terminal {
            return Err(error::invalid(
                "a wasm guest has no terminal: exec without a TTY (no -t)",
            ));
        }
        let process: oci_spec::runtime::Process = serde_json::from_slice(&req.spec.value)
            .map_err(|e| error::invalid(format!("exec spec: {e}")))?;
        let argv = process.args().clone().unwrap_or_default();
        if argv.is_empty() {
            return Err(error::invalid("exec spec: args is empty"));
        }
        {
            let mut state = lock(&self.inner.state);
            let task = state
                .tasks
                .get_mut(&req.id)
                .ok_or_else(|| error::no_task(&req.id))?;
            if !matches!(task.kind, Kind::Container(_)) {
                return Err(error::invalid(
                    "the pod sandbox runs no program to exec into",
                ));
            }
            if task.execs.contains_key(&req.exec_id) {
                return Err(error::status(
                    containerd_shim::protos::ttrpc::Code::ALREADY_EXISTS,
                    format!("exec {} already exists", req.exec_id),
                ));
            }
            task.execs.insert(
                req.exec_id.clone(),
                Exec {
                    argv,
                    stdio: StdioPaths {
                        stdin: path_of(&req.stdin),
                        stdout: path_of(&req.stdout),
                        stderr: path_of(&req.stderr),
                    },
                    started: false,
                    exit: new_cell(),
                    abort: None,
                },
            );
        }
        self.publish(
            topics::TASK_EXEC_ADDED_EVENT_TOPIC,
            Box::new(TaskExecAdded {
                container_id: req.id.clone(),
                exec_id: req.exec_id.clone(),
                ..Default::default()
            }),
        )
        .await;
        Ok(api::Empty::default())
    }

    async fn delete(
        &self,
        _ctx: &TtrpcContext,
        req: api::DeleteRequest,
    ) -> TtrpcResult<api::DeleteResponse> {
        if !req.exec_id.is_empty() {
            let mut state = lock(&self.inner.state);
            let task = state
                .tasks
                .get_mut(&req.id)
                .ok_or_else(|| error::no_task(&req.id))?;
            let Some(exec) = task.execs.get(&req.exec_id) else {
                return Err(error::not_found(&format!("exec {}", req.exec_id)));
            };
            let exited = *exec.exit.borrow();
            let exited = match (exec.started, exited) {
                (true, None) => {
                    return Err(error::precondition(format!(
                        "exec {} is running: kill it first",
                        req.exec_id
                    )));
                }
                (_, e) => e.unwrap_or(Exited {
                    code: 0,
                    at: SystemTime::now(),
                }),
            };
            task.execs.remove(&req.exec_id);
            return Ok(api::DeleteResponse {
                pid: pid(),
                exit_status: exited.code,
                exited_at: MessageField::some(timestamp(exited.at)),
                ..Default::default()
            });
        }
        let task = {
            let mut state = lock(&self.inner.state);
            let task = state
                .tasks
                .get(&req.id)
                .ok_or_else(|| error::no_task(&req.id))?;
            if task.started && task.exit.borrow().is_none() {
                return Err(error::precondition(format!(
                    "task {} is running: kill it first",
                    req.id
                )));
            }
            state.tasks.remove(&req.id).expect("looked up above")
        };
        for exec in task.execs.into_values() {
            if let Some(job) = exec.abort {
                job.abort();
            }
        }
        let exited = match &task.kind {
            Kind::Container(c) => {
                // Never started: it ends without running.
                c.kill(Signal::Kill);
                let ended = c.wait().await;
                let exited = task.exit.borrow().unwrap_or(Exited {
                    code: ended.exit.code as u32,
                    at: SystemTime::now(),
                });
                c.clone().remove().await;
                exited
            }
            Kind::Sandbox => {
                let sandbox = lock(&self.inner.state).sandbox.take();
                if let Some(s) = sandbox {
                    s.remove();
                }
                task.exit.borrow().unwrap_or(Exited {
                    code: 0,
                    at: SystemTime::now(),
                })
            }
        };
        if let Some(root) = &task.rootfs {
            rootfs::unmount(root);
        }
        // A standalone container's pod goes with it.
        {
            let mut state = lock(&self.inner.state);
            if state.tasks.is_empty()
                && let Some(s) = state.sandbox.take()
            {
                s.remove();
            }
        }
        self.publish(
            topics::TASK_DELETE_EVENT_TOPIC,
            Box::new(TaskDelete {
                container_id: req.id.clone(),
                id: req.id.clone(),
                pid: pid(),
                exit_status: exited.code,
                exited_at: MessageField::some(timestamp(exited.at)),
                ..Default::default()
            }),
        )
        .await;
        Ok(api::DeleteResponse {
            pid: pid(),
            exit_status: exited.code,
            exited_at: MessageField::some(timestamp(exited.at)),
            ..Default::default()
        })
    }

    async fn pids(
        &self,
        _ctx: &TtrpcContext,
        req: api::PidsRequest,
    ) -> TtrpcResult<api::PidsResponse> {
        let state = lock(&self.inner.state);
        if !state.tasks.contains_key(&req.id) {
            return Err(error::no_task(&req.id));
        }
        // Every guest of the pod runs in this one process.
        Ok(api::PidsResponse {
            processes: vec![api::ProcessInfo {
                pid: pid(),
                ..Default::default()
            }],
            ..Default::default()
        })
    }

    async fn stats(
        &self,
        _ctx: &TtrpcContext,
        req: api::StatsRequest,
    ) -> TtrpcResult<api::StatsResponse> {
        let usage = {
            let state = lock(&self.inner.state);
            let task = state
                .tasks
                .get(&req.id)
                .ok_or_else(|| error::no_task(&req.id))?;
            match &task.kind {
                Kind::Container(c) => c.memory_usage(),
                Kind::Sandbox => 0,
            }
        };
        // cgroups v1's shape, which `ctr task metrics` and the CRI read:
        // the memory the guest holds (linear memory and tables).
        let metrics = Metrics {
            memory: MessageField::some(MemoryStat {
                usage: MessageField::some(MemoryEntry {
                    usage,
                    ..Default::default()
                }),
                rss: usage,
                ..Default::default()
            }),
            ..Default::default()
        };
        let any = containerd_shim::util::convert_to_any(Box::new(metrics)).map_err(|e| {
            error::status(
                containerd_shim::protos::ttrpc::Code::INTERNAL,
                e.to_string(),
            )
        })?;
        Ok(api::StatsResponse {
            stats: MessageField::some(any),
            ..Default::default()
        })
    }

    async fn close_io(
        &self,
        _ctx: &TtrpcContext,
        req: api::CloseIORequest,
    ) -> TtrpcResult<api::Empty> {
        // A guest's stdin ends when the writer closes its end of the FIFO.
        let _ = self.exit_cell(&req.id, &req.exec_id)?;
        Ok(api::Empty::default())
    }

    async fn connect(
        &self,
        _ctx: &TtrpcContext,
        _req: api::ConnectRequest,
    ) -> TtrpcResult<api::ConnectResponse> {
        Ok(api::ConnectResponse {
            shim_pid: pid(),
            task_pid: pid(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            ..Default::default()
        })
    }

    async fn shutdown(
        &self,
        _ctx: &TtrpcContext,
        _req: api::ShutdownRequest,
    ) -> TtrpcResult<api::Empty> {
        // containerd asks after each Delete: the shim stays while a task of
        // its pod remains.
        if !lock(&self.inner.state).tasks.is_empty() {
            return Ok(api::Empty::default());
        }
        drop(lock(&self.inner.node).take());
        remove_state(&self.inner.state_dir);
        self.inner.exit.signal();
        Ok(api::Empty::default())
    }
}

impl Service {
    async fn publish_create(&self, req: &api::CreateTaskRequest) {
        self.publish(
            topics::TASK_CREATE_EVENT_TOPIC,
            Box::new(TaskCreate {
                container_id: req.id.clone(),
                bundle: req.bundle.clone(),
                rootfs: req.rootfs.clone(),
                io: MessageField::some(TaskIO {
                    stdin: req.stdin.clone(),
                    stdout: req.stdout.clone(),
                    stderr: req.stderr.clone(),
                    terminal: req.terminal,
                    ..Default::default()
                }),
                pid: pid(),
                ..Default::default()
            }),
        )
        .await;
    }
}

/// Removes a shim's folder (what the pods' removal left to background
/// threads included: the process is about to end).
pub fn remove_state(dir: &Path) {
    for _ in 0..3 {
        match std::fs::remove_dir_all(dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                log::warn!("removing {}: {e}", dir.display());
            }
            _ => break,
        }
    }
    // The namespace folder goes when it is empty.
    if let Some(parent) = dir.parent() {
        let _ = std::fs::remove_dir(parent);
    }
}
