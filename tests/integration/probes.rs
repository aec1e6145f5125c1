//! Probes (exec, httpGet, tcpSocket; startup, liveness, readiness) and
//! lifecycle hooks (postStart, preStop), on real guests. Kubernetes seconds
//! run 100x faster here (periodSeconds: 1 is 10 ms).

use std::time::Duration;

use wasipod::PodPhase;
use wasipod::status::{ConditionStatus, ConditionType};

use crate::support::{Fixture, eventually};

fn fast() -> Fixture {
    Fixture::with(|c| c.time_scale(0.01))
}

fn count(w: &crate::support::Watched, reason: &str, text: &str) -> usize {
    w.pod
        .events()
        .iter()
        .filter(|e| e.reason == reason && e.message.contains(text))
        .count()
}

#[tokio::test]
async fn a_failing_exec_liveness_probe_restarts_the_container() {
    let f = fast();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("healthy"), "yes").unwrap();
    let w = f
        .start(&format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: live}}\nspec:\n  volumes: [{{name: p, hostPath: {{path: {d}}}}}]\n  containers:\n  - name: app\n    image: toolbox-p1.wasm\n    args: [sleep, '600000']\n    volumeMounts: [{{name: p, mountPath: /probe}}]\n    livenessProbe:\n      exec: {{command: [toolbox, sh, \"append /probe/runs x; cat /probe/healthy\"]}}\n      periodSeconds: 1\n      timeoutSeconds: 100\n      failureThreshold: 3\n",
            d = dir.path().display()
        ))
        .await;
    // Healthy: the probe keeps passing and nothing restarts.
    let runs = dir.path().join("runs");
    eventually("a few probes ran", || {
        std::fs::read_to_string(&runs).is_ok_and(|r| r.lines().count() >= 2)
    })
    .await;
    assert_eq!(count(&w, "Unhealthy", ""), 0);
    std::fs::remove_file(dir.path().join("healthy")).unwrap();
    let s = w
        .until("restarted", |s| {
            s.container("app").is_some_and(|c| c.restart_count >= 1)
        })
        .await;
    let last = s
        .container("app")
        .unwrap()
        .last_state
        .as_ref()
        .unwrap()
        .terminated()
        .unwrap()
        .clone();
    assert_eq!(
        last.exit_code, 143,
        "killed through the termination sequence (no SIGTERM handler)"
    );
    assert!(
        count(
            &w,
            "Unhealthy",
            "Liveness probe failed: command [\"toolbox\", \"sh\", \"append /probe/runs x; cat /probe/healthy\"] exited with 1"
        ) >= 3
    );
    assert!(
        count(
            &w,
            "Killing",
            "Container app failed liveness probe, will be restarted"
        ) >= 1
    );
    w.pod.delete(Some(Duration::ZERO)).await;
}

#[tokio::test]
async fn readiness_over_http_flips_ready_both_ways() {
    let f = fast();
    let port = crate::network::free_port();
    let w = f
        .start(&format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: ready}}\nspec:\n  containers:\n  - name: web\n    image: http-server-p2.wasm\n    args: ['0.0.0.0:8080']\n    ports: [{{name: http, containerPort: 8080, hostPort: {port}, hostIP: 127.0.0.1}}]\n    readinessProbe:\n      httpGet: {{path: /healthz, port: http}}\n      periodSeconds: 1\n      failureThreshold: 2\n      successThreshold: 2\n"
        ))
        .await;
    let ready = |want: bool| {
        move |s: &wasipod::PodStatus| {
            s.container("web").is_some_and(|c| c.ready == want)
                && s.condition(ConditionType::Ready)
                    .is_some_and(|c| (c.status == ConditionStatus::True) == want)
        }
    };
    let s = w.until("ready", ready(true)).await;
    assert_eq!(
        s.condition(ConditionType::ContainersReady).unwrap().status,
        ConditionStatus::True
    );
    let (status, _) =
        tokio::task::spawn_blocking(move || crate::network::http(port, "/admin/fail"))
            .await
            .unwrap();
    assert_eq!(status, 200);
    let s = w.until("not ready", ready(false)).await;
    assert_eq!(
        s.condition(ConditionType::Ready).unwrap().reason.as_deref(),
        Some("ContainersNotReady")
    );
    assert_eq!(s.phase, PodPhase::Running, "an unready pod keeps running");
    assert!(
        count(
            &w,
            "Unhealthy",
            "Readiness probe failed: HTTP probe failed with statuscode: 500"
        ) >= 2
    );
    tokio::task::spawn_blocking(move || crate::network::http(port, "/admin/recover"))
        .await
        .unwrap();
    w.until("ready again", ready(true)).await;
    assert_eq!(
        w.pod.status().container("web").unwrap().restart_count,
        0,
        "readiness never restarts"
    );
    w.pod.delete(Some(Duration::ZERO)).await;
}

