//! One container of a sandbox: created, started, signalled, waited on,
//! exec'd into. The SIGTERM contract lives here: WASI has no signals, so a
//! guest that wants to hear SIGTERM creates `/run/wasipod/sigterm-handler`,
//! and "sending SIGTERM" makes `/run/wasipod/terminate` appear; a guest that
//! created no handler file ends at once with 143, like a process with the
//! default disposition. SIGKILL drops the guest's future: it ends wherever
//! it is, with 137.

use std::sync::{Arc, Mutex, Weak};

use tokio::sync::watch;

use super::SandboxInner;
use super::stdio::{ExecStreams, StdioPaths};
use super::volume::{ContainerRoot, RunDir, Volumes};
use crate::api::status::{self, Exit, ExitReason, Time};
use crate::engine::{
    GuestConfig, GuestStdio, HostDir, Image, Preopen, TERMINATION_MESSAGE_MAX, TerminationLog,
};
use crate::error::RuntimeError;
use crate::log::ContainerLog;
use crate::spec::{MountSpec, VolumeSource};
use crate::sync::lock;

/// Where the SIGTERM contract's files are, in the guest.
pub(crate) const RUN_DIR_GUEST: &str = "/run/wasipod";
/// Created by a guest that handles SIGTERM (in `/run/wasipod`).
pub const SIGTERM_HANDLER_FILE: &str = "sigterm-handler";
/// Created by wasipod when it sends SIGTERM (in `/run/wasipod`).
pub const TERMINATION_FILE: &str = "terminate";
pub use crate::spec::DEFAULT_TERMINATION_MESSAGE_PATH;
/// Most bytes of output an exec keeps.
const EXEC_OUTPUT_MAX: usize = 1 << 20;

/// What a container runs (CRI's `ContainerConfig`).
#[derive(Debug, Clone)]
pub struct ContainerConfig {
    /// The container's name in its pod.
    pub name: String,
    /// Which run of the container this is (0, 1, … as `restartCount`):
    /// names its log file.
    pub attempt: u32,
    /// The program.
    pub image: Arc<Image>,
    /// argv, `$(VAR)` already expanded (empty: the container's name).
    pub argv: Vec<String>,
    /// The environment, in order, already expanded. `HOSTNAME` is added
    /// (the pod's hostname) unless set, and so are the SIGTERM contract's
    /// `WASIPOD_SIGTERM_HANDLER` and `WASIPOD_TERMINATION_FILE`.
    pub env: Vec<(String, String)>,
    /// Volume mounts (into the sandbox's volumes).
    pub mounts: Vec<MountSpec>,
    /// The guest's working directory.
    pub working_dir: Option<String>,
    /// The mount holding `working_dir` (index into `mounts`) and the path
    /// inside it.
    pub working_dir_mount: Option<(usize, String)>,
    /// Most bytes of linear memory (and tables); past it the guest ends
    /// `OOMKilled`, 137.
    pub memory_limit: Option<u64>,
    /// `limits.cpu` in millicores: at most this share of each 100 ms
    /// period; past it the guest is throttled (CFS's quota).
    pub cpu_limit_millis: Option<u64>,
    /// `requests.cpu` in millicores: its weight on a contended thread.
    pub cpu_request_millis: Option<u64>,
    /// `securityContext.readOnlyRootFilesystem`: the guest's `/` (and the
    /// `/tmp` in it) cannot be written.
    pub read_only_root: bool,
    /// Where the guest writes its termination message
    /// ([`Container::termination_message`]); `None`:
    /// [`DEFAULT_TERMINATION_MESSAGE_PATH`].
    pub termination_message_path: Option<String>,
    /// Its standard streams, where they are not the defaults (no stdin;
    /// output into its log): the FIFOs containerd gives a task.
    pub stdio: StdioPaths,
    /// What to name in messages, e.g. `spec.containers[1]`.
    pub field: String,
}

impl ContainerConfig {
    /// A container running `image` with no arguments, mounts or limits.
    pub fn new(name: &str, image: Arc<Image>) -> Self {
        Self {
            name: name.to_string(),
            attempt: 0,
            image,
            argv: vec![name.to_string()],
            env: Vec::new(),
            mounts: Vec::new(),
            working_dir: None,
            working_dir_mount: None,
            memory_limit: None,
            cpu_limit_millis: None,
            cpu_request_millis: None,
            read_only_root: false,
            termination_message_path: None,
            stdio: StdioPaths::default(),
            field: name.to_string(),
        }
    }
}

