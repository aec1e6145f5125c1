//! Termination: the SIGTERM contract, grace periods, and SIGKILL that no
//! guest can escape.

use std::time::{Duration, Instant};

use wasipod::{ContainerState, PodPhase};

use crate::support::{Fixture, eventually};

fn exit_of(status: &wasipod::PodStatus, name: &str) -> (i32, String, String) {
    match &status.container(name).unwrap().state {
        ContainerState::Terminated(t) => (
            t.exit_code,
            t.reason.clone(),
            t.message.clone().unwrap_or_default(),
        ),
        other => panic!("{name}: {other:?}"),
    }
}

#[tokio::test]
async fn a_guest_that_handles_sigterm_drains_and_exits_cleanly() {
    let f = Fixture::with(|c| c.time_scale(1.0));
    let work = tempfile::tempdir().unwrap();
    for image in ["graceful-p1.wasm", "graceful-p2.wasm"] {
        let w = f
            .start(&format!(
                "apiVersion: v1\nkind: Pod\nmetadata: {{name: worker}}\nspec:\n  volumes: [{{name: w, hostPath: {{path: {dir}}}}}]\n  containers:\n  - {{name: worker, image: {image}, args: [/work], volumeMounts: [{{name: w, mountPath: /work}}]}}\n",
                dir = work.path().display()
            ))
            .await;
        eventually("some jobs done", || {
            std::fs::read_to_string(work.path().join("jobs.log"))
                .is_ok_and(|l| l.contains("job 2 done"))
        })
        .await;
        let start = Instant::now();
        let status = w.pod.delete(None).await;
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "it drained within the 30 s grace period"
        );
        assert_eq!(
            exit_of(&status, "worker").0,
            0,
            "{image}: drained and exited 0"
        );
        assert_eq!(exit_of(&status, "worker").1, "Completed");
        let jobs = std::fs::read_to_string(work.path().join("jobs.log")).unwrap();
        assert!(
            jobs.lines().last().unwrap().starts_with("drained after "),
            "{image}: {jobs}"
        );
        assert!(w.log("worker").contains("SIGTERM: draining"));
        std::fs::remove_file(work.path().join("jobs.log")).unwrap();
    }
}

#[tokio::test]
async fn a_guest_without_a_handler_ends_at_once_with_143() {
    let f = Fixture::with(|c| c.time_scale(1.0));
    let w = f
        .start("apiVersion: v1\nkind: Pod\nmetadata: {name: plain}\nspec:\n  terminationGracePeriodSeconds: 3600\n  containers:\n  - {name: sleeper, image: toolbox-p1.wasm, args: [sleep, '600000']}\n")
        .await;
    w.until("running", |s| s.phase == PodPhase::Running).await;
    let start = Instant::now();
    let status = w.pod.delete(None).await;
    assert!(
        start.elapsed() < Duration::from_secs(3600),
        "did not wait out the grace period"
    );
    let (code, reason, message) = exit_of(&status, "sleeper");
    assert_eq!((code, reason.as_str()), (143, "Error"));
    assert!(message.contains("declared no SIGTERM handler"), "{message}");
}

