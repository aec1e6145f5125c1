//! What the kubelet does with a pod it finds again after a restart of the
//! node (or of the runtime) whose sandbox is gone: the decision part of its
//! `computePodActions` when the sandbox must be made again. A pure function
//! of the recorded status; [`Runtime::restore_pod`](crate::Runtime::restore_pod)
//! acts on it.

use crate::api::status::{
    self, ConditionStatus, ConditionType, ContainerState, ContainerStatus, PodPhase, PodStatus,
    StateTerminated, StateWaiting, WaitingReason,
};
use crate::spec::{ContainerKind, PodSpec, RestartPolicy};

/// What becomes of a recorded pod.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Restore {
    /// It was being deleted: its deletion completes, nothing runs.
    Remove,
    /// It had finished, or its policy does not run it again: it comes back
    /// with this final status, and nothing runs.
    Finished(PodStatus),
    /// It runs again in a new sandbox, from this status: each container
    /// that had run shows that run as `lastState` and counts one restart
    /// more when it starts.
    Restart(PodStatus),
}

/// How a run the node's restart cut short is shown (`lastState` after a
/// restart, `state` when the pod does not run again): what containerd
/// reports of a task it lost, exit code 255 with reason `Unknown`.
const LOST_EXIT_CODE: i32 = 255;
const LOST_REASON: &str = "Unknown";

/// Decides the fate of a pod recorded with `recorded` (its last saved
/// status), `deleting` when its record has a `deletionTimestamp`.
///
/// Steps: a pod being deleted is removed; a finished one stays finished;
/// one none of whose containers ever ran starts as new; one whose policy is
/// `Never` ends `Failed`, its running containers lost; any other runs
/// again — init containers first, as in a new sandbox, and app containers
/// that succeeded under `OnFailure` not again.
pub(crate) fn decide(
    spec: &PodSpec,
    mut recorded: PodStatus,
    deleting: bool,
    at: status::Time,
) -> Restore {
    if deleting {
        return Restore::Remove;
    }
    recorded.sidecars = spec
        .init_containers
        .iter()
        .filter(|c| c.sidecar)
        .map(|c| c.name.clone())
        .collect();
    if recorded.phase.is_terminal() {
        return Restore::Finished(recorded);
    }
    let all = |s: &PodStatus| -> Vec<ContainerStatus> {
        s.init_container_statuses
            .iter()
            .chain(&s.container_statuses)
            .cloned()
            .collect()
    };
    let ever_ran = all(&recorded)
        .iter()
        .any(|c| !matches!(c.state, ContainerState::Waiting(_)) || c.last_state.is_some());
    if ever_ran && spec.restart_policy == RestartPolicy::Never {
        for c in recorded
            .init_container_statuses
            .iter_mut()
            .chain(&mut recorded.container_statuses)
        {
            if let ContainerState::Running(r) = &c.state {
                c.state = lost(Some(r.started_at), at);
                c.ready = false;
                c.started = Some(false);
            }
        }
        recorded.derive(spec.restart_policy, true, false, at);
        return Restore::Finished(recorded);
    }
    for (kind, list) in [
        (ContainerKind::Init, &mut recorded.init_container_statuses),
        (ContainerKind::App, &mut recorded.container_statuses),
    ] {
        for c in list.iter_mut() {
            let succeeded = c.state.terminated().is_some_and(|t| t.exit_code == 0);
            if kind == ContainerKind::App
                && succeeded
                && spec.restart_policy == RestartPolicy::OnFailure
            {
                continue;
            }
            again(c, at);
        }
    }
    recorded.phase = PodPhase::Pending;
    recorded.reason = None;
    recorded.message = None;
    recorded.set_condition(
        ConditionType::PodReadyToStartContainers,
        ConditionStatus::False,
        None,
        None,
        at,
    );
    recorded.derive(spec.restart_policy, false, false, at);
    Restore::Restart(recorded)
}

/// A container to run again: its last run (cut short if it was running)
/// becomes `lastState`, and it waits to be created.
fn again(c: &mut ContainerStatus, at: status::Time) {
    let previous = match std::mem::replace(
        &mut c.state,
        ContainerState::Waiting(StateWaiting {
            reason: WaitingReason::ContainerCreating.as_str().into(),
            message: None,
        }),
    ) {
        ContainerState::Running(r) => Some(lost(Some(r.started_at), at)),
        ContainerState::Terminated(t) => Some(ContainerState::Terminated(t)),
        ContainerState::Waiting(_) => None,
    };
    if previous.is_some() {
        c.last_state = previous;
    }
    c.ready = false;
    c.started = Some(false);
}

