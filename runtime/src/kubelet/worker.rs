//! The pod worker: what the kubelet's pod worker and `SyncPod` do for one
//! pod, over the sandbox layer. It decides (init order, restarts, when to
//! stop) and acts through [`crate::sandbox`]; probe workers report to it;
//! the status writer records each step.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use super::PodShared;
use super::clock::{human, unscale};
use super::lifecycle::Lifecycle;
use super::probe::{self, Target};
use super::restart::{Backoff, restarts};
use super::status::object;
use super::terminate::{stop_container, terminate};
use crate::api::status::{
    self, ConditionStatus, ConditionType, EventReason, EventType, Exit, ExitReason, PodPhase,
    WaitingReason,
};
use crate::log::LogOptions;
use crate::sandbox::{Container, ContainerConfig, RunState, Signal};
use crate::spec::{ContainerSpec, TerminationMessagePolicy};

/// Why the worker stopped running containers.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// Every container finished by itself and none will restart.
    Completed,
    /// An init container failed under `restartPolicy: Never`.
    InitFailed,
    /// `activeDeadlineSeconds` passed.
    DeadlineExceeded,
    /// Past an ephemeral storage limit, with the eviction message.
    Evicted(String),
    /// The pod was deleted with this grace period.
    Deleted(Duration),
}

/// How long the worker lets its container tasks record their last exits
/// once every container has been stopped, before it drops them.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(5);

/// The worker of one pod, from its start to the end of its last container.
///
/// Steps:
/// 1. mount the volumes (a failure fails the pod with `FailedMount`);
/// 2. sync: init containers one at a time, then the app containers
///    together, each restarted per policy — until they are done, the
///    deadline passes or the pod is deleted;
/// 3. terminating: stop what still runs ([`terminate`]), let the container
///    tasks record their exits, then stop the sandbox (nothing can outlive
///    it);
/// 4. terminated: settle the final status.
pub(crate) async fn run(pod: Arc<PodShared>) {
    if !mount(&pod) {
        pod.sandbox.stop();
        pod.transition(Lifecycle::finish);
        return;
    }
    let mut tasks = Tasks::default();
    let outcome = tokio::select! {
        o = sync(&pod, &mut tasks) => o,
        _ = deadline(&pod) => Outcome::DeadlineExceeded,
        message = super::eviction::watch(&pod) => Outcome::Evicted(message),
        _ = pod.stopping() => {
            let grace = pod.lifecycle.borrow().deletion_grace();
            Outcome::Deleted(grace.unwrap_or(pod.spec.termination_grace_period))
        }
    };
    pod.transition(Lifecycle::stop_running);
    if let Outcome::Evicted(message) = &outcome {
        pod.status.event(
            EventType::Warning,
            EventReason::Evicted,
            "pod",
            message.clone(),
        );
    }
    let grace = match &outcome {
        Outcome::Deleted(grace) => *grace,
        // The kubelet evicts for local storage with no grace period.
        Outcome::Evicted(_) => Duration::ZERO,
        // The app containers are done (or out of time): sidecars and
        // whatever still runs are stopped the same way.
        _ => pod.spec.termination_grace_period,
    };
    terminate(&pod, grace).await;
    let settled = async {
        while tasks.main.join_next().await.is_some() {}
        while tasks.sidecars.join_next().await.is_some() {}
    };
    let _ = tokio::time::timeout(SETTLE_TIMEOUT, settled).await;
    // Whatever still runs ends here: a task dropped drops its containers,
    // and the sandbox kills every container made in it.
    tasks.main.shutdown().await;
    tasks.sidecars.shutdown().await;
    pod.sandbox.stop();
    settle(&pod, outcome);
    pod.transition(Lifecycle::finish);
}

/// Ends a pod whose worker is gone (it panicked): its sandbox stops, what
/// still shows as running is marked terminated, the pod Failed with
/// `reason`, and it counts as finished.
pub(crate) fn abandon(pod: &PodShared, reason: EventReason, message: &str) {
    pod.transition(Lifecycle::stop_running);
    pod.sandbox.stop();
    let exit = Exit {
        code: 137,
        reason: ExitReason::Error,
        message: Some(message.to_string()),
    };
    pod.status
        .event(EventType::Warning, reason, "pod", message.to_string());
    pod.status.update_raw(|s| {
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
        s.reason = Some(reason.as_str().to_string());
        s.message = Some(message.to_string());
    });
    pod.transition(Lifecycle::finish);
}

/// The pod's container tasks: sidecars apart, because the pod completes
/// without them.
#[derive(Default)]
struct Tasks {
    main: JoinSet<()>,
    sidecars: JoinSet<()>,
}

