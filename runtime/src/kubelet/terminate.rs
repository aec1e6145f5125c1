//! Stopping containers, as the kubelet does: for one container preStop,
//! then SIGTERM, then SIGKILL when the grace period is over; for a pod, the
//! app (and init) containers all together, then the native sidecars one at
//! a time in reverse order of declaration, with what is left of the grace
//! period. A deletion with grace 0 (or a second one, with grace 0) kills
//! what still runs at once.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

use super::PodShared;
use super::clock::{after, scale, unscale};
use super::lifecycle::Lifecycle;
use super::probe::{Target, run_action};
use super::status::{StatusWriter, object};
use crate::api::status::{EventReason, EventType};
use crate::sandbox::{Container, Signal};
use crate::spec::{ContainerSpec, PodSpec};

/// The one-time extension of a preStop hook that outlives the grace period.
pub(crate) const PRESTOP_EXTENSION: Duration = Duration::from_secs(2);

/// What stopping needs of a container: the sandbox's [`Container`], or a
/// fake in unit tests.
pub(crate) trait Stoppable: Sync {
    /// Sends a signal.
    fn kill(&self, signal: Signal);
    /// Resolves once the run has ended.
    fn exited(&self) -> impl Future<Output = ()> + Send;
}

impl Stoppable for Container {
    fn kill(&self, signal: Signal) {
        Container::kill(self, signal);
    }

    async fn exited(&self) {
        self.wait().await;
    }
}

/// What stopping needs of its pod.
pub(crate) struct StopContext<'a> {
    /// `RuntimeConfig::time_scale`.
    pub time_scale: f64,
    /// Read for a kill-at-once (a deletion with grace 0).
    pub lifecycle: &'a watch::Sender<Lifecycle>,
    /// Where `FailedPreStopHook` events go.
    pub status: &'a StatusWriter,
}

impl StopContext<'_> {
    fn kill_now(&self) -> bool {
        self.lifecycle.borrow().kill_now()
    }

    async fn killed_now(&self) {
        let mut rx = self.lifecycle.subscribe();
        let _ = rx.wait_for(|l| l.kill_now()).await;
    }
}

/// Which containers stop first (all together) and which after, one at a
/// time: the native sidecars among `running`, in reverse order of
/// declaration.
pub(crate) fn order(spec: &PodSpec, running: &[String]) -> (Vec<String>, Vec<String>) {
    let is_sidecar = |name: &str| spec.container(name).is_some_and(|c| c.sidecar);
    let first = running.iter().filter(|n| !is_sidecar(n)).cloned().collect();
    let last = spec
        .init_containers
        .iter()
        .rev()
        .filter(|c| c.sidecar && running.contains(&c.name))
        .map(|c| c.name.clone())
        .collect();
    (first, last)
}

/// Stops one container and waits until it has ended.
///
/// Steps: run `pre_stop` (unless grace is 0), granting it one 2 s extension
/// past the grace period; then SIGKILL at once if grace is 0 or the pod is
/// being killed, else SIGTERM (a guest with no handler ends at once, 143),
/// then SIGKILL when the grace period is over or the pod is killed.
pub(crate) async fn stop_one<C: Stoppable, H: Future<Output = Result<String, String>>>(
    ctx: &StopContext<'_>,
    c: &ContainerSpec,
    container: &C,
    grace: Duration,
    pre_stop: Option<H>,
) {
    let mut deadline = after(scale(grace, ctx.time_scale));
    if let Some(hook) = pre_stop
        && !grace.is_zero()
        && !ctx.kill_now()
    {
        tokio::pin!(hook);
        let mut extended = false;
        let result = loop {
            tokio::select! {
                r = &mut hook => break Some(r),
                _ = container.exited() => break None,
                _ = ctx.killed_now() => break None,
                _ = tokio::time::sleep_until(deadline) => {
                    if extended {
                        break Some(Err("the grace period and its 2 s extension ran out".to_string()));
                    }
                    extended = true;
                    deadline = deadline
                        .checked_add(scale(PRESTOP_EXTENSION, ctx.time_scale))
                        .unwrap_or(deadline);
                    ctx.status.event(
                        EventType::Warning,
                        EventReason::FailedPreStopHook,
                        &object(c),
                        "PreStop hook still running when the grace period ended: granting a 2 s extension".into(),
                    );
                }
            }
        };
        if let Some(Err(why)) = result {
            ctx.status.event(
                EventType::Warning,
                EventReason::FailedPreStopHook,
                &object(c),
                format!("PreStop hook failed: {why}"),
            );
        }
    }
    if grace.is_zero() || ctx.kill_now() {
        container.kill(Signal::Kill);
    } else {
        container.kill(Signal::Term);
        tokio::select! {
            _ = container.exited() => {}
            _ = tokio::time::sleep_until(deadline) => container.kill(Signal::Kill),
            _ = ctx.killed_now() => container.kill(Signal::Kill),
        }
    }
    container.exited().await;
}

