//! kubectl's STATUS, READY and RESTARTS columns ([`PodRow`]) for real pods
//! in each state a user meets.

use std::time::Duration;

use wasipod::table::PodRow;

use crate::support::*;

fn row(w: &Watched) -> PodRow {
    let o = w.pod.to_object();
    PodRow::of(&o.metadata, &o.spec, &o.status, chrono::Utc::now())
}

fn pod(name: &str, policy: &str, body: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  restartPolicy: {policy}\n{body}"
    )
}

#[tokio::test]
async fn finished_pods_read_completed_error_or_oom_killed() {
    let f = Fixture::new();
    for (name, args, memory, expected) in [
        ("done", "[echo, hi]", "", "Completed"),
        ("failed", "[exit, '3']", "", "Error"),
        (
            "oom",
            "[alloc, '64']",
            ", resources: {limits: {memory: 32Mi}}",
            "OOMKilled",
        ),
    ] {
        let (w, _) = f
            .run(&pod(
                name,
                "Never",
                &format!(
                    "  containers:\n  - {{name: c, image: toolbox-p1.wasm, args: {args}{memory}}}\n"
                ),
            ))
            .await;
        let r = row(&w);
        assert_eq!(
            (r.status.as_str(), r.ready.as_str(), r.restarts.as_str()),
            (expected, "0/1", "0"),
            "{name}"
        );
    }
}

#[tokio::test]
async fn a_running_pod_reads_running_and_terminating_while_deleted() {
    let f = Fixture::with(|c| c.time_scale(1.0));
    let w = f
        .start(&pod(
            "web",
            "Always",
            "  containers:\n  - name: c\n    image: toolbox-p1.wasm\n    args: [sleep, '600000']\n    lifecycle: {preStop: {sleep: {seconds: 600}}}\n",
        ))
        .await;
    w.until("ready", |s| s.container("c").is_some_and(|c| c.ready))
        .await;
    let r = row(&w);
    assert_eq!((r.status.as_str(), r.ready.as_str()), ("Running", "1/1"));
    assert_eq!(r.qos, "BestEffort");
    assert!(r.ip.starts_with("10.88."), "{}", r.ip);
    let pod = w.pod.clone();
    let deletion = tokio::spawn(async move { pod.delete(Some(Duration::from_secs(600))).await });
    eventually("Terminating", || row(&w).status == "Terminating").await;
    w.pod.delete(Some(Duration::ZERO)).await;
    deletion.await.unwrap();
    assert_ne!(
        row(&w).status,
        "Terminating",
        "a terminal pod is not Terminating"
    );
}

#[tokio::test]
async fn crash_loops_read_crash_loop_back_off_with_the_last_restart() {
    // Real time: the first restart is at once, the second waits 10 s.
    let f = Fixture::with(|c| c.time_scale(1.0));
    let w = f
        .start(&pod(
            "crash",
            "Always",
            "  containers:\n  - {name: c, image: toolbox-p1.wasm, args: [exit, '1']}\n",
        ))
        .await;
    w.until("CrashLoopBackOff", |s| {
        s.container("c")
            .is_some_and(|c| c.state.waiting_reason() == Some("CrashLoopBackOff"))
    })
    .await;
    let r = row(&w);
    assert_eq!(
        (r.status.as_str(), r.ready.as_str()),
        ("CrashLoopBackOff", "0/1")
    );
    assert!(
        r.restarts.starts_with("1 (") && r.restarts.ends_with("s ago)"),
        "{}",
        r.restarts
    );
    w.pod.delete(Some(Duration::ZERO)).await;

    let w = f
        .start(&pod(
            "init-crash",
            "Always",
            "  initContainers:\n  - {name: i, image: toolbox-p1.wasm, args: [exit, '1']}\n  containers:\n  - {name: c, image: toolbox-p1.wasm, args: [echo, hi]}\n",
        ))
        .await;
    w.until("init in CrashLoopBackOff", |s| {
        s.container("i")
            .is_some_and(|c| c.state.waiting_reason() == Some("CrashLoopBackOff"))
    })
    .await;
    assert_eq!(row(&w).status, "Init:CrashLoopBackOff");
    w.pod.delete(Some(Duration::ZERO)).await;
}

#[tokio::test]
async fn initialising_pods_read_init_n_of_m_and_init_error() {
    let f = Fixture::with(|c| c.time_scale(1.0));
    let w = f
        .start(&pod(
            "slow-init",
            "Always",
            "  initContainers:\n  - {name: a, image: toolbox-p1.wasm, args: [sleep, '600000']}\n  - {name: b, image: toolbox-p1.wasm, args: [echo, b]}\n  containers:\n  - {name: c, image: toolbox-p1.wasm, args: [echo, hi]}\n",
        ))
        .await;
    w.until("init running", |s| {
        s.container("a")
            .is_some_and(|c| matches!(c.state, wasipod::ContainerState::Running(_)))
    })
    .await;
    let r = row(&w);
    assert_eq!((r.status.as_str(), r.ready.as_str()), ("Init:0/2", "0/1"));
    w.pod.delete(Some(Duration::ZERO)).await;

    let (w, _) = f
        .run(&pod(
            "bad-init",
            "Never",
            "  initContainers:\n  - {name: a, image: toolbox-p1.wasm, args: [exit, '2']}\n  containers:\n  - {name: c, image: toolbox-p1.wasm, args: [echo, hi]}\n",
        ))
        .await;
    assert_eq!(row(&w).status, "Init:Error");
}
