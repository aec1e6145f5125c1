//! The supervisor: restart policies, back-off and CrashLoopBackOff,
//! deadlines, fairness between guests, deletion.

use std::time::Duration;

use wasipod::{ContainerState, PodPhase};

use crate::support::Fixture;

fn pod(name: &str, policy: &str, containers: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  restartPolicy: {policy}\n  volumes: [{{name: w, emptyDir: {{}}}}]\n  containers:\n{containers}"
    )
}

#[tokio::test]
async fn never_keeps_the_first_outcome() {
    let f = Fixture::new();
    let (w, status) = f
        .run(&pod(
            "never-fail",
            "Never",
            "  - {name: a, image: toolbox-p1.wasm, args: [exit, '3']}\n",
        ))
        .await;
    assert_eq!(status.phase, PodPhase::Failed);
    let c = status.container("a").unwrap();
    assert_eq!((c.restart_count, w.terminated("a").exit_code), (0, 3));
    assert_eq!(w.terminated("a").reason, "Error");

    let (_, status) = f
        .run(&pod(
            "never-ok",
            "Never",
            "  - {name: a, image: toolbox-p1.wasm, args: [exit, '0']}\n",
        ))
        .await;
    assert_eq!(status.phase, PodPhase::Succeeded);
    assert_eq!(
        status
            .container("a")
            .unwrap()
            .state
            .terminated()
            .unwrap()
            .reason,
        "Completed"
    );
}

#[tokio::test]
async fn on_failure_restarts_until_success() {
    let f = Fixture::new();
    let (w, status) = f
        .run(&pod(
            "onfailure",
            "OnFailure",
            "  - {name: flaky, image: toolbox-p1.wasm, args: [fail-until, /w/runs, '3'], volumeMounts: [{name: w, mountPath: /w}]}\n  - {name: steady, image: toolbox-p2.wasm, args: [exit, '0']}\n",
        ))
        .await;
    assert_eq!(status.phase, PodPhase::Succeeded);
    let flaky = status.container("flaky").unwrap();
    assert_eq!(flaky.restart_count, 2);
    assert_eq!(
        flaky
            .last_state
            .as_ref()
            .unwrap()
            .terminated()
            .unwrap()
            .exit_code,
        1
    );
    assert_eq!(
        status.container("steady").unwrap().restart_count,
        0,
        "exit 0 is not restarted under OnFailure"
    );
    assert!(w.log("flaky").contains("run 3 of 3: succeeding"));
    let previous = String::from_utf8(
        w.pod
            .logs(&wasipod::LogOptions::container("flaky").previous())
            .unwrap(),
    )
    .unwrap();
    assert!(previous.contains("run 2 of 3: failing"), "{previous}");
}

#[tokio::test]
async fn always_restarts_even_after_success_and_backs_off_exponentially() {
    let f = Fixture::new();
    let w = f
        .start(&pod(
            "always",
            "Always",
            "  - {name: a, image: toolbox-p1.wasm, args: [echo, done]}\n",
        ))
        .await;
    let status = w
        .until("5 restarts", |s| {
            s.container("a").is_some_and(|c| c.restart_count >= 5)
        })
        .await;
    assert_eq!(
        status.phase,
        PodPhase::Running,
        "restartPolicy Always never finishes by itself"
    );
    let backoffs: Vec<String> = w
        .pod
        .events()
        .iter()
        .filter(|e| e.reason == "BackOff")
        .take(4)
        .map(|e| e.message.split_whitespace().nth(1).unwrap().to_string())
        .collect();
    assert_eq!(
        backoffs,
        ["10s", "20s", "40s", "1m20s"],
        "the first restart at once (no BackOff), then 10 s doubling (time scaled 1000x here)"
    );
    let status = w.pod.delete(None).await;
    // Deleted, it ends terminal: Succeeded only if its last run had just
    // completed (every container exited 0, as the kubelet judges a
    // terminal pod), Failed if a run was stopped or a restart was pending.
    let completed = status
        .container("a")
        .unwrap()
        .state
        .terminated()
        .is_some_and(|t| t.exit_code == 0);
    let expected = if completed {
        PodPhase::Succeeded
    } else {
        PodPhase::Failed
    };
    assert_eq!(status.phase, expected, "{status:?}");
    assert_eq!(
        w.pod.logs(&wasipod::LogOptions::container("a")).unwrap(),
        b"done\n",
        "the latest run's log"
    );
}