/// Stops every running container of the pod, in order (see [`order`]).
pub(crate) async fn terminate(pod: &Arc<PodShared>, grace: Duration) {
    let deadline = after(pod.scaled(grace));
    let running = pod.running_containers();
    let names: Vec<String> = running.iter().map(|(n, _)| n.clone()).collect();
    let (first, last) = order(&pod.spec, &names);
    let mut stopping = JoinSet::new();
    for (name, container) in running.iter().filter(|(n, _)| first.contains(n)) {
        let (pod, name, container) = (pod.clone(), name.clone(), container.clone());
        stopping.spawn(async move { stop(&pod, &name, &container, grace).await });
    }
    while stopping.join_next().await.is_some() {}
    for name in last {
        let Some((_, container)) = running.iter().find(|(n, _)| *n == name) else {
            continue;
        };
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let left = if grace.is_zero() {
            Duration::ZERO
        } else {
            unscale(left, pod.config.time_scale)
        };
        stop(pod, &name, container, left).await;
    }
}

/// A `Killing` event, then [`stop_one`] with the container's preStop hook.
async fn stop(pod: &PodShared, name: &str, container: &Container, grace: Duration) {
    let Some(c) = pod.spec.container(name) else {
        container.kill(Signal::Kill);
        return;
    };
    pod.status.event(
        EventType::Normal,
        EventReason::Killing,
        &object(c),
        format!("Stopping container {name}"),
    );
    stop_container(pod, c, container, grace).await;
}