/// A signal for [`Container::kill`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGTERM through the file contract: a guest with a handler file finds
    /// the termination file and may drain; one without ends at once (143).
    Term,
    /// SIGKILL: the guest ends at once, wherever it is (137).
    Kill,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerExit {
    /// Code, reason (Completed, Error, OOMKilled, StartError) and message.
    pub exit: Exit,
    /// When it started, if it did.
    pub started_at: Option<Time>,
    /// When it ended.
    pub finished_at: Time,
}

/// Where a container is in its one run.
#[derive(Debug, Clone, PartialEq)]
pub enum RunState {
    /// Created, not started.
    Created,
    /// Running since then.
    Running {
        /// When it started.
        started_at: Time,
    },
    /// Ended.
    Exited(ContainerExit),
}

/// The output and exit of an exec.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecResult {
    /// How the exec's guest ended.
    pub exit: Exit,
    /// Its stdout and stderr as they came (at most 1 MiB).
    pub output: Vec<u8>,
}

/// What a run's task and the handles share.
struct Run {
    state: watch::Sender<RunState>,
    /// Set to the exit code (137, 143) to end the guest at once.
    kill: watch::Sender<Option<i32>>,
}

pub(crate) struct ContainerInner {
    id: String,
    sandbox: Arc<SandboxInner>,
    config: ContainerConfig,
    /// The runtime folder (the guest's `/run/wasipod`).
    run_dir: RunDir,
    /// The guest's root, unless a volume is mounted at `/`.
    root: Option<ContainerRoot>,
    /// Its `/dev/termination-log`, shared by its run and its execs.
    termination: Arc<TerminationLog>,
    /// Bytes of memory and tables its run's guest holds.
    memory: Arc<std::sync::atomic::AtomicU64>,
    run: Arc<Run>,
    /// The guest's set-up, until it is started.
    pending: Mutex<Option<GuestConfig>>,
    task: Mutex<Option<tokio::task::AbortHandle>>,
}

impl Drop for ContainerInner {
    fn drop(&mut self) {
        // Nothing can reach the guest any more: it ends with its handles.
        if let Some(task) = lock(&self.task).take() {
            task.abort();
        }
    }
}

/// A container in a sandbox. Cheap to clone; the guest is stopped when the
/// last clone is dropped.
#[derive(Clone)]
pub struct Container {
    inner: Arc<ContainerInner>,
}

impl std::fmt::Debug for Container {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Container")
            .field("id", &self.inner.id)
            .field("state", &*self.inner.run.state.borrow())
            .finish()
    }
}

impl Container {
    /// Steps: the volumes must be mounted; the log of `attempt - 2` goes;
    /// a fresh root and runtime folder are made; the root and the mounts
    /// are opened; this attempt's log file is made; the guest's
    /// environment is completed.
    pub(super) fn create(
        sandbox: Arc<SandboxInner>,
        config: ContainerConfig,
    ) -> Result<Self, RuntimeError> {
        let volumes = volumes_of(&sandbox)?;
        let layout = &sandbox.layout;
        // As the kubelet does, only the current and the previous run's logs
        // are kept (`kubectl logs` and `kubectl logs --previous`).
        if let Some(old) = config.attempt.checked_sub(2) {
            crate::log::remove_run(&layout.log(&config.name, old));
        }
        let dirs = Volumes::fresh_dirs(
            layout,
            &config.name,
            config.attempt == 0,
            (!config.mounts.iter().any(|m| m.mount_path == "/")).then_some(config.read_only_root),
            &sandbox.node.owner.trash(),
            &sandbox.node.root_trash(layout),
        )?;
        let preopens = volumes.preopens(
            &config.mounts,
            config.working_dir.as_deref(),
            config.working_dir_mount.as_ref(),
            dirs.root.as_ref(),
            &config.field,
        )?;
        let log_path = layout.log(&config.name, config.attempt);
        let log = ContainerLog::create(
            &log_path,
            sandbox.node.config.log_max_bytes,
            &config.name,
            sandbox.logs.clone(),
            &sandbox.node.log_files,
        )
        .map_err(|e| RuntimeError::Io {
            path: log_path,
            source: e,
        })?;
        let termination = TerminationLog::new();
        let stdio = config.stdio.open()?;
        let mut guest = guest_config(
            &sandbox,
            &config,
            None,
            preopens,
            &dirs.run_dir.0,
            (log, stdio),
            &termination,
        );
        let memory = Arc::new(std::sync::atomic::AtomicU64::new(0));
        guest.memory_gauge = Some(memory.clone());
        let id = format!(
            "wasipod://{}/{}/{}",
            sandbox.config.uid, config.name, config.attempt
        );
        Ok(Self {
            inner: Arc::new(ContainerInner {
                id,
                sandbox,
                config,
                run_dir: dirs.run_dir,
                root: dirs.root,
                termination,
                memory,
                run: Arc::new(Run {
                    state: watch::channel(RunState::Created).0,
                    kill: watch::channel(None).0,
                }),
                pending: Mutex::new(Some(guest)),
                task: Mutex::new(None),
            }),
        })
    }

