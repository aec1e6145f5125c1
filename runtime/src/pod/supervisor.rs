//! The per-pod supervisor: prepares the sandbox, runs init containers in
//! order, starts the app containers together, restarts them per policy with
//! back-off, enforces `activeDeadlineSeconds`, and stops everything on
//! deletion. Every step is reflected in the pod status and in events.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::RuntimeConfig;
use crate::engine::{Engine, GuestConfig, Image};
use crate::fanout::Fanout;
use crate::log::{ContainerLog, LogLine};
use crate::pod::{ContainerKind, ContainerSpec, PodSpec, RestartPolicy};
use crate::status::{
    self, ConditionStatus, ConditionType, Event, EventType, Exit, ExitReason, PodPhase, PodStatus,
};
use crate::volume::Sandbox;

/// Back-off between restarts: `initial`, doubling up to `max`, reset after a
/// run of at least `reset`.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    reset: Duration,
    current: Option<Duration>,
}

impl Backoff {
    pub(crate) fn new(cfg: &RuntimeConfig) -> Self {
        Self {
            initial: cfg.backoff_initial,
            max: cfg.backoff_max,
            reset: cfg.backoff_reset,
            current: None,
        }
    }

    /// The delay before the next restart of a container that ran for `ran`.
    pub(crate) fn next(&mut self, ran: Duration) -> Duration {
        if ran >= self.reset {
            self.current = None;
        }
        let d = match self.current {
            None => self.initial,
            Some(c) => c.saturating_mul(2).min(self.max),
        };
        self.current = Some(d);
        d
    }
}

/// Why the supervisor stopped running containers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Every container finished by itself and none will restart.
    Completed,
    /// An init container failed under `restartPolicy: Never`.
    InitFailed,
    /// `activeDeadlineSeconds` passed.
    DeadlineExceeded,
    /// The pod was deleted with this grace period.
    Deleted(Duration),
}

/// Shared state of one pod: what the handle reads and the supervisor writes.
pub(crate) struct PodShared {
    pub spec: PodSpec,
    /// Images of `spec.init_containers` then `spec.containers`.
    pub images: Vec<Arc<Image>>,
    pub engine: Arc<Engine>,
    pub config: RuntimeConfig,
    pub dir: std::path::PathBuf,
    /// The state folder's trash (folders removed in the background).
    pub trash: std::path::PathBuf,
    pub status: watch::Sender<PodStatus>,
    pub events: Mutex<Vec<Event>>,
    pub events_tx: Fanout<Event>,
    pub logs_tx: Arc<Fanout<LogLine>>,
    /// The runtime's cap on open log files.
    pub log_files: Arc<crate::log::LogFiles>,
    pub delete: CancellationToken,
    pub delete_grace: Mutex<Option<Duration>>,
    pub done: watch::Sender<bool>,
    pub sandbox: Mutex<Option<Arc<Sandbox>>>,
    pub started: std::sync::atomic::AtomicBool,
    /// The pod's address and ports on the pod network.
    pub net: Arc<crate::net::PodNet>,
    /// The running containers, by name, while they run.
    pub controls: Mutex<std::collections::HashMap<String, Arc<Control>>>,
    /// Termination has begun: nothing starts or restarts any more.
    pub terminating: CancellationToken,
    /// A second deletion with grace 0: kill what is still running at once.
    pub kill_now: CancellationToken,
}

/// Handle on one running container, for the termination sequence.
pub(crate) struct Control {
    /// Set to the exit code (137, 143) to end the guest at once.
    kill: watch::Sender<Option<i32>>,
    /// Cancelled when the run has ended, however it ended.
    exited: CancellationToken,
    /// The container's runtime folder (`/run/wasipod` in the guest),
    /// touched only through this.
    run_dir: crate::volume::RunDir,
}