#[tokio::test]
async fn every_adversarial_guest_is_killed_when_the_grace_period_ends() {
    // Kubernetes seconds run 100x faster: a 20 s grace period is 200 ms.
    let f = Fixture::with(|c| c.time_scale(0.01));
    // The reader blocks on a connection to another pod, which stays up, so
    // only the kill can end it.
    let peer = f
        .start("apiVersion: v1\nkind: Pod\nmetadata: {name: peer}\nspec:\n  containers:\n  - {name: echo, image: tcp-echo-p2.wasm, args: [serve, '0.0.0.0:7000']}\n")
        .await;
    let ip = peer.pod.status().pod_ip.unwrap();
    let w = f
        .start(&format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: stubborn}}\nspec:\n  terminationGracePeriodSeconds: 20\n  containers:\n  - {{name: cpu, image: toolbox-p1.wasm, args: [sh, handle-sigterm; spin]}}\n  - {{name: sleep, image: toolbox-p2.wasm, args: [sh, handle-sigterm; sleep 600000]}}\n  - {{name: accept, image: toolbox-p2.wasm, args: [sh, handle-sigterm; accept 0.0.0.0:7001]}}\n  - {{name: read, image: toolbox-p2.wasm, args: [sh, handle-sigterm; wait-port {ip}:7000; read-eof {ip}:7000]}}\n  - {{name: deaf, image: toolbox-p1.wasm, args: [sh, handle-sigterm; wait-for /nowhere]}}\n"))
        .await;
    eventually("the reader is blocked reading", || {
        w.log("read").contains("connected to")
    })
    .await;
    eventually("the server is blocked in accept", || {
        w.log("accept").contains("accepting on")
    })
    .await;
    for name in ["cpu", "sleep", "deaf"] {
        eventually("handlers declared", || {
            w.pod
                .dir()
                .join(format!("{name}/run/sigterm-handler"))
                .exists()
        })
        .await;
    }
    let grace = Duration::from_millis(200);
    let start = Instant::now();
    let status = w.pod.delete(None).await;
    let took = start.elapsed();
    assert!(
        took >= grace,
        "each declared a handler, so each got the whole grace period ({took:?})"
    );
    assert!(
        took < grace + Duration::from_millis(2100),
        "bounded by grace + 2 s + 100 ms: {took:?}"
    );
    for name in ["cpu", "sleep", "accept", "read", "deaf"] {
        let (code, reason, message) = exit_of(&status, name);
        assert_eq!(
            (code, reason.as_str(), message.as_str()),
            (137, "Error", "killed (SIGKILL)"),
            "{name}"
        );
    }
    assert_eq!(status.phase, PodPhase::Failed);
    peer.pod.delete(Some(Duration::ZERO)).await;
}

#[tokio::test]
async fn grace_zero_and_a_second_delete_kill_at_once() {
    let f = Fixture::with(|c| c.time_scale(1.0));
    let yaml = "apiVersion: v1\nkind: Pod\nmetadata: {name: hurry}\nspec:\n  terminationGracePeriodSeconds: 3600\n  containers:\n  - {name: deaf, image: toolbox-p2.wasm, args: [sh, handle-sigterm; sleep 600000]}\n";
    let w = f.start(yaml).await;
    w.until("running", |s| s.phase == PodPhase::Running).await;
    let status = w.pod.delete(Some(Duration::ZERO)).await;
    assert_eq!(exit_of(&status, "deaf").0, 137);

    // Deleting with the pod's hour of grace, then again with 0 (the CLI's
    // second Ctrl-C), ends it without waiting the hour.
    let w = f.start(yaml).await;
    eventually("handler declared", || {
        w.pod.dir().join("deaf/run/sigterm-handler").exists()
    })
    .await;
    let first = tokio::spawn({
        let pod = w.pod.clone();
        async move { pod.delete(None).await }
    });
    eventually("SIGTERM sent", || {
        w.pod.dir().join("deaf/run/terminate").exists()
    })
    .await;
    let status = w.pod.delete(Some(Duration::ZERO)).await;
    assert_eq!(exit_of(&status, "deaf").0, 137);
    assert_eq!(first.await.unwrap().phase, PodPhase::Failed);
}

#[tokio::test]
async fn the_deadline_gives_handlers_their_grace_period() {
    let f = Fixture::with(|c| c.time_scale(0.01));
    let (w, status) = f
        .run("apiVersion: v1\nkind: Pod\nmetadata: {name: timed}\nspec:\n  activeDeadlineSeconds: 50\n  terminationGracePeriodSeconds: 300\n  containers:\n  - {name: worker, image: toolbox-p2.wasm, args: [sh, handle-sigterm; wait-sigterm 20]}\n")
        .await;
    assert_eq!(status.reason.as_deref(), Some("DeadlineExceeded"));
    assert_eq!(status.phase, PodPhase::Failed);
    let (code, _, _) = exit_of(&status, "worker");
    assert_eq!(
        code,
        0,
        "the worker heard SIGTERM and finished: {}",
        w.log("worker")
    );
    assert_eq!(w.log("worker"), "got SIGTERM\ndrained\n");
}

