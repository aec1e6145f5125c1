//! The compile cache (memory and disk) and the status document's shape.

use wasipod::{CacheStats, PodPhase, Runtime, RuntimeConfig};

use crate::support::{Fixture, Watched, images};

const HELLO: &str = "apiVersion: v1\nkind: Pod\nmetadata: {name: NAME}\nspec:\n  restartPolicy: Never\n  containers:\n  - {name: a, image: hello-p1.wasm}\n  - {name: b, image: hello-p2.wasm}\n";

async fn hello(runtime: &Runtime, name: &str) {
    let spec = wasipod::PodSpec::from_yaml(&HELLO.replace("NAME", name), images()).unwrap();
    let w = Watched::new(runtime.create_pod(spec).await.unwrap());
    assert_eq!(w.wait().await.phase, PodPhase::Succeeded);
    assert!(w.log("a").starts_with("Hello from"));
}

#[tokio::test]
async fn images_compile_once_per_runtime_and_once_per_cache_dir() {
    let cache = tempfile::tempdir().unwrap();
    let first = Runtime::new(RuntimeConfig::default().cache_dir(cache.path())).unwrap();
    hello(&first, "one").await;
    assert_eq!(
        first.cache_stats(),
        CacheStats {
            compiled: 2,
            ..Default::default()
        }
    );
    hello(&first, "two").await;
    assert_eq!(
        first.cache_stats(),
        CacheStats {
            compiled: 2,
            memory_hits: 2,
            ..Default::default()
        },
        "memory cache"
    );

    let second = Runtime::new(RuntimeConfig::default().cache_dir(cache.path())).unwrap();
    hello(&second, "three").await;
    assert_eq!(
        second.cache_stats(),
        CacheStats {
            disk_hits: 2,
            ..Default::default()
        },
        "disk cache: no compile"
    );

    let files: Vec<_> = std::fs::read_dir(cache.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "cwasm"))
        .collect();
    assert_eq!(files.len(), 2);
    // A damaged file is refused, recompiled and rewritten, never trusted
    // (its stamp changed: its checksum is checked again).
    for f in &files {
        let mut bytes = std::fs::read(f).unwrap();
        let n = bytes.len();
        bytes[n / 2] ^= 0xff;
        std::fs::write(f, bytes).unwrap();
    }
    let third = Runtime::new(RuntimeConfig::default().cache_dir(cache.path())).unwrap();
    hello(&third, "four").await;
    assert_eq!(
        third.cache_stats(),
        CacheStats {
            compiled: 2,
            disk_rejected: 2,
            ..Default::default()
        }
    );
    let fourth = Runtime::new(RuntimeConfig::default().cache_dir(cache.path())).unwrap();
    hello(&fourth, "five").await;
    assert_eq!(
        fourth.cache_stats().disk_hits,
        2,
        "the rewritten files are good"
    );
}

#[tokio::test]
async fn a_cache_written_by_another_engine_configuration_is_refused_and_replaced() {
    let cache = tempfile::tempdir().unwrap();
    let cwasm = || {
        let mut v: Vec<_> = std::fs::read_dir(cache.path())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "cwasm"))
            .collect();
        v.sort();
        v
    };
    // On-demand instances and pooled ones compile to different code (the
    // memory reservation differs): each configuration has its own files.
    let mut on_demand = RuntimeConfig::default().cache_dir(cache.path());
    on_demand.pool = None;
    let other = Runtime::new(on_demand).unwrap();
    hello(&other, "other").await;
    let theirs = cwasm();
    assert_eq!(theirs.len(), 2);
    let pooled = Runtime::new(RuntimeConfig::default().cache_dir(cache.path())).unwrap();
    hello(&pooled, "pooled").await;
    assert_eq!(
        pooled.cache_stats(),
        CacheStats {
            compiled: 2,
            ..Default::default()
        },
        "the other configuration's files are not used"
    );
    let ours: Vec<_> = cwasm()
        .into_iter()
        .filter(|f| !theirs.contains(f))
        .collect();
    assert_eq!(ours.len(), 2);

    // The other configuration's artifacts under our names (intact files, a
    // correct checksum, the wrong engine): wasmtime's own check refuses
    // them, and they are recompiled and rewritten.
    let mut pairs: Vec<(&std::path::PathBuf, &std::path::PathBuf)> = Vec::new();
    for ours in &ours {
        let digest = ours
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .split('-')
            .next()
            .unwrap();
        let theirs = theirs
            .iter()
            .find(|t| t.file_name().unwrap().to_str().unwrap().starts_with(digest))
            .unwrap();
        pairs.push((ours, theirs));
    }
    for (ours, theirs) in &pairs {
        std::fs::copy(theirs, ours).unwrap();
        // With their checksum too: the file is intact, only the engine differs.
        std::fs::copy(theirs.with_extension("sum"), ours.with_extension("sum")).unwrap();
    }
    let fresh = Runtime::new(RuntimeConfig::default().cache_dir(cache.path())).unwrap();
    hello(&fresh, "fresh").await;
    assert_eq!(
        fresh.cache_stats(),
        CacheStats {
            compiled: 2,
            disk_rejected: 2,
            ..Default::default()
        }
    );
    for (ours, theirs) in &pairs {
        assert_ne!(std::fs::read(ours).unwrap(), std::fs::read(theirs).unwrap());
    }
    let again = Runtime::new(RuntimeConfig::default().cache_dir(cache.path())).unwrap();
    hello(&again, "again").await;
    assert_eq!(
        again.cache_stats().disk_hits,
        2,
        "the rewritten files are good"
    );
}