#[tokio::test]
async fn a_crashing_container_waits_in_crash_loop_back_off() {
    // Real time: the first restart is at once, the second waits 10 s, in
    // CrashLoopBackOff.
    let f = Fixture::with(|c| c.time_scale(1.0));
    let w = f
        .start(&pod(
            "crashloop",
            "Always",
            "  - {name: crash, image: toolbox-p1.wasm, args: [exit, '7']}\n",
        ))
        .await;
    let status = w
        .until("CrashLoopBackOff", |s| {
            s.container("crash")
                .is_some_and(|c| c.state.waiting_reason() == Some("CrashLoopBackOff"))
        })
        .await;
    let c = status.container("crash").unwrap();
    assert_eq!(c.restart_count, 1, "the first restart did not wait");
    assert!(!c.ready);
    let last = c.last_state.as_ref().unwrap().terminated().unwrap();
    assert_eq!((last.exit_code, last.reason.as_str()), (7, "Error"));
    match &c.state {
        ContainerState::Waiting(wt) => {
            assert!(wt.message.as_deref().unwrap().starts_with(
                "back-off 10s restarting failed container=crash pod=crashloop_default("
            ))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        status.phase,
        PodPhase::Running,
        "kubelet counts a restarting container as running"
    );
    let status = w.pod.delete(Some(Duration::ZERO)).await;
    assert_eq!(status.phase, PodPhase::Failed);
}

#[tokio::test]
async fn a_failed_init_container_fails_the_pod_under_never_and_is_retried_otherwise() {
    let f = Fixture::new();
    let yaml = |policy: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: init-{p}}}\nspec:\n  restartPolicy: {policy}\n  volumes: [{{name: w, emptyDir: {{}}}}]\n  initContainers:\n  - {{name: setup, image: toolbox-p1.wasm, args: [fail-until, /w/runs, '2'], volumeMounts: [{{name: w, mountPath: /w}}]}}\n  containers:\n  - {{name: app, image: toolbox-p1.wasm, args: [cat, /w/runs], volumeMounts: [{{name: w, mountPath: /w}}]}}\n",
            p = policy.to_lowercase()
        )
    };
    let (w, status) = f.run(&yaml("Never")).await;
    assert_eq!(status.phase, PodPhase::Failed);
    assert_eq!(w.terminated("setup").exit_code, 1);
    assert_eq!(
        status.container("app").unwrap().state.waiting_reason(),
        Some("PodInitializing"),
        "the app never started"
    );
    let init = status
        .condition(wasipod::status::ConditionType::Initialized)
        .unwrap();
    assert_eq!(init.reason.as_deref(), Some("ContainersNotInitialized"));

    let (w, status) = f.run(&yaml("OnFailure")).await;
    assert_eq!(status.phase, PodPhase::Succeeded);
    assert_eq!(status.container("setup").unwrap().restart_count, 1);
    assert_eq!(w.log("app"), "run\nrun\n");
}

#[tokio::test]
async fn active_deadline_fails_the_pod_with_deadline_exceeded() {
    let f = Fixture::with(|c| c.time_scale(1.0));
    let (w, status) = f
        .run(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: deadline}\nspec:\n  activeDeadlineSeconds: 1\n  containers:\n  - {name: sleeper, image: toolbox-p1.wasm, args: [sleep, '600000']}\n  - {name: spinner, image: toolbox-p2.wasm, args: [spin]}\n",
        )
        .await;
    assert_eq!(status.phase, PodPhase::Failed);
    assert_eq!(status.reason.as_deref(), Some("DeadlineExceeded"));
    assert_eq!(
        status.message.as_deref(),
        Some("Pod was active on the node longer than the specified deadline")
    );
    for c in &status.container_statuses {
        match &c.state {
            // Started within the second (the usual case): stopped like a
            // process without a SIGTERM handler.
            ContainerState::Terminated(t) => assert_eq!(
                (t.exit_code, t.reason.as_str()),
                (143, "Error"),
                "{}",
                c.name
            ),
            ContainerState::Waiting(_) => assert_eq!(c.started, Some(false), "{}", c.name),
            ContainerState::Running(_) => panic!("{} still running after the deadline", c.name),
        }
    }
    assert!(
        w.pod
            .events()
            .iter()
            .any(|e| e.reason == "DeadlineExceeded")
    );
}