/// Longer than any wait a pod can mean (a grace period of `i64::MAX`
/// seconds waits this long): every deadline saturates here instead of
/// overflowing.
pub(crate) const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// `d × factor`, saturating at [`FOREVER`] (never panics).
pub(crate) fn scale(d: Duration, factor: f64) -> Duration {
    let secs = d.as_secs_f64() * factor;
    if secs.is_nan() || secs <= 0.0 {
        Duration::ZERO
    } else if secs >= FOREVER.as_secs_f64() {
        FOREVER
    } else {
        Duration::from_secs_f64(secs)
    }
}

/// The instant `d` from now, saturating at [`FOREVER`].
pub(crate) fn after(d: Duration) -> tokio::time::Instant {
    tokio::time::Instant::now() + d.min(FOREVER)
}

/// The SIGTERM contract: files in each container's `/run/wasipod`.
pub(crate) const RUN_DIR_GUEST: &str = "/run/wasipod";
/// Created by a guest that handles SIGTERM.
pub(crate) const SIGTERM_HANDLER_FILE: &str = "sigterm-handler";
/// The one-time extension of a preStop hook that outlives the grace period.
pub(crate) const PRESTOP_EXTENSION: Duration = Duration::from_secs(2);
/// Created by wasipod when it sends SIGTERM.
pub(crate) const TERMINATION_FILE: &str = "terminate";

impl Control {
    fn kill(&self, code: i32) {
        self.kill.send_if_modified(|k| {
            if k.is_none() {
                *k = Some(code);
                true
            } else {
                false
            }
        });
    }

    async fn killed(&self) -> i32 {
        let mut rx = self.kill.subscribe();
        let code = rx.wait_for(Option::is_some).await.ok().and_then(|c| *c);
        match code {
            Some(code) => code,
            None => std::future::pending().await,
        }
    }
}

impl PodShared {
    /// How a guest of container `c` is set up — its run, or an exec probe
    /// or hook (`argv` replaced): env with `$(VAR)` expanded, `HOSTNAME` and
    /// the SIGTERM contract's variables; its mounts plus `/run/wasipod`; the
    /// pod network.
    pub(crate) fn guest_config(
        &self,
        c: &ContainerSpec,
        argv: Option<Vec<String>>,
        mut preopens: Vec<crate::engine::Preopen>,
        run_dir: &std::path::Path,
        log: ContainerLog,
    ) -> Result<GuestConfig, crate::pod::ExpansionTooLarge> {
        let (default_argv, mut env) = c.resolve(&self.net.ip.to_string())?;
        // As container runtimes do, HOSTNAME is the pod's hostname unless set.
        if !env.iter().any(|(k, _)| k == "HOSTNAME") {
            env.push(("HOSTNAME".into(), self.spec.hostname.clone()));
        }
        env.push((
            "WASIPOD_SIGTERM_HANDLER".into(),
            format!("{RUN_DIR_GUEST}/{SIGTERM_HANDLER_FILE}"),
        ));
        env.push((
            "WASIPOD_TERMINATION_FILE".into(),
            format!("{RUN_DIR_GUEST}/{TERMINATION_FILE}"),
        ));
        preopens.push(crate::engine::Preopen {
            host: crate::engine::HostDir::Path(run_dir.to_path_buf()),
            guest: RUN_DIR_GUEST.into(),
            read_only: false,
        });
        Ok(GuestConfig {
            argv: argv.unwrap_or(default_argv),
            env,
            working_dir: c.working_dir.clone(),
            preopens,
            log,
            memory_limit: c.memory_limit,
            net: self.net.clone(),
            // A host folder may be slow (a network disk) or hold a FIFO whose
            // open never returns: its calls go to the blocking pool, so that
            // the executor thread, shared with other pods, never waits on it.
            inline_fs: !c.mounts.iter().any(|m| {
                matches!(
                    self.spec.volumes[m.volume].source,
                    crate::pod::VolumeSource::HostPath { .. }
                )
            }),
        })
    }