#[tokio::test]
async fn the_pod_document_has_kubernetes_shape() {
    let f = Fixture::new();
    let (w, _) = f
        .run("apiVersion: v1\nkind: Pod\nmetadata: {name: shape, labels: {app: x}}\nspec:\n  restartPolicy: OnFailure\n  initContainers:\n  - {name: init, image: hello-p1.wasm}\n  containers:\n  - {name: app, image: toolbox-p1.wasm, args: [echo, hi]}\n")
        .await;
    let json = serde_json::to_value(w.pod.to_object()).unwrap();
    assert_eq!(json["apiVersion"], "v1");
    assert_eq!(json["kind"], "Pod");
    assert_eq!(json["metadata"]["name"], "shape");
    assert_eq!(json["metadata"]["namespace"], "default");
    assert_eq!(json["metadata"]["uid"], w.pod.uid());
    assert_eq!(json["metadata"]["labels"]["app"], "x");
    assert!(
        json["metadata"]["creationTimestamp"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    assert_eq!(json["spec"]["restartPolicy"], "OnFailure");
    assert_eq!(json["spec"]["terminationGracePeriodSeconds"], 30);
    let status = &json["status"];
    assert_eq!(status["phase"], "Succeeded");
    assert!(status["startTime"].as_str().unwrap().ends_with('Z'));
    let types: Vec<&str> = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "PodScheduled",
            "PodReadyToStartContainers",
            "Initialized",
            "ContainersReady",
            "Ready"
        ]
    );
    for c in status["conditions"].as_array().unwrap() {
        assert!(["True", "False"].contains(&c["status"].as_str().unwrap()));
        chrono_like(c["lastTransitionTime"].as_str().unwrap());
    }
    let ready = &status["conditions"][4];
    assert_eq!(
        (ready["status"].as_str(), ready["reason"].as_str()),
        (Some("False"), Some("PodCompleted"))
    );
    let app = &status["containerStatuses"][0];
    assert_eq!(app["name"], "app");
    assert_eq!(app["image"], "toolbox-p1.wasm");
    assert!(app["imageID"].as_str().unwrap().starts_with("sha256:"));
    assert!(
        app["containerID"]
            .as_str()
            .unwrap()
            .starts_with("wasipod://")
    );
    assert_eq!(app["state"]["terminated"]["exitCode"], 0);
    assert_eq!(app["state"]["terminated"]["reason"], "Completed");
    chrono_like(app["state"]["terminated"]["startedAt"].as_str().unwrap());
    chrono_like(app["state"]["terminated"]["finishedAt"].as_str().unwrap());
    assert_eq!(app["lastState"], serde_json::json!({}));
    assert_eq!(
        (
            app["ready"].as_bool(),
            app["started"].as_bool(),
            app["restartCount"].as_u64()
        ),
        (Some(false), Some(false), Some(0))
    );
    assert_eq!(
        status["initContainerStatuses"][0]["state"]["terminated"]["reason"],
        "Completed"
    );

    // The document is itself a valid manifest (status is ignored on input).
    let yaml = serde_yaml_ng::to_string(&w.pod.to_object()).unwrap();
    let again =
        wasipod::PodSpec::from_yaml(&yaml, images()).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    assert_eq!(again.uid, w.pod.uid());
    assert_eq!(again.restart_policy, wasipod::RestartPolicy::OnFailure);
}

fn chrono_like(t: &str) {
    // RFC 3339 in whole seconds, UTC: 2026-01-02T03:04:05Z
    assert_eq!(t.len(), 20, "{t}");
    assert!(t.ends_with('Z') && t.as_bytes()[10] == b'T', "{t}");
}