    pub(super) fn downgrade(&self) -> Weak<ContainerInner> {
        Arc::downgrade(&self.inner)
    }

    pub(super) fn upgrade(inner: &Weak<ContainerInner>) -> Option<Self> {
        inner.upgrade().map(|inner| Self { inner })
    }

    /// Its id (`wasipod://<pod uid>/<name>/<attempt>`), the `containerID`
    /// of its status.
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// What it was created from.
    pub fn config(&self) -> &ContainerConfig {
        &self.inner.config
    }

    /// Where its run is now.
    pub fn state(&self) -> RunState {
        self.inner.run.state.borrow().clone()
    }

    /// Starts the guest (CRI `StartContainer`) on the current tokio runtime.
    /// A container runs once: starting it again is refused.
    pub fn start(&self) -> Result<(), RuntimeError> {
        let Some(guest) = lock(&self.inner.pending).take() else {
            return Err(RuntimeError::FailedPrecondition {
                object: self.inner.id.clone(),
                message: "the container was already started or stopped".into(),
            });
        };
        let started_at = status::now();
        self.inner
            .run
            .state
            .send_replace(RunState::Running { started_at });
        let engine = self.inner.sandbox.node.engine.clone();
        let image = self.inner.config.image.clone();
        let run = self.inner.run.clone();
        let task = tokio::spawn(async move {
            let exit = tokio::select! {
                exit = engine.run(&image, guest) => exit,
                code = killed(&run.kill) => killed_exit(code),
            };
            run.state.send_replace(RunState::Exited(ContainerExit {
                exit,
                started_at: Some(started_at),
                finished_at: status::now(),
            }));
        });
        *lock(&self.inner.task) = Some(task.abort_handle());
        Ok(())
    }