#[tokio::test]
async fn a_startup_probe_gates_the_other_probes() {
    let f = fast();
    let dir = tempfile::tempdir().unwrap();
    let w = f
        .start(&format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: slow-start}}\nspec:\n  volumes: [{{name: p, hostPath: {{path: {d}}}}}]\n  containers:\n  - name: app\n    image: toolbox-p1.wasm\n    args: [sleep, '600000']\n    volumeMounts: [{{name: p, mountPath: /probe}}]\n    startupProbe:\n      exec: {{command: [toolbox, cat, /probe/started]}}\n      periodSeconds: 1\n      failureThreshold: 1000\n    livenessProbe:\n      exec: {{command: [toolbox, exit, '1']}}\n      periodSeconds: 1\n      failureThreshold: 2\n    readinessProbe:\n      tcpSocket: {{port: 7000}}\n      periodSeconds: 1\n  - {{name: echo, image: tcp-echo-p2.wasm, args: [serve, '0.0.0.0:7000']}}\n",
            d = dir.path().display()
        ))
        .await;
    eventually("startup probe failing", || {
        count(&w, "Unhealthy", "Startup probe failed") >= 5
    })
    .await;
    let s = w.pod.status();
    let c = s.container("app").unwrap();
    assert!(c.state.is_running());
    assert_eq!(
        (c.started, c.ready, c.restart_count),
        (Some(false), false, 0)
    );
    assert_eq!(
        count(&w, "Unhealthy", "Liveness"),
        0,
        "liveness waits for the startup probe"
    );
    assert_eq!(
        count(&w, "Unhealthy", "Readiness"),
        0,
        "readiness waits for the startup probe"
    );
    // Started: now liveness runs (and fails), readiness runs (and passes).
    std::fs::write(dir.path().join("started"), "yes").unwrap();
    w.until("restarted by liveness", |s| {
        s.container("app").is_some_and(|c| c.restart_count >= 1)
    })
    .await;
    assert!(count(&w, "Unhealthy", "Liveness probe failed") >= 2);
    assert!(count(&w, "Killing", "failed liveness probe") >= 1);
    assert_eq!(
        count(&w, "Unhealthy", "Readiness"),
        0,
        "the echo container answers the tcpSocket probe"
    );
    w.pod.delete(Some(Duration::ZERO)).await;
}

#[tokio::test]
async fn post_start_runs_before_the_container_counts_as_running_and_can_fail_it() {
    let f = fast();
    let (w, status) = f
        .run("apiVersion: v1\nkind: Pod\nmetadata: {name: hooks}\nspec:\n  restartPolicy: Never\n  volumes: [{name: w, emptyDir: {}}]\n  containers:\n  - name: app\n    image: toolbox-p2.wasm\n    args: [sh, wait-for /w/ready; cat /w/hook]\n    volumeMounts: [{name: w, mountPath: /w}]\n    lifecycle:\n      postStart: {exec: {command: [toolbox, sh, sleep 20; write /w/hook written by postStart; write /w/ready x]}}\n  - name: broken\n    image: toolbox-p1.wasm\n    args: [sleep, '600000']\n    lifecycle:\n      postStart: {exec: {command: [toolbox, exit, '3']}}\n")
        .await;
    assert_eq!(w.log("app"), "written by postStart\n");
    let started = w
        .pod
        .events()
        .iter()
        .position(|e| e.message == "Started container app")
        .unwrap();
    assert!(
        w.pod
            .events()
            .iter()
            .take(started)
            .all(|e| !e.message.contains("Container app exited"))
    );
    let broken = status
        .container("broken")
        .unwrap()
        .state
        .terminated()
        .unwrap()
        .clone();
    assert_eq!(broken.exit_code, 137);
    assert!(
        broken
            .message
            .unwrap()
            .contains("the postStart hook failed")
    );
    assert!(broken.started_at.is_none(), "it never counted as running");
    assert_eq!(
        count(
            &w,
            "FailedPostStartHook",
            "PostStart hook failed: command [\"toolbox\", \"exit\", \"3\"] exited with 3"
        ),
        1
    );
    assert_eq!(status.phase, PodPhase::Failed);
}