#[tokio::test]
async fn conditions_follow_the_pod_through_its_life() {
    let f = Fixture::with(|c| c.time_scale(1.0));
    let w = f
        .start("apiVersion: v1\nkind: Pod\nmetadata: {name: life}\nspec:\n  containers:\n  - {name: a, image: toolbox-p1.wasm, args: [sleep, '600000']}\n")
        .await;
    use wasipod::status::{ConditionStatus::*, ConditionType::*};
    let s = w.until("running", |s| s.phase == PodPhase::Running).await;
    for t in [
        PodScheduled,
        PodReadyToStartContainers,
        Initialized,
        ContainersReady,
        Ready,
    ] {
        assert_eq!(s.condition(t).unwrap().status, True, "{t:?}");
    }
    assert!(s.container("a").unwrap().ready);
    assert_eq!(s.container("a").unwrap().started, Some(true));
    let s = w.pod.delete(None).await;
    assert_eq!(s.condition(Ready).unwrap().status, False);
    assert_eq!(s.condition(Initialized).unwrap().status, True);
}

#[tokio::test]
async fn a_pods_images_compile_in_parallel_between_pulling_and_pulled_events() {
    let f = Fixture::new();
    let w = f
        .start("apiVersion: v1\nkind: Pod\nmetadata: {name: two}\nspec:\n  restartPolicy: Never\n  containers:\n  - {name: server, image: http-server-p2.wasm, args: [http-server, --help]}\n  - {name: client, image: http-get-p2.wasm, args: [http-get, --help]}\n")
        .await;
    w.wait().await;
    let events = w.pod.events();
    let at = |reason: &str, object: &str| {
        events
            .iter()
            .find(|e| e.reason == reason && e.object == object)
            .unwrap_or_else(|| panic!("no {reason} event for {object}: {events:#?}"))
            .time
    };
    let (server, client) = ("spec.containers{server}", "spec.containers{client}");
    // Kubernetes' order for each image…
    for c in [server, client] {
        assert!(at("Scheduled", "pod") <= at("Pulling", c));
        assert!(at("Pulling", c) < at("Pulled", c));
        assert!(at("Pulled", c) <= at("Created", c));
    }
    // …and the two compiles overlapped: each began before the other ended.
    assert!(at("Pulling", server) < at("Pulled", client), "{events:#?}");
    assert!(at("Pulling", client) < at("Pulled", server), "{events:#?}");
    assert!(
        events.windows(2).all(|e| e[0].time <= e[1].time),
        "events are in time order"
    );
    assert_eq!(f.runtime.cache_stats().compiled, 2);
}

#[tokio::test]
async fn two_pods_needing_one_new_image_compile_it_once() {
    let f = Fixture::new();
    let yaml = |name: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  restartPolicy: Never\n  containers:\n  - {{name: a, image: tcp-echo-p2.wasm, args: [tcp-echo, --help]}}\n"
        )
    };
    let (a, b) = tokio::join!(
        f.runtime.create_pod(f.spec(&yaml("a"))),
        f.runtime.create_pod(f.spec(&yaml("b")))
    );
    let (a, b) = (Watched::new(a.unwrap()), Watched::new(b.unwrap()));
    a.wait().await;
    b.wait().await;
    let stats = f.runtime.cache_stats();
    assert_eq!(stats.compiled, 1, "{stats:?}");
    assert_eq!(
        stats.memory_hits, 1,
        "the second waited and took it: {stats:?}"
    );
}

#[tokio::test]
async fn a_cached_image_is_found_by_its_file_stamp_and_a_changed_file_is_read_again() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("app.wasm");
    let yaml = "apiVersion: v1\nkind: Pod\nmetadata: {name: app}\nspec:\n  restartPolicy: Never\n  containers:\n  - {name: a, image: app.wasm, args: [echo, replaced]}\n";
    let run = |expect: &'static str| {
        let cache = cache.path().to_path_buf();
        let base = dir.path().to_path_buf();
        async move {
            let runtime = Runtime::new(RuntimeConfig::default().cache_dir(cache)).unwrap();
            let spec = wasipod::PodSpec::from_yaml(yaml, base).unwrap();
            let w = Watched::new(runtime.create_pod(spec).await.unwrap());
            w.wait().await;
            assert!(w.log("a").starts_with(expect), "{}", w.log("a"));
            runtime.cache_stats()
        }
    };
    std::fs::copy(wasipod_samples::HELLO_P1, &image).unwrap();
    assert_eq!(run("Hello from").await.compiled, 1);
    // Unchanged: a new process takes the artifact from disk.
    assert_eq!(run("Hello from").await.disk_hits, 1);
    // The same path with other bytes: read again, never the stale record.
    std::fs::copy(wasipod_samples::TOOLBOX_P1, &image).unwrap();
    let stats = run("replaced").await;
    assert_eq!((stats.compiled, stats.disk_hits), (1, 0), "{stats:?}");
}