    /// Sets `started` / `ready` of a container (probe results).
    pub(crate) fn set_probe_state(
        &self,
        c: &ContainerSpec,
        started: Option<bool>,
        ready: Option<bool>,
    ) {
        self.update_container(c, |cs| {
            if cs.state.is_running() {
                if let Some(s) = started {
                    cs.started = Some(s);
                }
                if let Some(r) = ready {
                    cs.ready = r;
                }
            }
            Ok(())
        });
    }

    /// A Kubernetes duration in this runtime's time (`time_scale`),
    /// saturating: any duration from a manifest or a caller is safe.
    pub(crate) fn scaled(&self, d: Duration) -> Duration {
        scale(d, self.config.time_scale)
    }

    pub(crate) fn event(&self, type_: EventType, reason: &str, object: &str, message: String) {
        let event = Event {
            time: chrono::Utc::now(),
            type_,
            reason: reason.to_string(),
            object: object.to_string(),
            message,
        };
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(event.clone());
        self.events_tx.send(event);
    }

    /// Changes the status and re-derives phase and conditions.
    fn update(&self, f: impl FnOnce(&mut PodStatus)) {
        let policy = self.spec.restart_policy;
        self.status.send_modify(|s| {
            f(s);
            s.derive(policy, false, false, status::now());
        });
    }

    /// Updates one container's status (by kind and index).
    fn update_container(
        &self,
        c: &ContainerSpec,
        f: impl FnOnce(&mut status::ContainerStatus) -> Result<(), crate::error::TransitionError>,
    ) {
        self.update(|s| {
            let list = match c.kind {
                ContainerKind::Init => &mut s.init_container_statuses,
                ContainerKind::App => &mut s.container_statuses,
            };
            if let Some(cs) = list.iter_mut().find(|cs| cs.name == c.name)
                && let Err(e) = f(cs)
            {
                tracing::error!(error = %e, "container state machine refused a transition");
            }
        });
    }

    pub(crate) fn object(c: &ContainerSpec) -> String {
        let list = match c.kind {
            ContainerKind::Init => "initContainers",
            ContainerKind::App => "containers",
        };
        format!("spec.{list}{{{}}}", c.name)
    }

    pub(crate) fn image_of(&self, c: &ContainerSpec) -> Arc<Image> {
        let index = match c.kind {
            ContainerKind::Init => self
                .spec
                .init_containers
                .iter()
                .position(|x| x.name == c.name),
            ContainerKind::App => self
                .spec
                .containers
                .iter()
                .position(|x| x.name == c.name)
                .map(|i| i + self.spec.init_containers.len()),
        };
        self.images[index.unwrap_or(0)].clone()
    }
}

/// The supervisor task of one pod.
pub(crate) async fn supervise(pod: Arc<PodShared>) {
    let sandbox = match prepare(&pod) {
        Some(s) => s,
        None => {
            pod.net.stop.cancel();
            let _ = pod.done.send_replace(true);
            return;
        }
    };
    let mut tasks = Tasks::default();
    let outcome = tokio::select! {
        o = run_phases(&pod, &sandbox, &mut tasks) => o,
        _ = deadline(&pod) => Outcome::DeadlineExceeded,
        _ = pod.delete.cancelled() => {
            let grace = pod.delete_grace.lock().unwrap_or_else(|e| e.into_inner()).unwrap_or(pod.spec.termination_grace_period);
            Outcome::Deleted(grace)
        }
    };
    match outcome {
        Outcome::Deleted(grace) => terminate(&pod, grace).await,
        Outcome::DeadlineExceeded => terminate(&pod, pod.spec.termination_grace_period).await,
        // The app containers are done: sidecars are stopped the same way.
        Outcome::Completed | Outcome::InitFailed => {
            terminate(&pod, pod.spec.termination_grace_period).await
        }
    }
    // Whatever still runs is stopped here: aborting a task drops the guest's
    // future, which ends the guest wherever it is.
    tasks.main.shutdown().await;
    tasks.sidecars.shutdown().await;
    // Published ports close and outbound connections end with the pod.
    pod.net.stop.cancel();
    settle(&pod, outcome);
    let _ = pod.done.send_replace(true);
}