    /// Sends a signal (CRI `StopContainer` sends [`Signal::Term`], then
    /// [`Signal::Kill`] after its timeout; the timeout is the caller's).
    /// A container that was never started ends without running.
    pub fn kill(&self, signal: Signal) {
        let code = match signal {
            Signal::Kill => 137,
            Signal::Term if !self.inner.run_dir.has(SIGTERM_HANDLER_FILE) => 143,
            Signal::Term => match self.inner.run_dir.place(TERMINATION_FILE, b"SIGTERM\n") {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(container = %self.inner.id, error = %e, "could not deliver SIGTERM; killing");
                    137
                }
            },
        };
        if lock(&self.inner.pending).take().is_some() {
            self.inner
                .run
                .state
                .send_replace(RunState::Exited(ContainerExit {
                    exit: killed_exit(code),
                    started_at: None,
                    finished_at: status::now(),
                }));
            return;
        }
        self.inner.run.kill.send_if_modified(|k| {
            if k.is_none() {
                *k = Some(code);
                true
            } else {
                false
            }
        });
    }

    /// Waits until the run has ended, however it ended.
    pub async fn wait(&self) -> ContainerExit {
        let mut state = self.inner.run.state.subscribe();
        loop {
            if let RunState::Exited(exit) = &*state.borrow_and_update() {
                return exit.clone();
            }
            if state.changed().await.is_err() {
                // Not reachable while `self` holds the sender.
                return ContainerExit {
                    exit: killed_exit(137),
                    started_at: None,
                    finished_at: status::now(),
                };
            }
        }
    }

    /// Removes the container (CRI `RemoveContainer`): a guest still
    /// running is killed, its root goes and its runtime folder
    /// (`/run/wasipod`) is emptied. Its log stays: the sandbox's removal
    /// takes it. Other clones of the handle see the container as exited.
    pub async fn remove(self) {
        self.kill(Signal::Kill);
        self.wait().await;
        let trash = self.inner.sandbox.node.owner.trash();
        let mut aside = Vec::new();
        if let Some(root) = &self.inner.root {
            let root_trash = self
                .inner
                .sandbox
                .node
                .root_trash(&self.inner.sandbox.layout);
            super::volume::remove_tree(&root.path, &root_trash, &mut aside);
        }
        if let Ok(entries) = std::fs::read_dir(&self.inner.run_dir.0) {
            for e in entries.flatten() {
                let path = e.path();
                match e.file_type() {
                    Ok(t) if t.is_dir() => super::volume::remove_tree(&path, &trash, &mut aside),
                    _ => {
                        let _ = std::fs::remove_file(&path);
                    }
                }
            }
        }
        super::state::remove_in_background(aside);
    }

    /// What the guest wrote to its termination message file
    /// ([`ContainerConfig::termination_message_path`]): at most its last
    /// 4 KiB, as the kubelet reads it; empty when there is none. The
    /// default path, `/dev/termination-log`, is a file the runtime keeps
    /// for each run; another path is read from the container's root or
    /// the volume mounted there.
    pub fn termination_message(&self) -> Vec<u8> {
        let config = &self.inner.config;
        match config.termination_message_path.as_deref() {
            None | Some(DEFAULT_TERMINATION_MESSAGE_PATH) => self.inner.termination.message(),
            Some(path) => volumes_of(&self.inner.sandbox)
                .ok()
                .and_then(|v| {
                    v.read_tail(
                        &config.mounts,
                        self.inner.root.as_ref(),
                        path,
                        TERMINATION_MESSAGE_MAX,
                    )
                })
                .unwrap_or_default(),
        }
    }

    /// Bytes of linear memory and tables its run's guest holds now (what
    /// `resources.limits.memory` limits); 0 before it starts.
    pub fn memory_usage(&self) -> u64 {
        self.inner.memory.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether the run has ended.
    pub fn has_exited(&self) -> bool {
        matches!(*self.inner.run.state.borrow(), RunState::Exited(_))
    }

    /// Runs the container's program once more with `argv`, in the same
    /// mounts, environment, runtime folder and network (CRI `ExecSync`),
    /// and returns its exit and output. Refused unless the container is
    /// running. Dropping the future ends the exec's guest.
    pub async fn exec(&self, argv: Vec<String>) -> Result<ExecResult, RuntimeError> {
        let log = ContainerLog::capture(
            EXEC_OUTPUT_MAX,
            &self.inner.config.name,
            &self.inner.sandbox.node.log_files,
        );
        let exit = self
            .exec_guest(argv, log.clone(), GuestStdio::default())
            .await?;
        Ok(ExecResult {
            exit,
            output: log.captured(),
        })
    }

    /// As [`Container::exec`], with the exec's own standard streams (what
    /// containerd gives an exec process: FIFOs) instead of a capture.
    pub async fn exec_stdio(
        &self,
        argv: Vec<String>,
        stdio: &StdioPaths,
    ) -> Result<Exit, RuntimeError> {
        let log = ContainerLog::capture(
            0,
            &self.inner.config.name,
            &self.inner.sandbox.node.log_files,
        );
        self.exec_guest(argv, log, stdio.open()?).await
    }

    /// As [`Container::exec`], with the caller's streams (see
    /// [`ExecStreams`]): what `kubectl exec` runs. Dropping the future
    /// ends the guest.
    pub async fn exec_streams(
        &self,
        argv: Vec<String>,
        streams: ExecStreams,
    ) -> Result<Exit, RuntimeError> {
        let log = ContainerLog::capture(
            0,
            &self.inner.config.name,
            &self.inner.sandbox.node.log_files,
        );
        self.exec_guest(argv, log, streams.into_guest()).await
    }

    /// Steps: the container must be running; its mounts are opened again;
    /// the exec's streams are opened; the guest runs to its end.
    async fn exec_guest(
        &self,
        argv: Vec<String>,
        log: ContainerLog,
        stdio: GuestStdio,
    ) -> Result<Exit, RuntimeError> {
        if !matches!(*self.inner.run.state.borrow(), RunState::Running { .. }) {
            return Err(RuntimeError::FailedPrecondition {
                object: self.inner.id.clone(),
                message: "container is not running".into(),
            });
        }
        let sandbox = &self.inner.sandbox;
        let config = &self.inner.config;
        let preopens = volumes_of(sandbox)?.preopens(
            &config.mounts,
            config.working_dir.as_deref(),
            config.working_dir_mount.as_ref(),
            self.inner.root.as_ref(),
            &config.field,
        )?;
        let guest = guest_config(
            sandbox,
            config,
            Some(argv),
            preopens,
            &self.inner.run_dir.0,
            (log, stdio),
            &self.inner.termination,
        );
        Ok(sandbox.node.engine.run(&config.image, guest).await)
    }
}