/// A run the node's restart ended.
fn lost(started_at: Option<status::Time>, at: status::Time) -> ContainerState {
    ContainerState::Terminated(StateTerminated {
        exit_code: LOST_EXIT_CODE,
        reason: LOST_REASON.into(),
        message: None,
        started_at,
        finished_at: at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(policy: &str) -> PodSpec {
        let text = format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  restartPolicy: {policy}\n  initContainers: [{{name: init, image: x.wasm}}]\n  containers: [{{name: a, image: x.wasm}}, {{name: b, image: x.wasm}}]\n"
        );
        PodSpec::try_from(
            crate::api::manifest::ManifestFile::from_yaml(&text, "/", "<test>").unwrap(),
        )
        .unwrap()
    }

    fn status_of(init: ContainerState, a: ContainerState, b: ContainerState) -> PodStatus {
        let cs = |name: &str, state: ContainerState| ContainerStatus {
            state,
            ..ContainerStatus::new(name, "x.wasm", WaitingReason::ContainerCreating)
        };
        PodStatus {
            phase: PodPhase::Running,
            init_container_statuses: vec![cs("init", init)],
            container_statuses: vec![cs("a", a), cs("b", b)],
            ..Default::default()
        }
    }

    fn running() -> ContainerState {
        ContainerState::Running(status::StateRunning {
            started_at: status::now(),
        })
    }

    fn exited(code: i32) -> ContainerState {
        ContainerState::Terminated(StateTerminated {
            exit_code: code,
            reason: if code == 0 { "Completed" } else { "Error" }.into(),
            message: None,
            started_at: None,
            finished_at: status::now(),
        })
    }

    #[test]
    fn a_running_pod_runs_again_from_its_init_containers() {
        let now = status::now();
        let Restore::Restart(s) = decide(
            &spec("Always"),
            status_of(exited(0), running(), exited(1)),
            false,
            now,
        ) else {
            panic!("not restarted")
        };
        assert_eq!(s.phase, PodPhase::Pending);
        for c in s
            .init_container_statuses
            .iter()
            .chain(&s.container_statuses)
        {
            assert_eq!(c.state.waiting_reason(), Some("ContainerCreating"), "{c:?}");
        }
        let a = s.container("a").unwrap();
        let lost = a.last_state.as_ref().and_then(|l| l.terminated()).unwrap();
        assert_eq!((lost.exit_code, lost.reason.as_str()), (255, "Unknown"));
        // The run it had is counted when it starts again.
        let mut a = a.clone();
        a.start(now, "id".into(), true, true).unwrap();
        assert_eq!(a.restart_count, 1);
        let b = s.container("b").unwrap();
        assert_eq!(
            b.last_state
                .as_ref()
                .unwrap()
                .terminated()
                .unwrap()
                .exit_code,
            1
        );
    }

    #[test]
    fn on_failure_keeps_app_containers_that_succeeded() {
        let Restore::Restart(s) = decide(
            &spec("OnFailure"),
            status_of(exited(0), exited(0), running()),
            false,
            status::now(),
        ) else {
            panic!("not restarted")
        };
        assert_eq!(
            s.container("a")
                .unwrap()
                .state
                .terminated()
                .unwrap()
                .exit_code,
            0
        );
        assert!(s.container("b").unwrap().last_state.is_some());
    }

    #[test]
    fn never_ends_failed_once_a_container_ran_and_starts_otherwise() {
        let Restore::Finished(s) = decide(
            &spec("Never"),
            status_of(exited(0), running(), running()),
            false,
            status::now(),
        ) else {
            panic!("restarted under Never")
        };
        assert_eq!(s.phase, PodPhase::Failed);
        assert_eq!(
            s.container("a")
                .unwrap()
                .state
                .terminated()
                .unwrap()
                .exit_code,
            255
        );
        let waiting = || {
            ContainerState::Waiting(StateWaiting {
                reason: "ContainerCreating".into(),
                message: None,
            })
        };
        assert!(matches!(
            decide(
                &spec("Never"),
                status_of(waiting(), waiting(), waiting()),
                false,
                status::now()
            ),
            Restore::Restart(_)
        ));
    }

    #[test]
    fn finished_and_deleted_pods_do_not_run() {
        let mut done = status_of(exited(0), exited(0), exited(0));
        done.phase = PodPhase::Succeeded;
        assert_eq!(
            decide(&spec("Always"), done.clone(), false, status::now()),
            Restore::Finished(done.clone())
        );
        assert_eq!(
            decide(&spec("Always"), done, true, status::now()),
            Restore::Remove
        );
    }
}