/// Ends a pod whose supervisor is gone (it panicked): its network closes,
/// what still shows as running is marked terminated, the pod Failed with
/// `reason`, and it counts as finished.
pub(crate) fn abandon(pod: &PodShared, reason: &str, message: &str) {
    pod.terminating.cancel();
    pod.net.stop.cancel();
    let exit = Exit {
        code: 137,
        reason: ExitReason::Error,
        message: Some(message.to_string()),
    };
    pod.event(EventType::Warning, reason, "pod", message.to_string());
    pod.status.send_modify(|s| {
        let at = status::now();
        for c in s
            .init_container_statuses
            .iter_mut()
            .chain(&mut s.container_statuses)
        {
            if c.state.is_running() {
                let _ = c.terminate(&exit, at);
            }
        }
        s.phase = PodPhase::Failed;
        s.reason = Some(reason.to_string());
        s.message = Some(message.to_string());
    });
    let _ = pod.done.send_replace(true);
}

/// The pod's container tasks: sidecars apart, because the pod completes
/// without them.
#[derive(Default)]
struct Tasks {
    main: JoinSet<()>,
    sidecars: JoinSet<()>,
}

/// Creates the volumes; on failure the pod fails with the reason.
fn prepare(pod: &Arc<PodShared>) -> Option<Arc<Sandbox>> {
    match Sandbox::prepare(&pod.spec, &pod.dir, &pod.trash) {
        Ok(s) => {
            let s = Arc::new(s);
            *pod.sandbox.lock().unwrap_or_else(|e| e.into_inner()) = Some(s.clone());
            let has_init = !pod.spec.init_containers.is_empty();
            pod.update(|st| {
                st.set_condition(
                    ConditionType::PodReadyToStartContainers,
                    ConditionStatus::True,
                    None,
                    None,
                    status::now(),
                );
                if has_init {
                    for c in st
                        .init_container_statuses
                        .iter_mut()
                        .skip(1)
                        .chain(&mut st.container_statuses)
                    {
                        let _ = c.wait("PodInitializing", None);
                    }
                }
            });
            Some(s)
        }
        Err(e) => {
            pod.event(EventType::Warning, "FailedMount", "pod", e.to_string());
            pod.status.send_modify(|st| {
                st.phase = PodPhase::Failed;
                st.reason = Some("FailedMount".into());
                st.message = Some(e.to_string());
                st.set_condition(
                    ConditionType::PodReadyToStartContainers,
                    ConditionStatus::False,
                    Some("FailedMount"),
                    Some(e.to_string()),
                    status::now(),
                );
                for c in st
                    .init_container_statuses
                    .iter_mut()
                    .chain(&mut st.container_statuses)
                {
                    let _ = c.wait("ContainerCreating", Some(e.to_string()));
                }
            });
            None
        }
    }
}

async fn deadline(pod: &PodShared) {
    match pod.spec.active_deadline {
        Some(d) => tokio::time::sleep(pod.scaled(d)).await,
        None => std::future::pending().await,
    }
}