#[tokio::test]
async fn pre_stop_runs_before_sigterm() {
    let f = fast();
    let dir = tempfile::tempdir().unwrap();
    let w = f
        .start(&format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: prestop}}\nspec:\n  volumes: [{{name: w, hostPath: {{path: {d}}}}}]\n  containers:\n  - name: exec\n    image: toolbox-p2.wasm\n    args: [sh, handle-sigterm; wait-sigterm; append /w/order sigterm]\n    volumeMounts: [{{name: w, mountPath: /w}}]\n    lifecycle:\n      preStop: {{exec: {{command: [toolbox, append, /w/order, prestop]}}}}\n  - name: sleep\n    image: toolbox-p1.wasm\n    args: [sh, handle-sigterm; wait-sigterm; append /w/slept sigterm]\n    volumeMounts: [{{name: w, mountPath: /w}}]\n    lifecycle:\n      preStop: {{sleep: {{seconds: 5}}}}\n  - name: web\n    image: http-server-p2.wasm\n    args: ['0.0.0.0:8080']\n    lifecycle:\n      preStop: {{httpGet: {{path: /admin/fail, port: 8080}}}}\n",
            d = dir.path().display()
        ))
        .await;
    for name in ["exec", "sleep"] {
        eventually("handler declared", || {
            w.pod
                .dir()
                .join(format!("{name}/run/sigterm-handler"))
                .exists()
        })
        .await;
    }
    eventually("web listens", || w.log("web").contains("listening")).await;
    let start = std::time::Instant::now();
    let status = w.pod.delete(None).await;
    assert!(
        start.elapsed() >= Duration::from_millis(50),
        "the 5 s sleep hook (50 ms here) ran first"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("order")).unwrap(),
        "prestop\nsigterm\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("slept")).unwrap(),
        "sigterm\n"
    );
    assert!(
        w.log("web").contains("GET /admin/fail 200"),
        "{}",
        w.log("web")
    );
    for name in ["exec", "sleep"] {
        assert_eq!(
            status
                .container(name)
                .unwrap()
                .state
                .terminated()
                .unwrap()
                .exit_code,
            0,
            "{name}"
        );
    }
}

#[tokio::test]
async fn a_pre_stop_that_never_ends_gets_two_more_seconds_then_the_kill() {
    let f = fast();
    let w = f
        .start("apiVersion: v1\nkind: Pod\nmetadata: {name: stuck}\nspec:\n  terminationGracePeriodSeconds: 3\n  containers:\n  - name: app\n    image: toolbox-p1.wasm\n    args: [sleep, '600000']\n    lifecycle:\n      preStop: {exec: {command: [toolbox, sleep, '600000']}}\n")
        .await;
    w.until("running", |s| s.phase == PodPhase::Running).await;
    let start = std::time::Instant::now();
    let status = w.pod.delete(None).await;
    let took = start.elapsed();
    // 3 s grace + 2 s extension = 50 ms here; the bound adds the 100 ms of
    // the guarantee and generous slack.
    assert!(took >= Duration::from_millis(50), "{took:?}");
    assert!(took < Duration::from_millis(50 + 2100), "{took:?}");
    assert_eq!(
        count(&w, "FailedPreStopHook", "granting a 2 s extension"),
        1
    );
    assert_eq!(
        count(
            &w,
            "FailedPreStopHook",
            "the grace period and its 2 s extension ran out"
        ),
        1
    );
    assert_eq!(
        status
            .container("app")
            .unwrap()
            .state
            .terminated()
            .unwrap()
            .exit_code,
        143
    );
}