/// Mounts the volumes; on failure the pod fails with the reason.
fn mount(pod: &PodShared) -> bool {
    match pod.sandbox.mount_volumes() {
        Ok(()) => {
            let has_init = !pod.spec.init_containers.is_empty();
            pod.status.update(|st| {
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
                        let _ = c.wait(WaitingReason::PodInitializing, None);
                    }
                }
            });
            true
        }
        Err(e) => {
            let reason = EventReason::FailedMount;
            pod.status
                .event(EventType::Warning, reason, "pod", e.to_string());
            pod.status.update_raw(|st| {
                st.phase = PodPhase::Failed;
                st.reason = Some(reason.as_str().into());
                st.message = Some(e.to_string());
                st.set_condition(
                    ConditionType::PodReadyToStartContainers,
                    ConditionStatus::False,
                    Some(reason.as_str()),
                    Some(e.to_string()),
                    status::now(),
                );
                for c in st
                    .init_container_statuses
                    .iter_mut()
                    .chain(&mut st.container_statuses)
                {
                    let _ = c.wait(WaitingReason::ContainerCreating, Some(e.to_string()));
                }
            });
            false
        }
    }
}

async fn deadline(pod: &PodShared) {
    match pod.spec.active_deadline {
        Some(d) => tokio::time::sleep(pod.scaled(d)).await,
        None => std::future::pending().await,
    }
}