/// Init containers one at a time, then the app containers together.
async fn run_phases(pod: &Arc<PodShared>, sandbox: &Arc<Sandbox>, tasks: &mut Tasks) -> Outcome {
    // Init containers run as tasks too, so that deleting the pod while one
    // runs gives it the same termination sequence as any container.
    for index in 0..pod.spec.init_containers.len() {
        let (p, sb) = (pod.clone(), sandbox.clone());
        let c = &pod.spec.init_containers[index];
        if c.sidecar {
            // A native sidecar keeps running; the next init container waits
            // until it has started (postStart done, startup probe passed).
            tasks.sidecars.spawn(async move {
                run_with_restarts(&p, &p.spec.init_containers[index], &sb).await;
            });
            let mut status = pod.status.subscribe();
            let _ = status
                .wait_for(|s| {
                    s.container(&c.name)
                        .is_some_and(|cs| cs.started == Some(true))
                })
                .await;
            continue;
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        tasks.main.spawn(async move {
            let exit = run_with_restarts(&p, &p.spec.init_containers[index], &sb).await;
            let _ = tx.send(exit);
        });
        match rx.await {
            Ok(exit) if exit.code == 0 => {}
            _ => return Outcome::InitFailed,
        }
    }
    for index in 0..pod.spec.containers.len() {
        let (pod, sandbox) = (pod.clone(), sandbox.clone());
        tasks.main.spawn(async move {
            run_with_restarts(&pod, &pod.spec.containers[index], &sandbox).await;
        });
    }
    while tasks.main.join_next().await.is_some() {}
    Outcome::Completed
}

/// Runs a container until it ends for good under the restart policy.
async fn run_with_restarts(pod: &PodShared, c: &ContainerSpec, sandbox: &Sandbox) -> Exit {
    let mut backoff = Backoff::new(&pod.config);
    loop {
        let started = Instant::now();
        let exit = run_once(pod, c, sandbox).await;
        let restart = match c.kind {
            // A sidecar is always restarted.
            ContainerKind::Init if c.sidecar => true,
            // A failed init container is retried unless the policy is Never.
            ContainerKind::Init => {
                exit.code != 0 && pod.spec.restart_policy != RestartPolicy::Never
            }
            ContainerKind::App => pod.spec.restart_policy.restarts(exit.code),
        };
        // Once termination has begun nothing is started again.
        if !restart || pod.terminating.is_cancelled() {
            return exit;
        }
        let delay = backoff.next(pod.scaled_back(started.elapsed()));
        let message = format!(
            "back-off {} restarting failed container={} pod={}_{}({})",
            human(delay),
            c.name,
            pod.spec.name,
            pod.spec.namespace,
            pod.spec.uid
        );
        pod.update_container(c, |cs| cs.back_off(message.clone()));
        pod.event(
            EventType::Warning,
            "BackOff",
            &PodShared::object(c),
            format!(
                "Back-off {} restarting failed container {} in pod {}",
                human(delay),
                c.name,
                pod.spec.name
            ),
        );
        tokio::select! {
            _ = tokio::time::sleep(pod.scaled(delay)) => {}
            _ = pod.terminating.cancelled() => return exit,
        }
    }
}

impl PodShared {
    /// Converts an elapsed wall time into Kubernetes time (undoes the scale).
    fn scaled_back(&self, d: Duration) -> Duration {
        if self.config.time_scale > 0.0 {
            scale(d, 1.0 / self.config.time_scale)
        } else {
            FOREVER
        }
    }
}

/// A run that could not start (mounts, log, environment): `StartError`,
/// exit 128, with the reason in an event and in the status.
fn start_failed(
    pod: &PodShared,
    c: &ContainerSpec,
    object: &str,
    e: &dyn std::fmt::Display,
) -> Exit {
    let exit = Exit {
        code: 128,
        reason: ExitReason::StartError,
        message: Some(e.to_string()),
    };
    pod.event(EventType::Warning, "Failed", object, format!("Error: {e}"));
    pod.update_container(c, |cs| cs.terminate(&exit, status::now()));
    exit
}

/// One run of one container.
async fn run_once(pod: &PodShared, c: &ContainerSpec, sandbox: &Sandbox) -> Exit {
    let object = PodShared::object(c);
    let image = pod.image_of(c);
    let restart = pod
        .status
        .borrow()
        .container(&c.name)
        .map(|s| s.restart_count + u32::from(s.last_state.is_some()))
        .unwrap_or(0);
    let log_path = crate::log_file(&pod.dir, &c.name, restart);
    // As the kubelet does, only the current and the previous run's logs
    // are kept (`kubectl logs` and `kubectl logs --previous`).
    if let Some(old) = restart.checked_sub(2) {
        crate::log::remove_run(&crate::log_file(&pod.dir, &c.name, old));
    }
    let prepared = sandbox.preopens(c).and_then(|preopens| {
        let run_dir = sandbox.fresh_run_dir(&c.name, restart == 0)?;
        ContainerLog::create(
            &log_path,
            pod.config.log_max_bytes,
            &c.name,
            pod.logs_tx.clone(),
            &pod.log_files,
        )
        .map(|log| (preopens, log, run_dir))
        .map_err(|e| crate::RuntimeError::Io {
            path: log_path.clone(),
            source: e,
        })
    });
    let (preopens, log, run_dir) = match prepared {
        Ok(p) => p,
        Err(e) => return start_failed(pod, c, &object, &e),
    };
    pod.event(
        EventType::Normal,
        "Created",
        &object,
        format!("Created container {}", c.name),
    );
    let id = format!("wasipod://{}/{}/{restart}", pod.spec.uid, c.name);

    let (run_path, run_dir) = run_dir;
    let cfg = match pod.guest_config(c, None, preopens, &run_path, log) {
        Ok(cfg) => cfg,
        Err(e) => return start_failed(pod, c, &object, &e),
    };
    let control = Arc::new(Control {
        kill: watch::channel(None).0,
        exited: CancellationToken::new(),
        run_dir,
    });
    pod.controls
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(c.name.clone(), control.clone());
    let exit = supervise_run(pod, c, &image, cfg, &control, id).await;
    pod.controls
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&c.name);
    control.exited.cancel();

    let (type_, reason, text) = match exit.reason {
        ExitReason::Completed => (
            EventType::Normal,
            "Completed",
            format!("Container {} exited with code 0", c.name),
        ),
        ExitReason::OomKilled => (
            EventType::Warning,
            "OOMKilled",
            format!(
                "Container {} was OOM-killed: {}",
                c.name,
                exit.message.as_deref().unwrap_or("")
            ),
        ),
        _ => (
            EventType::Warning,
            "Failed",
            match &exit.message {
                Some(m) => format!(
                    "Container {} failed with exit code {}: {m}",
                    c.name, exit.code
                ),
                None => format!("Container {} exited with code {}", c.name, exit.code),
            },
        ),
    };
    pod.event(type_, reason, &object, text);
    pod.update_container(c, |cs| cs.terminate(&exit, status::now()));
    exit
}