#[test]
fn probe_fields_are_validated() {
    let bad = |extra: &str| {
        wasipod::PodSpec::from_yaml(
            &format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: x}}\nspec:\n  containers:\n  - name: a\n    image: toolbox-p1.wasm\n{extra}"),
            crate::support::images(),
        )
        .unwrap_err()
        .to_string()
    };
    assert!(
        bad("    livenessProbe: {exec: {command: [x]}, successThreshold: 2}\n").contains(
            "spec.containers[0].livenessProbe.successThreshold: Invalid value: must be 1"
        )
    );
    assert!(
        bad("    readinessProbe: {grpc: {port: 9}, tcpSocket: {port: 9}}\n").contains(
            "spec.containers[0].readinessProbe: Required value: must specify exactly one handler"
        )
    );
    assert!(
        bad("    readinessProbe: {httpGet: {port: 80, scheme: HTTPS}}\n").contains(
            "spec.containers[0].readinessProbe.httpGet.scheme: Unsupported value: \"HTTPS\""
        )
    );
    assert!(bad("    readinessProbe: {httpGet: {port: web}}\n").contains("spec.containers[0].readinessProbe.httpGet.port: Invalid value: \"web\": no container port of that name"));
    assert!(
        bad("    startupProbe: {periodSeconds: 0, tcpSocket: {port: 80}}\n")
            .contains("spec.containers[0].startupProbe.periodSeconds: Invalid value: 0")
    );
    assert!(bad("    readinessProbe: {periodSeconds: 5}\n").contains(
        "spec.containers[0].readinessProbe: Required value: must specify exactly one handler"
    ));
    let ok = wasipod::PodSpec::from_yaml(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec:\n  containers:\n  - name: a\n    image: toolbox-p1.wasm\n    ports: [{name: web, containerPort: 8080}]\n    readinessProbe: {httpGet: {port: web, path: healthz}}\n",
        crate::support::images(),
    )
    .unwrap();
    let p = ok.containers[0].readiness_probe.clone().unwrap();
    assert_eq!(
        (
            p.period.as_secs(),
            p.timeout.as_secs(),
            p.success_threshold,
            p.failure_threshold,
            p.initial_delay.as_secs()
        ),
        (10, 1, 1, 3, 0)
    );
    assert_eq!(
        p.action,
        wasipod::spec::Action::HttpGet {
            port: 8080,
            path: "/healthz".into(),
            host: None,
            headers: vec![]
        }
    );
}

#[tokio::test]
async fn readiness_counts_as_failed_until_its_initial_delay_and_tcp_failures_are_reported() {
    let f = fast();
    let w = f
        .start("apiVersion: v1\nkind: Pod\nmetadata: {name: delay}\nspec:\n  containers:\n  - name: late\n    image: tcp-echo-p2.wasm\n    args: [serve, '0.0.0.0:7000']\n    readinessProbe: {tcpSocket: {port: 7000}, initialDelaySeconds: 100000}\n  - name: plain\n    image: tcp-echo-p2.wasm\n    args: [serve, '0.0.0.0:7001']\n  - name: closed\n    image: toolbox-p1.wasm\n    args: [sleep, '600000']\n    readinessProbe: {tcpSocket: {port: 7999}, periodSeconds: 1, failureThreshold: 1}\n")
        .await;
    eventually("the closed port was probed", || {
        count(&w, "Unhealthy", "Readiness probe failed: dial tcp") >= 2
    })
    .await;
    let s = w.pod.status();
    assert!(
        s.container("plain").unwrap().ready,
        "no readiness probe: ready when running"
    );
    let late = s.container("late").unwrap();
    assert!(
        late.state.is_running() && !late.ready,
        "not ready before its (long) initial delay"
    );
    assert!(!s.container("closed").unwrap().ready);
    let e = w
        .pod
        .events()
        .into_iter()
        .find(|e| e.message.contains("dial tcp"))
        .unwrap();
    assert!(
        e.message.ends_with(":7999: connect: connection refused"),
        "{}",
        e.message
    );
    assert_eq!(e.object, "spec.containers{closed}");
    w.pod.delete(Some(Duration::ZERO)).await;
}

