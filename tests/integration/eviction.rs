//! Local ephemeral storage: emptyDir `sizeLimit` and
//! `limits.ephemeral-storage` are measured and a pod past one is evicted,
//! as the kubelet's eviction manager does it.

use std::time::Duration;

use wasipod::PodPhase;
use wasipod::table::PodRow;

use crate::support::*;

fn fixture() -> Fixture {
    Fixture::with(|mut c| {
        c.eviction_interval = Duration::from_millis(20);
        c
    })
}

fn pod(name: &str, volumes: &str, containers: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  restartPolicy: Always\n  volumes: {volumes}\n  containers:\n{containers}"
    )
}

/// Runs the pod until it is terminal; checks it was evicted with
/// `message`, with the kubelet's event and kubectl's STATUS.
async fn evicted(f: &Fixture, yaml: &str, message: &str) -> Watched {
    let w = f.start(yaml).await;
    let status = w.wait().await;
    assert_eq!(
        (
            status.phase,
            status.reason.as_deref(),
            status.message.as_deref()
        ),
        (PodPhase::Failed, Some("Evicted"), Some(message)),
        "{status:?}"
    );
    assert!(
        w.pod
            .events()
            .iter()
            .any(|e| e.reason == "Evicted" && e.message == message),
        "{:?}",
        w.pod.events()
    );
    let o = w.pod.to_object();
    let row = PodRow::of(&o.metadata, &o.spec, &o.status, chrono::Utc::now());
    assert_eq!(row.status, "Evicted");
    w
}

#[tokio::test]
async fn a_fast_writer_past_an_empty_dir_size_limit_is_evicted_early() {
    let f = fixture();
    for image in ["toolbox-p1.wasm", "toolbox-p2.wasm"] {
        let name = format!("cache-{}", &image[8..10]);
        let w = evicted(
            &f,
            &pod(
                &name,
                "[{name: cache, emptyDir: {sizeLimit: 10Mi}}]",
                &format!("  - {{name: c, image: {image}, args: [fill, /cache/big], volumeMounts: [{{name: cache, mountPath: /cache}}]}}\n"),
            ),
            "Usage of EmptyDir volume \"cache\" exceeds the limit \"10Mi\".",
        )
        .await;
        let t = w.terminated("c");
        assert_eq!(t.exit_code, 137, "killed at once: {t:?}");
        assert_eq!(
            w.pod.status().container("c").unwrap().restart_count,
            0,
            "an evicted pod is not restarted"
        );
        let written = std::fs::metadata(w.pod.dir().join(".volumes/cache/big"))
            .unwrap()
            .len();
        assert!(
            written > 10 << 20 && written < 200 << 20,
            "{image}: stopped at {written} bytes (limit 10 MiB)"
        );
    }
}

#[tokio::test]
async fn ephemeral_storage_limits_of_the_pod_and_of_a_container_evict() {
    let f = fixture();
    evicted(
        &f,
        &pod(
            "pod-limit",
            "[]",
            "  - {name: c, image: toolbox-p1.wasm, args: [fill, /tmp/big], resources: {limits: {ephemeral-storage: 5Mi}}}\n",
        ),
        "Pod ephemeral local storage usage exceeds the total limit of containers 5Mi.",
    )
    .await;
    evicted(
        &f,
        &pod(
            "container-limit",
            "[]",
            "  - {name: writer, image: toolbox-p2.wasm, args: [fill, /tmp/big], resources: {limits: {ephemeral-storage: 5Mi}}}\n  - {name: idle, image: toolbox-p1.wasm, args: [sleep, '600000'], resources: {limits: {ephemeral-storage: 1Gi}}}\n",
        ),
        "Container writer exceeded its local ephemeral storage limit \"5Mi\".",
    )
    .await;
}

#[tokio::test]
async fn a_memory_empty_dir_is_held_to_its_size_limit_and_writers_under_limits_run_on() {
    let f = fixture();
    evicted(
        &f,
        &pod(
            "tmpfs",
            "[{name: m, emptyDir: {medium: Memory, sizeLimit: 2Mi}}]",
            "  - {name: c, image: toolbox-p1.wasm, args: [fill, /m/big], volumeMounts: [{name: m, mountPath: /m}]}\n",
        ),
        "Usage of EmptyDir volume \"m\" exceeds the limit \"2Mi\".",
    )
    .await;
    let yaml = pod(
        "under",
        "[{name: cache, emptyDir: {sizeLimit: 10Mi}}]",
        "  - {name: c, image: toolbox-p1.wasm, args: [sh, 'fill /cache/big 3; sleep 200'], volumeMounts: [{name: cache, mountPath: /cache}], resources: {limits: {ephemeral-storage: 10Mi}}}\n",
    )
    .replace("restartPolicy: Always", "restartPolicy: Never");
    let (w, status) = f.run(&yaml).await;
    assert_eq!(status.phase, PodPhase::Succeeded, "{status:?}");
    assert!(w.log("c").contains("filled /cache/big: 3 MiB"));
    let spec = f.spec(&yaml);
    assert!(spec.warnings.is_empty(), "{:?}", spec.warnings);
}