#[tokio::test]
async fn a_log_tailing_sidecar_starts_in_order_and_does_not_block_completion() {
    let f = Fixture::new();
    let (w, status) = f
        .run("apiVersion: v1\nkind: Pod\nmetadata: {name: job}\nspec:\n  restartPolicy: Never\n  volumes: [{name: logs, emptyDir: {}}]\n  initContainers:\n  - {name: setup, image: toolbox-p1.wasm, args: [write, /logs/app.log, ''], volumeMounts: [{name: logs, mountPath: /logs}]}\n  - {name: tailer, image: toolbox-p2.wasm, restartPolicy: Always, args: [tail-follow, /logs/app.log], volumeMounts: [{name: logs, mountPath: /logs}]}\n  - {name: after, image: toolbox-p1.wasm, args: [append, /logs/app.log, init after the sidecar], volumeMounts: [{name: logs, mountPath: /logs}]}\n  containers:\n  - {name: app, image: toolbox-p1.wasm, args: [sh, append /logs/app.log line 1; append /logs/app.log line 2; append /logs/app.log done], volumeMounts: [{name: logs, mountPath: /logs}]}\n")
        .await;
    assert_eq!(
        status.phase,
        PodPhase::Succeeded,
        "the sidecar does not keep a Job-style pod alive"
    );
    assert_eq!(
        w.log("tailer"),
        "init after the sidecar\nline 1\nline 2\ndone\n"
    );
    let started: Vec<String> = w
        .pod
        .events()
        .iter()
        .filter(|e| e.reason == "Started")
        .map(|e| e.message.clone())
        .collect();
    assert_eq!(
        started,
        [
            "Started container setup",
            "Started container tailer",
            "Started container after",
            "Started container app"
        ]
    );
    let tailer = status
        .init_container_statuses
        .iter()
        .find(|c| c.name == "tailer")
        .unwrap();
    assert_eq!(
        tailer.state.terminated().unwrap().exit_code,
        0,
        "stopped with SIGTERM after the app; it flushed and exited"
    );
    assert_eq!(
        status
            .condition(wasipod::status::ConditionType::Initialized)
            .unwrap()
            .status,
        wasipod::status::ConditionStatus::True
    );
}

#[tokio::test]
async fn sidecars_restart_count_toward_readiness_and_stop_last_in_reverse_order() {
    let f = Fixture::new();
    let w = f
        .start("apiVersion: v1\nkind: Pod\nmetadata: {name: mesh}\nspec:\n  restartPolicy: Never\n  initContainers:\n  - {name: first, image: toolbox-p1.wasm, restartPolicy: Always, args: [sleep, '600000']}\n  - {name: flaky, image: toolbox-p2.wasm, restartPolicy: Always, args: [sh, sleep 5; exit 1]}\n  - name: second\n    image: toolbox-p1.wasm\n    restartPolicy: Always\n    args: [sleep, '600000']\n    readinessProbe: {exec: {command: [toolbox, exit, '1']}, periodSeconds: 1}\n  containers:\n  - {name: app, image: toolbox-p1.wasm, args: [sleep, '600000']}\n")
        .await;
    let s = w
        .until("the flaky sidecar restarted twice", |s| {
            s.container("flaky").is_some_and(|c| c.restart_count >= 2)
        })
        .await;
    assert!(
        matches!(s.phase, PodPhase::Running | PodPhase::Pending),
        "{:?}",
        s.phase
    );
    let s = w
        .until("the app runs", |s| {
            s.container("app").is_some_and(|c| c.state.is_running())
        })
        .await;
    let ready = s
        .condition(wasipod::status::ConditionType::ContainersReady)
        .unwrap();
    assert_eq!(ready.status, wasipod::status::ConditionStatus::False);
    assert!(
        ready.message.as_deref().unwrap().contains("second"),
        "an unready sidecar makes the pod unready: {ready:?}"
    );
    let status = w.pod.delete(None).await;
    let killing: Vec<String> = w
        .pod
        .events()
        .iter()
        .filter(|e| e.reason == "Killing")
        .map(|e| {
            e.message
                .trim_start_matches("Stopping container ")
                .to_string()
        })
        .collect();
    let order: Vec<&str> = killing
        .iter()
        .map(String::as_str)
        .filter(|n| ["app", "first", "second"].contains(n))
        .collect();
    assert_eq!(
        order,
        ["app", "second", "first"],
        "app containers first, then sidecars in reverse order"
    );
    assert_eq!(status.phase, PodPhase::Failed);
}

#[test]
fn probes_on_plain_init_containers_are_refused() {
    let err = wasipod::PodSpec::from_yaml(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec:\n  initContainers:\n  - {name: i, image: toolbox-p1.wasm, livenessProbe: {exec: {command: [x]}}}\n  containers: [{name: a, image: toolbox-p1.wasm}]\n",
        crate::support::images(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("spec.initContainers[0].livenessProbe: Forbidden: may not be set for init containers without restartPolicy=Always"), "{err}");
}