#[tokio::test]
async fn an_exec_probe_that_outlives_its_timeout_is_killed_and_fails() {
    let f = fast();
    let w = f
        .start("apiVersion: v1\nkind: Pod\nmetadata: {name: slowprobe}\nspec:\n  containers:\n  - name: app\n    image: toolbox-p1.wasm\n    args: [sleep, '600000']\n    readinessProbe: {exec: {command: [toolbox, sleep, '600000']}, timeoutSeconds: 2, periodSeconds: 1}\n")
        .await;
    eventually("timed out twice", || {
        count(
            &w,
            "Unhealthy",
            "Readiness probe failed: timed out after 2s",
        ) >= 2
    })
    .await;
    let s = w.pod.status();
    assert!(!s.container("app").unwrap().ready);
    assert!(
        s.container("app").unwrap().state.is_running(),
        "a readiness failure never kills"
    );
    w.pod.delete(Some(Duration::ZERO)).await;
}

/// gRPC probes speak `grpc.health.v1.Health/Check` to a real health server
/// (tonic-health in a wasip2 guest): SERVING passes, NOT_SERVING fails and
/// a liveness probe restarts the container, an unknown service fails with
/// the server's NotFound.
#[tokio::test]
async fn grpc_probes_pass_fail_and_restart() {
    let f = fast();
    let dir = tempfile::tempdir().unwrap();
    let w = f
        .start(&format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: grpc}}\nspec:\n  volumes: [{{name: p, hostPath: {{path: {d}}}}}]\n  containers:\n  - name: server\n    image: grpc-health-p2.wasm\n    args: ['0.0.0.0:50051', /probe/unhealthy]\n    volumeMounts: [{{name: p, mountPath: /probe}}]\n    readinessProbe:\n      grpc: {{port: 50051}}\n      periodSeconds: 1\n      timeoutSeconds: 100\n    livenessProbe:\n      grpc: {{port: 50051, service: app}}\n      periodSeconds: 1\n      timeoutSeconds: 100\n      failureThreshold: 3\n  - name: other\n    image: grpc-health-p2.wasm\n    args: ['0.0.0.0:50052']\n    readinessProbe:\n      grpc: {{port: 50052, service: nosuch}}\n      periodSeconds: 1\n      timeoutSeconds: 100\n",
            d = dir.path().display()
        ))
        .await;
    w.until("the server is ready over gRPC", |s| {
        s.container("server").is_some_and(|c| c.ready)
    })
    .await;
    eventually("the unknown service fails readiness", || {
        count(
            &w,
            "Unhealthy",
            "Readiness probe failed: rpc error: code = NotFound",
        ) >= 2
    })
    .await;
    assert!(!w.pod.status().container("other").unwrap().ready);
    // (A probe may fail to connect before the server listens.)
    assert_eq!(
        count(&w, "Unhealthy", "Liveness probe failed: service unhealthy"),
        0,
        "app is SERVING"
    );
    std::fs::write(dir.path().join("unhealthy"), "").unwrap();
    let s = w
        .until("restarted by the gRPC liveness probe", |s| {
            s.container("server").is_some_and(|c| c.restart_count >= 1)
        })
        .await;
    let last = s.container("server").unwrap().last_state.clone().unwrap();
    assert_eq!(last.terminated().unwrap().exit_code, 143);
    assert!(
        count(
            &w,
            "Unhealthy",
            "Liveness probe failed: service unhealthy (responded with \"NOT_SERVING\")"
        ) >= 3
    );
    assert!(count(&w, "Killing", "failed liveness probe") >= 1);
    w.pod.delete(Some(Duration::ZERO)).await;
}

#[test]
fn grpc_probe_fields_are_checked() {
    let bad = |container: &str| {
        wasipod::PodSpec::from_yaml(
            &format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: x}}\nspec:\n  containers:\n  - name: a\n    image: hello-p1.wasm\n{container}"),
            crate::support::images(),
        )
        .unwrap_err()
        .to_string()
    };
    let m = bad("    livenessProbe: {grpc: {port: 0}}\n");
    assert!(
        m.contains("spec.containers[0].livenessProbe.grpc.port: Invalid value: 0: must be between 1 and 65535, inclusive"),
        "{m}"
    );
    let m = bad("    lifecycle: {preStop: {grpc: {port: 1}}}\n");
    assert!(
        m.contains("spec.containers[0].lifecycle.preStop.grpc: Forbidden"),
        "{m}"
    );
}