/// The termination sequence for every running container, in parallel:
/// SIGTERM (the guest's termination file), then SIGKILL once the grace
/// period is over. A guest that declared no SIGTERM handler ends at once
/// (exit 143), like a process with the default disposition; grace 0 kills
/// at once (exit 137).
async fn terminate(pod: &Arc<PodShared>, grace: Duration) {
    pod.terminating.cancel();
    let deadline = after(pod.scaled(grace));
    let running: Vec<(String, Arc<Control>)> = pod
        .controls
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|(n, c)| (n.clone(), c.clone()))
        .collect();
    let is_sidecar = |name: &str| pod.spec.container(name).is_some_and(|c| c.sidecar);
    // App (and init) containers first, all together.
    let mut stopping = JoinSet::new();
    for (name, control) in running.into_iter().filter(|(n, _)| !is_sidecar(n)) {
        let pod = pod.clone();
        stopping.spawn(async move { stop(&pod, &name, &control, grace).await });
    }
    while stopping.join_next().await.is_some() {}
    // Then sidecars, in reverse order of declaration, with what is left of
    // the grace period.
    for c in pod.spec.init_containers.iter().rev().filter(|c| c.sidecar) {
        let control = pod
            .controls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&c.name)
            .cloned();
        if let Some(control) = control {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let left = if grace.is_zero() {
                Duration::ZERO
            } else {
                pod.scaled_back(left)
            };
            stop(pod, &c.name, &control, left).await;
        }
    }
}