pub(super) fn volumes_of(sandbox: &SandboxInner) -> Result<&Volumes, RuntimeError> {
    sandbox
        .volumes
        .get()
        .ok_or_else(|| RuntimeError::FailedPrecondition {
            object: sandbox.layout.dir().display().to_string(),
            message: "the sandbox's volumes are not mounted".into(),
        })
}

/// How a guest of the container is set up — its run, or an exec (`argv`
/// replaced): the environment with `HOSTNAME` and the SIGTERM contract's
/// variables; its root and mounts plus `/run/wasipod`, `/dev` and `/etc`;
/// the pod network.
fn guest_config(
    sandbox: &SandboxInner,
    config: &ContainerConfig,
    argv: Option<Vec<String>>,
    mut preopens: Vec<Preopen>,
    run_path: &std::path::Path,
    (log, stdio): (ContainerLog, GuestStdio),
    termination: &Arc<TerminationLog>,
) -> GuestConfig {
    let mut env = config.env.clone();
    // As container runtimes do, HOSTNAME is the pod's hostname unless set.
    if !env.iter().any(|(k, _)| k == "HOSTNAME") {
        env.push(("HOSTNAME".into(), sandbox.config.hostname.clone()));
    }
    env.push((
        "WASIPOD_SIGTERM_HANDLER".into(),
        format!("{RUN_DIR_GUEST}/{SIGTERM_HANDLER_FILE}"),
    ));
    env.push((
        "WASIPOD_TERMINATION_FILE".into(),
        format!("{RUN_DIR_GUEST}/{TERMINATION_FILE}"),
    ));
    preopens.push(Preopen {
        host: HostDir::Path(run_path.to_path_buf()),
        guest: RUN_DIR_GUEST.into(),
        read_only: false,
    });
    // `/dev` and `/etc` as a container has them (see `engine::synthetic`),
    // unless a volume is mounted there.
    let placeholders = &sandbox.node.placeholders;
    let mut synthetic = false;
    for (guest, host) in [
        ("/dev", placeholders.dev_dir()),
        ("/etc", placeholders.etc_dir()),
    ] {
        if !config.mounts.iter().any(|m| m.mount_path == guest) {
            synthetic = true;
            preopens.push(Preopen {
                host: HostDir::Path(host),
                guest: guest.into(),
                read_only: true,
            });
        }
    }
    let argv = argv.unwrap_or_else(|| config.argv.clone());
    GuestConfig {
        argv: if argv.is_empty() {
            vec![config.name.clone()]
        } else {
            argv
        },
        env,
        working_dir: config.working_dir.clone(),
        preopens,
        log,
        memory_limit: config.memory_limit,
        cpu: crate::engine::CpuShare {
            limit_millis: config.cpu_limit_millis,
            request_millis: config.cpu_request_millis,
        },
        net: sandbox.net.clone(),
        synthetic: synthetic.then(|| sandbox.files.with_termination_log(termination.clone())),
        stdio,
        memory_gauge: None,
        // A host folder may be slow (a network disk) or hold a FIFO whose
        // open never returns: its calls go to the blocking pool, so that
        // the executor thread, shared with other pods, never waits on it.
        inline_fs: !config.mounts.iter().any(|m| {
            // Volumes past the pod's own were added as host folders.
            matches!(
                sandbox.config.volumes.get(m.volume).map(|v| &v.source),
                Some(VolumeSource::HostPath { .. }) | None
            )
        }),
    }
}

async fn killed(kill: &watch::Sender<Option<i32>>) -> i32 {
    let mut rx = kill.subscribe();
    match rx.wait_for(Option::is_some).await.ok().and_then(|c| *c) {
        Some(code) => code,
        None => std::future::pending().await,
    }
}

/// The exit of a guest ended by a signal.
fn killed_exit(code: i32) -> Exit {
    Exit {
        code,
        reason: ExitReason::Error,
        message: Some(match code {
            143 => "terminated by SIGTERM (the guest declared no SIGTERM handler)".to_string(),
            _ => "killed (SIGKILL)".to_string(),
        }),
    }
}