/// One thread for everything: only epoch preemption lets the second guest
/// run while the first spins forever.
#[tokio::test(flavor = "current_thread")]
async fn a_cpu_hog_cannot_starve_its_neighbours() {
    let f = Fixture::new();
    let w = f
        .start(&pod(
            "fair",
            "Never",
            "  - {name: hog, image: toolbox-p1.wasm, args: [spin]}\n  - {name: worker, image: toolbox-p2.wasm, args: [sh, spin 50; count 3]}\n",
        ))
        .await;
    let other = f
        .start("apiVersion: v1\nkind: Pod\nmetadata: {name: neighbour}\nspec:\n  restartPolicy: Never\n  containers:\n  - {name: hog2, image: toolbox-p2.wasm, args: [spin]}\n  - {name: quick, image: hello-p1.wasm}\n")
        .await;
    let status = w
        .until("the worker completes next to the hog", |s| {
            s.container("worker")
                .and_then(|c| c.state.terminated())
                .is_some()
        })
        .await;
    assert_eq!(
        status
            .container("worker")
            .unwrap()
            .state
            .terminated()
            .unwrap()
            .reason,
        "Completed"
    );
    assert!(status.container("hog").unwrap().state.is_running());
    assert_eq!(w.log("worker"), "1\n2\n3\n");
    other
        .until("quick completes", |s| {
            s.container("quick")
                .and_then(|c| c.state.terminated())
                .is_some()
        })
        .await;
    let status = w.pod.delete(Some(Duration::ZERO)).await;
    let hog = status
        .container("hog")
        .unwrap()
        .state
        .terminated()
        .unwrap()
        .clone();
    assert_eq!(
        (hog.exit_code, hog.reason.as_str()),
        (137, "Error"),
        "grace 0 is SIGKILL"
    );
    other.pod.delete(None).await;
}

#[tokio::test]
async fn deleting_stops_every_guest_and_cleans_up() {
    let f = Fixture::with(|c| c.time_scale(1.0));
    let w = f
        .start(&pod(
            "stop-me",
            "Always",
            "  - {name: sleeper, image: toolbox-p1.wasm, args: [sleep, '600000'], volumeMounts: [{name: w, mountPath: /w}]}\n  - {name: spinner, image: toolbox-p2.wasm, args: [sh, write /w/started yes; spin], volumeMounts: [{name: w, mountPath: /w}]}\n  - {name: waiter, image: toolbox-p2.wasm, args: [wait-for, /w/never]}\n",
        ))
        .await;
    let started = w.pod.dir().join(".volumes/w/started");
    w.until("all running", |s| {
        s.container_statuses.iter().all(|c| c.state.is_running())
    })
    .await;
    crate::support::eventually("the spinner started", || started.exists()).await;
    let status = w.pod.delete(Some(Duration::from_secs(30))).await;
    assert_eq!(status.phase, PodPhase::Failed);
    for c in &status.container_statuses {
        let t = c
            .state
            .terminated()
            .unwrap_or_else(|| panic!("{} still {:?}", c.name, c.state));
        assert_eq!(
            t.exit_code, 143,
            "{}: a guest without a SIGTERM handler ends at once",
            c.name
        );
    }
    assert!(!w.pod.dir().join(".volumes").exists(), "emptyDir removed");
    let killing = w
        .pod
        .events()
        .iter()
        .filter(|e| e.reason == "Killing")
        .count();
    assert_eq!(killing, 3);
    // The runtime forgot it: the name can be used again.
    let again = f
        .start(&pod(
            "stop-me",
            "Never",
            "  - {name: a, image: hello-p1.wasm}\n",
        ))
        .await;
    assert_eq!(again.wait().await.phase, PodPhase::Succeeded);
}

#[tokio::test]
async fn pod_names_are_unique_per_namespace() {
    let f = Fixture::new();
    let yaml = pod(
        "dup",
        "Always",
        "  - {name: a, image: toolbox-p1.wasm, args: [sleep, '600000']}\n",
    );
    let first = f.start(&yaml).await;
    let err = f.runtime.create_pod(f.spec(&yaml)).await.err().unwrap();
    assert_eq!(
        err.to_string(),
        "pods \"dup\" already exists in namespace \"default\""
    );
    let other_ns = yaml.replace("name: dup}", "name: dup, namespace: other}");
    let second = f.start(&other_ns).await;
    first.pod.delete(Some(Duration::ZERO)).await;
    second.pod.delete(Some(Duration::ZERO)).await;
}