async fn stop(pod: &PodShared, name: &str, control: &Control, grace: Duration) {
    if let Some(c) = pod.spec.container(name) {
        pod.event(
            EventType::Normal,
            "Killing",
            &PodShared::object(c),
            format!("Stopping container {name}"),
        );
    }
    terminate_one(pod, name, control, grace).await;
}

/// preStop, then SIGTERM, then SIGKILL when `grace` is over. A preStop
/// still running when the grace period ends gets one 2 s extension.
pub(crate) async fn terminate_one(pod: &PodShared, name: &str, control: &Control, grace: Duration) {
    let mut deadline = after(pod.scaled(grace));
    if let Some(c) = pod.spec.container(name)
        && let Some(hook) = &c.pre_stop
        && !grace.is_zero()
        && !pod.kill_now.is_cancelled()
    {
        let hook = crate::probe::run_action(pod, c, hook, None);
        tokio::pin!(hook);
        let mut extended = false;
        let result = loop {
            tokio::select! {
                r = &mut hook => break Some(r),
                _ = control.exited.cancelled() => break None,
                _ = pod.kill_now.cancelled() => break None,
                _ = tokio::time::sleep_until(deadline) => {
                    if extended {
                        break Some(Err("the grace period and its 2 s extension ran out".to_string()));
                    }
                    extended = true;
                    deadline = deadline.checked_add(pod.scaled(PRESTOP_EXTENSION)).unwrap_or(deadline);
                    pod.event(
                        EventType::Warning,
                        "FailedPreStopHook",
                        &PodShared::object(c),
                        "PreStop hook still running when the grace period ended: granting a 2 s extension".into(),
                    );
                }
            }
        };
        if let Some(Err(why)) = result {
            pod.event(
                EventType::Warning,
                "FailedPreStopHook",
                &PodShared::object(c),
                format!("PreStop hook failed: {why}"),
            );
        }
    }
    if grace.is_zero() || pod.kill_now.is_cancelled() {
        control.kill(137);
    } else if !control.run_dir.has(SIGTERM_HANDLER_FILE) {
        control.kill(143);
    } else {
        if let Err(e) = control.run_dir.place(TERMINATION_FILE, b"SIGTERM\n") {
            tracing::warn!(container = name, error = %e, "could not deliver SIGTERM; killing");
            control.kill(137);
        }
        tokio::select! {
            _ = control.exited.cancelled() => {}
            _ = tokio::time::sleep_until(deadline) => control.kill(137),
            _ = pod.kill_now.cancelled() => control.kill(137),
        }
    }
    control.exited.cancelled().await;
}

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

/// One run from the guest's first instruction to its end: postStart (the
/// container is Running only once it has completed; a failure kills it),
/// then the probes, until the guest exits or is killed. Dropping the guest's
/// future (the kill branch) ends it wherever it is.
async fn supervise_run(
    pod: &PodShared,
    c: &ContainerSpec,
    image: &Image,
    cfg: GuestConfig,
    control: &Control,
    id: String,
) -> Exit {
    let object = PodShared::object(c);
    let guest = pod.engine.run(image, cfg);
    tokio::pin!(guest);
    if let Some(hook) = &c.post_start {
        let hooked = tokio::select! {
            exit = &mut guest => Err(exit),
            code = control.killed() => Err(killed_exit(code)),
            r = crate::probe::run_action(pod, c, hook, None) => Ok(r),
        };
        match hooked {
            Ok(Ok(_)) => {}
            Ok(Err(why)) => {
                pod.event(
                    EventType::Warning,
                    "FailedPostStartHook",
                    &object,
                    format!("PostStart hook failed: {why}"),
                );
                return Exit {
                    code: 137,
                    reason: ExitReason::Error,
                    message: Some(format!("killed: the postStart hook failed: {why}")),
                };
            }
            Err(exit) => return exit,
        }
    }
    let started = c.startup_probe.is_none();
    let ready = started && c.readiness_probe.is_none();
    pod.update_container(c, |cs| {
        cs.image_id = image.digest.clone();
        cs.start(status::now(), id, started, ready)
    });
    pod.event(
        EventType::Normal,
        "Started",
        &object,
        format!("Started container {}", c.name),
    );
    tokio::select! {
        exit = &mut guest => exit,
        code = control.killed() => killed_exit(code),
        _ = crate::probe::probe_loops(pod, c, control) => killed_exit(137),
    }
}