/// Init containers one at a time (a native sidecar keeps running, and the
/// next waits until it has started), then the app containers together.
async fn sync(pod: &Arc<PodShared>, tasks: &mut Tasks) -> Outcome {
    // Init containers run as tasks too, so that deleting the pod while one
    // runs gives it the same termination sequence as any container.
    for index in 0..pod.spec.init_containers.len() {
        let p = pod.clone();
        let c = &pod.spec.init_containers[index];
        if c.sidecar {
            tasks.sidecars.spawn(async move {
                run_with_restarts(&p, &p.spec.init_containers[index]).await;
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
            let exit = run_with_restarts(&p, &p.spec.init_containers[index]).await;
            let _ = tx.send(exit);
        });
        match rx.await {
            Ok(exit) if exit.code == 0 => {}
            _ => return Outcome::InitFailed,
        }
    }
    for index in 0..pod.spec.containers.len() {
        // A container that finished for good before the pod was restored
        // (it succeeded under `OnFailure`) is not run again.
        let name = &pod.spec.containers[index].name;
        if pod
            .status
            .get()
            .container(name)
            .is_some_and(|cs| cs.state.terminated().is_some())
        {
            continue;
        }
        let pod = pod.clone();
        tasks.main.spawn(async move {
            run_with_restarts(&pod, &pod.spec.containers[index]).await;
        });
    }
    while tasks.main.join_next().await.is_some() {}
    Outcome::Completed
}

/// Runs a container until it ends for good under the restart policy.
async fn run_with_restarts(pod: &PodShared, c: &ContainerSpec) -> Exit {
    let mut backoff = Backoff::new(&pod.config);
    loop {
        let started = Instant::now();
        let exit = run_once(pod, c).await;
        let again = restarts(
            c.kind,
            c.sidecar,
            pod.spec.restart_policy,
            exit.code,
            pod.is_stopping(),
        );
        if !again {
            return exit;
        }
        let delay = backoff.next(unscale(started.elapsed(), pod.config.time_scale));
        if delay.is_zero() {
            pod.status.update_container(c, |cs| cs.restart());
            continue;
        }
        let message = format!(
            "back-off {} restarting failed container={} pod={}_{}({})",
            human(delay),
            c.name,
            pod.spec.name,
            pod.spec.namespace,
            pod.spec.uid
        );
        pod.status
            .update_container(c, |cs| cs.back_off(message.clone()));
        pod.status.event(
            EventType::Warning,
            EventReason::BackOff,
            &object(c),
            format!(
                "Back-off {} restarting failed container {} in pod {}",
                human(delay),
                c.name,
                pod.spec.name
            ),
        );
        tokio::select! {
            _ = tokio::time::sleep(pod.scaled(delay)) => {}
            _ = pod.stopping() => return exit,
        }
    }
}

/// A run that could not start (mounts, log, environment): `StartError`,
/// exit 128, with the reason in an event and in the status.
fn start_failed(pod: &PodShared, c: &ContainerSpec, e: &dyn std::fmt::Display) -> Exit {
    let exit = Exit {
        code: 128,
        reason: ExitReason::StartError,
        message: Some(e.to_string()),
    };
    pod.status.event(
        EventType::Warning,
        EventReason::Failed,
        &object(c),
        format!("Error: {e}"),
    );
    pod.status
        .update_container(c, |cs| cs.terminate(&exit, status::now()));
    exit
}

/// What the sandbox runs for a container's run `attempt`: argv and env
/// with `$(VAR)` expanded.
fn container_config(
    pod: &PodShared,
    c: &ContainerSpec,
    attempt: u32,
) -> Result<ContainerConfig, crate::spec::ExpansionTooLarge> {
    let (argv, env) = c.resolve(&pod.sandbox.ip().to_string())?;
    Ok(ContainerConfig {
        name: c.name.clone(),
        attempt,
        image: pod.image_of(c),
        argv,
        env,
        mounts: c.mounts.clone(),
        working_dir: c.working_dir.clone(),
        working_dir_mount: c.working_dir_mount.clone(),
        memory_limit: c.memory_limit,
        cpu_limit_millis: c.resources.limits.cpu_millis,
        cpu_request_millis: c.resources.requests.cpu_millis,
        read_only_root: c.read_only_root,
        termination_message_path: Some(c.termination_message_path.clone()),
        stdio: Default::default(),
        field: c.field.clone(),
    })
}

/// One run of one container.
///
/// Steps: create it in the sandbox (a failure is a `StartError`, 128);
/// start it; supervise the run ([`supervise_run`]); record its exit as an
/// event and in its status.
async fn run_once(pod: &PodShared, c: &ContainerSpec) -> Exit {
    let attempt = pod
        .status
        .get()
        .container(&c.name)
        .map(|s| s.restart_count + u32::from(s.last_state.is_some()))
        .unwrap_or(0);
    let created = container_config(pod, c, attempt)
        .map_err(|e| e.to_string())
        .and_then(|cfg| pod.sandbox.create_container(cfg).map_err(|e| e.to_string()));
    let container = match created {
        Ok(container) => container,
        Err(e) => return start_failed(pod, c, &e),
    };
    pod.status.event(
        EventType::Normal,
        EventReason::Created,
        &object(c),
        format!("Created container {}", c.name),
    );
    if let Err(e) = container.start() {
        return start_failed(pod, c, &e);
    }
    pod.set_running(&c.name, Some(container.clone()));
    let mut exit = supervise_run(pod, c, &container).await;
    pod.set_running(&c.name, None);
    if let Some(message) = termination_message(pod, c, &container, &exit) {
        exit.message = Some(message);
    }

    let (type_, reason, text) = match exit.reason {
        ExitReason::Completed => (
            EventType::Normal,
            EventReason::Completed,
            format!("Container {} exited with code 0", c.name),
        ),
        ExitReason::OomKilled => (
            EventType::Warning,
            EventReason::OomKilled,
            format!(
                "Container {} was OOM-killed: {}",
                c.name,
                exit.message.as_deref().unwrap_or("")
            ),
        ),
        _ => (
            EventType::Warning,
            EventReason::Failed,
            match &exit.message {
                Some(m) => format!(
                    "Container {} failed with exit code {}: {m}",
                    c.name, exit.code
                ),
                None => format!("Container {} exited with code {}", c.name, exit.code),
            },
        ),
    };
    pod.status.event(type_, reason, &object(c), text);
    pod.status
        .update_container(c, |cs| cs.terminate(&exit, status::now()));
    exit
}

/// `state.terminated.message` of a run, as the kubelet makes it: what the
/// guest wrote to its termination message file; with
/// `FallbackToLogsOnError`, when that is empty and the run failed, the end
/// of its log (the last 80 lines, at most 2 KiB). `None`: neither, and the
/// runtime's own message (a trap, the memory limit) stays.
fn termination_message(
    pod: &PodShared,
    c: &ContainerSpec,
    container: &Container,
    exit: &Exit,
) -> Option<String> {
    let written = container.termination_message();
    if !written.is_empty() {
        return Some(String::from_utf8_lossy(&written).into_owned());
    }
    if c.termination_message_policy != TerminationMessagePolicy::FallbackToLogsOnError
        || exit.code == 0
    {
        return None;
    }
    let path = pod
        .sandbox
        .layout()
        .log(&c.name, container.config().attempt);
    let options = LogOptions {
        tail_lines: Some(80),
        limit_bytes: Some(2048),
        ..LogOptions::container(&c.name)
    };
    let tail = crate::log::read(&path, &options, true).ok()?;
    (!tail.is_empty()).then(|| String::from_utf8_lossy(&tail).into_owned())
}

/// One run from its start to its end.
///
/// Steps: postStart (the container is Running only once it has completed;
/// a failure kills it); `Started`; then the probes, until the guest exits —
/// a startup or liveness probe that fails for good stops it (preStop,
/// SIGTERM, grace) and the restart policy decides the rest.
async fn supervise_run(pod: &PodShared, c: &ContainerSpec, container: &Container) -> Exit {
    let target = Target {
        sandbox: &pod.sandbox,
        container,
        time_scale: pod.config.time_scale,
    };
    // A guest that ends while its postStart hook runs still waits for the
    // hook, as the kubelet does: the hook decides whether it had started.
    let mut ended_early = None;
    if let Some(hook) = &c.post_start {
        let hook = probe::run_action(target, hook, None);
        tokio::pin!(hook);
        let result = tokio::select! {
            r = &mut hook => r,
            exit = container.wait() => {
                ended_early = Some(exit.exit);
                tokio::select! {
                    r = &mut hook => r,
                    _ = pod.stopping() => Err("the pod is stopping".to_string()),
                }
            }
        };
        if let Err(why) = result {
            pod.status.event(
                EventType::Warning,
                EventReason::FailedPostStartHook,
                &object(c),
                format!("PostStart hook failed: {why}"),
            );
            if let Some(exit) = ended_early {
                return exit;
            }
            container.kill(Signal::Kill);
            container.wait().await;
            return Exit {
                code: 137,
                reason: ExitReason::Error,
                message: Some(format!("killed: the postStart hook failed: {why}")),
            };
        }
    }
    let started = c.startup_probe.is_none();
    let ready = started && c.readiness_probe.is_none();
    let started_at = match container.state() {
        RunState::Running { started_at } => started_at,
        RunState::Exited(e) => e.started_at.unwrap_or_else(status::now),
        RunState::Created => status::now(),
    };
    let (id, digest) = (container.id().to_string(), pod.image_of(c).digest.clone());
    pod.status.update_container(c, |cs| {
        cs.image_id = digest;
        cs.start(started_at, id, started, ready)
    });
    pod.status.event(
        EventType::Normal,
        EventReason::Started,
        &object(c),
        format!("Started container {}", c.name),
    );
    if let Some(exit) = ended_early {
        return exit;
    }
    tokio::select! {
        exit = container.wait() => exit.exit,
        failure = probe::watch(target, &pod.status, c) => {
            pod.status.event(
                EventType::Normal,
                EventReason::Killing,
                &object(c),
                format!(
                    "Container {} failed {} probe, will be restarted",
                    c.name,
                    failure.probe_name()
                ),
            );
            let grace = failure.grace.unwrap_or(pod.spec.termination_grace_period);
            stop_container(pod, c, container, grace).await;
            container.wait().await.exit
        }
    }
}

/// Final status once nothing runs: containers whose exit no run recorded
/// (their task was dropped), phase and reason.
fn settle(pod: &PodShared, outcome: Outcome) {
    // A container still shown as running was stopped by the termination
    // sequence without its run recording it: SIGKILL with grace 0,
    // otherwise as a guest without a SIGTERM handler ends.
    let stopped = |why: &str, grace: Duration| -> Exit {
        Exit {
            code: if grace.is_zero() { 137 } else { 143 },
            reason: ExitReason::Error,
            message: Some(why.to_string()),
        }
    };
    let init_failed = outcome == Outcome::InitFailed;
    let (exit, pod_reason) = match outcome {
        Outcome::Completed | Outcome::InitFailed => (None, None),
        Outcome::DeadlineExceeded => {
            let msg = "Pod was active on the node longer than the specified deadline";
            pod.status.event(
                EventType::Warning,
                EventReason::DeadlineExceeded,
                "pod",
                msg.to_string(),
            );
            (
                Some(stopped(
                    "stopped: the pod's activeDeadlineSeconds passed",
                    pod.spec.termination_grace_period,
                )),
                Some((EventReason::DeadlineExceeded, msg.to_string())),
            )
        }
        Outcome::Deleted(grace) => (Some(stopped("stopped: the pod was deleted", grace)), None),
        Outcome::Evicted(message) => (
            Some(stopped("stopped: the pod was evicted", Duration::ZERO)),
            Some((EventReason::Evicted, message)),
        ),
    };
    let policy = pod.spec.restart_policy;
    pod.status.update_raw(|s| {
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
        if let Some((reason, message)) = &pod_reason {
            s.phase = PodPhase::Failed;
            s.reason = Some(reason.as_str().into());
            s.message = Some(message.to_string());
        }
        s.derive(policy, true, init_failed, at);
    });
}