#[tokio::test]
async fn dropping_the_runtime_leaves_no_temporary_directory() {
    let runtime = wasipod::Runtime::new(wasipod::RuntimeConfig::default()).unwrap();
    let spec = wasipod::PodSpec::from_yaml(
        &pod("temp", "Always", "  - {name: a, image: toolbox-p1.wasm, args: [sleep, '600000'], volumeMounts: [{name: w, mountPath: /w}]}\n"),
        crate::support::images(),
    )
    .unwrap();
    let pod = runtime.create_pod(spec).await.unwrap();
    let state = pod.dir().parent().unwrap().parent().unwrap().to_path_buf();
    assert!(state.join("pods").exists());
    let data = runtime.node().data_dir().to_path_buf();
    assert_ne!(data, state, "guests' disk storage is not on tmpfs");
    assert!(data.starts_with("/var/tmp"), "{}", data.display());
    crate::support::eventually("the pod's emptyDir is in the data folder", || {
        data.join("pods")
            .read_dir()
            .is_ok_and(|mut d| d.next().is_some())
    })
    .await;
    drop(pod);
    drop(runtime);
    for dir in [state, data] {
        assert!(
            !dir.exists(),
            "the runtime's temporary folders are removed: {}",
            dir.display()
        );
    }
}

#[tokio::test]
async fn waiting_after_the_pod_finished_returns_at_once() {
    let f = Fixture::new();
    let w = f
        .start(&pod(
            "late",
            "Never",
            "  - {name: a, image: hello-p1.wasm}\n",
        ))
        .await;
    w.until("succeeded", |s| s.phase == PodPhase::Succeeded)
        .await;
    // Give the supervisor time to finish with nobody waiting on it.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let status = tokio::time::timeout(crate::support::PATIENCE, w.pod.wait())
        .await
        .expect("wait() returns");
    assert_eq!(status.phase, PodPhase::Succeeded);
}

#[tokio::test]
async fn the_runtime_is_a_registry_of_pods_with_a_watch() {
    let f = Fixture::new();
    let mut changes = f.runtime.watch();
    let sleeper = "  - {name: a, image: toolbox-p1.wasm, args: [sleep, '600000']}\n";
    let b = f.start(&pod("b", "Always", sleeper)).await;
    let a = f.start(&pod("a", "Always", sleeper)).await;
    let other = pod("c", "Always", sleeper).replace("name: c}", "name: c, namespace: other}");
    let c = f.start(&other).await;
    let names = |pods: Vec<wasipod::Pod>| -> Vec<String> {
        pods.iter()
            .map(|p| format!("{}/{}", p.namespace(), p.name()))
            .collect()
    };
    assert_eq!(
        names(f.runtime.list(None)),
        ["default/a", "default/b", "other/c"]
    );
    assert_eq!(names(f.runtime.list(Some("other"))), ["other/c"]);
    assert_eq!(f.runtime.get("default", "b").unwrap().uid(), b.pod.uid());
    assert!(f.runtime.get("other", "b").is_none());

    b.until("running", |s| s.phase == PodPhase::Running).await;
    let status = f
        .runtime
        .delete("default", "b", Some(Duration::ZERO))
        .await
        .unwrap();
    let exit = status.container("a").unwrap().state.terminated().unwrap();
    assert_eq!(exit.exit_code, 137, "killed at once by the deletion");
    assert!(
        f.runtime.get("default", "b").is_none(),
        "deleted pods leave"
    );
    let again = f.runtime.delete("default", "b", None).await.unwrap_err();
    assert_eq!(again.kind(), wasipod::ErrorKind::NotFound);
    assert_eq!(
        again.to_string(),
        "pods \"b\" not found in namespace \"default\""
    );

    // The watch saw b, a and c added, b change, and b deleted, in order.
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + crate::support::PATIENCE;
    while !seen.contains(&"Deleted default/b".to_string()) {
        let change = tokio::time::timeout_at(deadline, changes.recv())
            .await
            .expect("the watch reported the deletion")
            .unwrap();
        let (what, object) = match change {
            wasipod::PodChange::Added(o) => ("Added", o),
            wasipod::PodChange::Modified(o) => ("Modified", o),
            wasipod::PodChange::Deleted(o) => ("Deleted", o),
        };
        let key = format!(
            "{what} {}/{}",
            object.metadata.namespace.as_deref().unwrap_or(""),
            object.metadata.name.as_deref().unwrap_or("")
        );
        if seen.last() != Some(&key) {
            seen.push(key);
        }
    }
    let first = |k: &str| seen.iter().position(|s| s == k).unwrap();
    assert!(first("Added default/b") < first("Added default/a"));
    assert!(first("Added default/a") < first("Added other/c"));
    assert!(first("Added default/b") < first("Modified default/b"));
    assert_eq!(seen.last().unwrap(), "Deleted default/b");
    a.pod.delete(Some(Duration::ZERO)).await;
    c.pod.delete(Some(Duration::ZERO)).await;
}
