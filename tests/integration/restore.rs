//! Pods that outlive their runtime (`RuntimeConfig::keep_records`): a
//! runtime that stops leaves their records, and the next one on the same
//! state folder brings them back as the kubelet does after a node restart.

use std::path::Path;
use std::time::Duration;

use wasipod::{LogOptions, PodPhase, Runtime, RuntimeConfig, store};

use crate::support::{Watched, eventually, images};

fn runtime(state: &Path, cache: &Path) -> Runtime {
    let mut config = RuntimeConfig::default()
        .state_dir(state)
        .cache_dir(cache)
        .time_scale(0.001);
    config.keep_records = true;
    Runtime::new(config).unwrap()
}

/// Restores every record in `state` on `rt`: the pods it brought back.
async fn restore_all(rt: &Runtime, state: &Path) -> Vec<Watched> {
    let mut out = Vec::new();
    for record in store::list(state) {
        let spec = record
            .pod_spec("", &images())
            .unwrap_or_else(|e| panic!("record of {}: {e}", record.name()));
        if let Some(pod) = rt.restore_pod(spec, &record.object).await.unwrap() {
            out.push(Watched::new(pod));
        }
    }
    out
}

fn previous(w: &Watched, container: &str) -> String {
    let options = LogOptions {
        previous: true,
        ..LogOptions::container(container)
    };
    String::from_utf8_lossy(&w.pod.logs(&options).unwrap()).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_runtimes_pods_come_back_as_after_a_node_restart() {
    let state = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let (server_uid, created) = {
        let rt = runtime(state.path(), cache.path());
        let spec = |yaml: &str| wasipod::PodSpec::from_yaml(yaml, images()).unwrap();
        let server = Watched::new(rt.create_pod(spec("apiVersion: v1\nkind: Pod\nmetadata: {name: server}\nspec:\n  initContainers:\n  - {name: setup, image: toolbox-p1.wasm, args: [echo, setup ran]}\n  containers:\n  - {name: app, image: toolbox-p1.wasm, args: [sh, echo serving; sleep 600000]}\n")).await.unwrap());
        let job = Watched::new(rt.create_pod(spec("apiVersion: v1\nkind: Pod\nmetadata: {name: job}\nspec:\n  restartPolicy: Never\n  containers:\n  - {name: work, image: toolbox-p2.wasm, args: [echo, job done]}\n")).await.unwrap());
        let once = Watched::new(rt.create_pod(spec("apiVersion: v1\nkind: Pod\nmetadata: {name: once}\nspec:\n  restartPolicy: Never\n  containers:\n  - {name: work, image: toolbox-p2.wasm, args: [sh, echo once; sleep 600000]}\n")).await.unwrap());
        assert_eq!(job.wait().await.phase, PodPhase::Succeeded);
        server
            .until("app running", |s| s.phase == PodPhase::Running)
            .await;
        once.until("once running", |s| s.phase == PodPhase::Running)
            .await;
        eventually("the server's output", || {
            server.log("app").contains("serving")
        })
        .await;
        let identity = (
            server.pod.uid().to_string(),
            server.pod.to_object().metadata.creation_timestamp,
        );
        rt.stop(Some(Duration::ZERO)).await;
        identity
    };
    // The records keep the pods as they were before the stop.
    let records = store::list(state.path());
    assert_eq!(
        records.len(),
        3,
        "{:?}",
        records
            .iter()
            .map(|r| r.name().to_string())
            .collect::<Vec<_>>()
    );
    // The runtime lets go of its state folder once its pods' last tasks
    // have ended.
    eventually("the stopped runtime to let go of its pods", || {
        store::list(state.path()).iter().all(|r| !r.is_running())
    })
    .await;

    let rt = runtime(state.path(), cache.path());
    let pods = restore_all(&rt, state.path()).await;
    let find = |name: &str| pods.iter().find(|w| w.pod.name() == name).unwrap();

    // A running pod runs again: same identity, one restart more, the run
    // the stop cut short as its last state and its previous log.
    let server = find("server");
    assert_eq!(server.pod.uid(), server_uid);
    assert_eq!(server.pod.to_object().metadata.creation_timestamp, created);
    let s = server
        .until("app running again", |s| {
            s.container("app").is_some_and(|c| c.state.is_running())
        })
        .await;
    let app = s.container("app").unwrap();
    assert_eq!(app.restart_count, 1);
    let lost = app
        .last_state
        .as_ref()
        .and_then(|l| l.terminated())
        .unwrap();
    assert_eq!((lost.exit_code, lost.reason.as_str()), (255, "Unknown"));
    assert_eq!(
        s.container("setup").unwrap().restart_count,
        1,
        "init containers run again"
    );
    assert!(previous(server, "app").contains("serving"));
    assert!(previous(server, "setup").contains("setup ran"));
    eventually("the new run's output", || {
        server.log("app").contains("serving")
    })
    .await;
    assert_eq!(server.pod.events()[0].reason, "SandboxChanged");

    // A finished pod keeps its final status and logs; nothing runs.
    let job = find("job");
    assert_eq!(job.pod.status().phase, PodPhase::Succeeded);
    assert!(job.log("work").contains("job done"));
    assert_eq!(job.terminated("work").exit_code, 0);

    // restartPolicy: Never: what ran when the node went down is lost.
    let once = find("once");
    assert_eq!(once.pod.status().phase, PodPhase::Failed);
    assert_eq!(once.terminated("work").exit_code, 255);
    assert!(once.log("work").contains("once"));

    // Deleting a restored pod takes its folder as any deletion does.
    let job_dir = job.pod.dir().to_path_buf();
    job.pod.delete(None).await;
    assert!(!job_dir.exists());
    rt.stop(Some(Duration::ZERO)).await;
    drop(rt);

    // A record saved while its pod was being deleted: the deletion
    // completes at the next restore.
    let mut record = store::find(state.path(), "default", "server").unwrap();
    assert!(
        record.object.status.phase == PodPhase::Running,
        "the stop kept the last record"
    );
    record.object.metadata.deletion_timestamp = Some("2026-01-01T00:00:00Z".into());
    store::save(record.layout.dir(), &record.object).unwrap();
    let rt = runtime(state.path(), cache.path());
    let spec = record.pod_spec("", &images()).unwrap();
    assert!(
        rt.restore_pod(spec, &record.object)
            .await
            .unwrap()
            .is_none()
    );
    assert!(!record.layout.dir().exists());
}