/// [`stop_one`] for a container of this pod, with its preStop hook.
pub(crate) async fn stop_container(
    pod: &PodShared,
    c: &ContainerSpec,
    container: &Container,
    grace: Duration,
) {
    let target = Target {
        sandbox: &pod.sandbox,
        container,
        time_scale: pod.config.time_scale,
    };
    let hook = c
        .pre_stop
        .as_ref()
        .map(|action| run_action(target, action, None));
    stop_one(&pod.stop_context(), c, container, grace, hook).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::status::PodStatus;
    use crate::spec::PodSpec;
    use std::sync::Mutex;

    /// A container that records its signals: without a handler SIGTERM
    /// ends it; with one it drains for `drain` (never, if `None`).
    struct Fake {
        handler: bool,
        drain: Option<Duration>,
        signals: Mutex<Vec<(Signal, Duration)>>,
        exit: watch::Sender<Option<i32>>,
        born: tokio::time::Instant,
    }

    impl Fake {
        fn new(handler: bool, drain: Option<Duration>) -> Self {
            Self {
                handler,
                drain,
                signals: Mutex::new(Vec::new()),
                exit: watch::channel(None).0,
                born: tokio::time::Instant::now(),
            }
        }

        fn end(&self, code: i32) {
            self.exit.send_if_modified(|e| {
                let first = e.is_none();
                e.get_or_insert(code);
                first
            });
        }

        fn signals(&self) -> Vec<(Signal, u64)> {
            crate::sync::lock(&self.signals)
                .iter()
                .map(|(s, at)| (*s, at.as_secs()))
                .collect()
        }

        fn code(&self) -> Option<i32> {
            *self.exit.borrow()
        }
    }

    impl Stoppable for Fake {
        fn kill(&self, signal: Signal) {
            crate::sync::lock(&self.signals).push((signal, self.born.elapsed()));
            match signal {
                Signal::Kill => self.end(137),
                Signal::Term if !self.handler => self.end(143),
                Signal::Term => {}
            }
        }

        async fn exited(&self) {
            {
                let mut rx = self.exit.subscribe();
                let draining = async {
                    loop {
                        let termed = crate::sync::lock(&self.signals)
                            .iter()
                            .any(|(s, _)| *s == Signal::Term);
                        match self.drain {
                            Some(d) if termed => {
                                tokio::time::sleep(d).await;
                                self.end(0);
                                return;
                            }
                            _ => tokio::time::sleep(Duration::from_millis(100)).await,
                        }
                    }
                };
                tokio::select! {
                    _ = rx.wait_for(Option::is_some) => {}
                    () = draining => {}
                }
            }
        }
    }

    fn pod() -> PodSpec {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.wasm"), b"").unwrap();
        PodSpec::from_yaml(
            r#"
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  initContainers:
  - {name: log, image: a.wasm, restartPolicy: Always}
  - {name: setup, image: a.wasm}
  - {name: proxy, image: a.wasm, restartPolicy: Always}
  containers:
  - {name: app, image: a.wasm}
  - {name: worker, image: a.wasm}
"#,
            dir.path(),
        )
        .unwrap()
    }

    /// A pod spec, its lifecycle and status writer, for one stop.
    struct Harness {
        spec: PodSpec,
        lifecycle: watch::Sender<Lifecycle>,
        status: StatusWriter,
    }

    impl Harness {
        fn new(lifecycle: Lifecycle) -> Self {
            let spec = pod();
            let status = StatusWriter::new(spec.restart_policy, PodStatus::default());
            Self {
                spec,
                lifecycle: watch::channel(lifecycle).0,
                status,
            }
        }

        fn app(&self) -> &ContainerSpec {
            self.spec.container("app").unwrap()
        }

        fn context(&self) -> StopContext<'_> {
            StopContext {
                time_scale: 1.0,
                lifecycle: &self.lifecycle,
                status: &self.status,
            }
        }
    }

    const NO_HOOK: Option<std::future::Ready<Result<String, String>>> = None;

    #[test]
    fn sidecars_stop_last_in_reverse_order() {
        let spec = pod();
        let running: Vec<String> = ["proxy", "app", "log", "worker"].map(String::from).to_vec();
        let (first, last) = order(&spec, &running);
        assert_eq!(first, ["app", "worker"]);
        assert_eq!(last, ["proxy", "log"]);
    }

    #[tokio::test(start_paused = true)]
    async fn sigterm_grace_then_sigkill() {
        let h = Harness::new(Lifecycle::Running);
        let (c, ctx) = (h.app(), h.context());
        let s = Duration::from_secs;

        // No handler: SIGTERM ends it at once.
        let plain = Fake::new(false, None);
        stop_one(&ctx, c, &plain, s(30), NO_HOOK).await;
        assert_eq!(plain.signals(), [(Signal::Term, 0)]);
        assert_eq!(plain.code(), Some(143));

        // A handler that drains in 5 s: exits 0, no SIGKILL.
        let draining = Fake::new(true, Some(s(5)));
        stop_one(&ctx, c, &draining, s(30), NO_HOOK).await;
        assert_eq!(draining.signals(), [(Signal::Term, 0)]);
        assert_eq!(draining.code(), Some(0));

        // A handler that never finishes: SIGKILL when the grace is over.
        let stuck = Fake::new(true, None);
        stop_one(&ctx, c, &stuck, s(30), NO_HOOK).await;
        assert_eq!(stuck.signals(), [(Signal::Term, 0), (Signal::Kill, 30)]);
        assert_eq!(stuck.code(), Some(137));

        // Grace 0: SIGKILL at once, no SIGTERM.
        let now = Fake::new(true, None);
        stop_one(&ctx, c, &now, Duration::ZERO, NO_HOOK).await;
        assert_eq!(now.signals(), [(Signal::Kill, 0)]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_second_deletion_with_grace_zero_kills_at_once() {
        let h = Harness::new(Lifecycle::Running.delete(Duration::from_secs(30)));
        let (c, ctx, lifecycle) = (h.app(), h.context(), &h.lifecycle);
        let stuck = Fake::new(true, None);
        let stopping = stop_one(&ctx, c, &stuck, Duration::from_secs(30), NO_HOOK);
        let deleting_again = async {
            tokio::time::sleep(Duration::from_secs(3)).await;
            lifecycle.send_modify(|l| *l = l.delete(Duration::ZERO));
        };
        tokio::join!(stopping, deleting_again);
        assert_eq!(stuck.signals(), [(Signal::Term, 0), (Signal::Kill, 3)]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_pre_stop_hook_runs_first_and_gets_one_extension() {
        let h = Harness::new(Lifecycle::Running);
        let (c, ctx) = (h.app(), h.context());
        let status = &h.status;
        let s = Duration::from_secs;

        // A hook of 4 s within a grace of 10 s: SIGTERM after it.
        let quick = Fake::new(false, None);
        let hook = async {
            tokio::time::sleep(s(4)).await;
            Ok::<_, String>("done".into())
        };
        stop_one(&ctx, c, &quick, s(10), Some(hook)).await;
        assert_eq!(quick.signals(), [(Signal::Term, 4)]);

        // A hook that never ends: the grace (10 s) plus 2 s, then SIGTERM
        // and at once SIGKILL, since the deadline has passed.
        let slow = Fake::new(true, None);
        let endless = std::future::pending::<Result<String, String>>();
        stop_one(&ctx, c, &slow, s(10), Some(endless)).await;
        assert_eq!(slow.signals(), [(Signal::Term, 12), (Signal::Kill, 12)]);
        let reasons: Vec<String> = status.events().into_iter().map(|e| e.reason).collect();
        assert_eq!(reasons, ["FailedPreStopHook", "FailedPreStopHook"]);
    }
}