/// Final status once nothing runs: stopped containers, phase and reason.
fn settle(pod: &PodShared, outcome: Outcome) {
    let killed = |why: &str, grace: Duration| -> Exit {
        // No guest can hear SIGTERM yet (the contract arrives with the
        // lifecycle work), so each behaves like a process with the default
        // disposition: it ends at once, exit 143; with grace 0 it is
        // SIGKILLed, exit 137.
        let code = if grace.is_zero() { 137 } else { 143 };
        Exit {
            code,
            reason: ExitReason::Error,
            message: Some(why.to_string()),
        }
    };
    let (exit, pod_reason) = match outcome {
        Outcome::Completed | Outcome::InitFailed => (None, None),
        Outcome::DeadlineExceeded => {
            let msg = "Pod was active on the node longer than the specified deadline";
            pod.event(
                EventType::Warning,
                "DeadlineExceeded",
                "pod",
                msg.to_string(),
            );
            (
                Some(killed(
                    "stopped: the pod's activeDeadlineSeconds passed",
                    pod.spec.termination_grace_period,
                )),
                Some(("DeadlineExceeded", msg)),
            )
        }
        Outcome::Deleted(grace) => (Some(killed("stopped: the pod was deleted", grace)), None),
    };
    let policy = pod.spec.restart_policy;
    pod.status.send_modify(|s| {
        let at = status::now();
        if let Some(exit) = &exit {
            for c in s
                .init_container_statuses
                .iter_mut()
                .chain(&mut s.container_statuses)
            {
                if c.state.is_running() {
                    let _ = c.terminate(exit, at);
                }
            }
        }
        if let Some((reason, message)) = pod_reason {
            s.phase = PodPhase::Failed;
            s.reason = Some(reason.into());
            s.message = Some(message.into());
        }
        s.derive(policy, true, outcome == Outcome::InitFailed, at);
    });
}

/// `10s`, `1m20s`, `5m0s`, as the kubelet prints durations.
pub(crate) fn human(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let s = d.as_secs();
    if s < 60 {
        let frac = d.subsec_millis();
        return if frac == 0 {
            format!("{s}s")
        } else {
            format!("{}s", d.as_secs_f64())
        };
    }
    format!("{}m{}s", s / 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_resets() {
        let cfg = RuntimeConfig::default();
        let mut b = Backoff::new(&cfg);
        let short = Duration::from_secs(1);
        let got: Vec<u64> = (0..7).map(|_| b.next(short).as_secs()).collect();
        assert_eq!(got, [10, 20, 40, 80, 160, 300, 300]);
        assert_eq!(
            b.next(Duration::from_secs(600)).as_secs(),
            10,
            "10 minutes of running resets the back-off"
        );
        assert_eq!(b.next(short).as_secs(), 20);
    }

    #[test]
    fn durations_print_like_the_kubelet() {
        assert_eq!(human(Duration::from_secs(10)), "10s");
        assert_eq!(human(Duration::from_secs(300)), "5m0s");
        assert_eq!(human(Duration::from_secs(80)), "1m20s");
    }
}
