//! Termination messages: `terminationMessagePath` and
//! `terminationMessagePolicy` make `state.terminated.message` as the
//! kubelet does.

use crate::support::*;

fn pod(name: &str, container: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  restartPolicy: Never\n  volumes: [{{name: w, emptyDir: {{}}}}]\n  containers:\n{container}"
    )
}

async fn message(f: &Fixture, name: &str, container: &str) -> Option<String> {
    let (w, _) = f.run(&pod(name, container)).await;
    w.terminated("c").message
}

#[tokio::test]
async fn the_default_file_becomes_the_message_for_wasip1_and_wasip2() {
    let f = Fixture::new();
    for image in ["toolbox-p1.wasm", "toolbox-p2.wasm"] {
        let m = message(
            &f,
            &format!("default-{}", &image[8..10]),
            &format!("  - {{name: c, image: {image}, args: [sh, 'write /dev/termination-log first; write /dev/termination-log all done; append /dev/termination-log bye; exit 3']}}\n"),
        )
        .await;
        assert_eq!(
            m.as_deref(),
            Some("all donebye\n"),
            "{image}: truncated by the second write, then appended to"
        );
    }
    // Only the last 4 KiB are kept, as the kubelet reads the file.
    let line = "x".repeat(99);
    let script: Vec<String> = (0..50)
        .map(|_| format!("append /dev/termination-log {line}"))
        .collect();
    let m = message(
        &f,
        "long",
        &format!(
            "  - {{name: c, image: toolbox-p1.wasm, args: [sh, '{}']}}\n",
            script.join("; ")
        ),
    )
    .await
    .unwrap();
    assert_eq!(m.len(), 4096);
    assert!(m.ends_with(&format!("{line}\n")));
}

#[tokio::test]
async fn a_custom_path_in_a_volume_or_the_root_is_read_after_the_run() {
    let f = Fixture::new();
    let m = message(
        &f,
        "in-volume",
        "  - {name: c, image: toolbox-p2.wasm, args: [sh, 'write /w/msg from the volume; exit 1'], terminationMessagePath: /w/msg, volumeMounts: [{name: w, mountPath: /w}]}\n",
    )
    .await;
    assert_eq!(m.as_deref(), Some("from the volume"));
    let m = message(
        &f,
        "in-root",
        "  - {name: c, image: toolbox-p1.wasm, args: [sh, 'write /tmp/msg from the root'], terminationMessagePath: /tmp/msg}\n",
    )
    .await;
    assert_eq!(m.as_deref(), Some("from the root"));
}

#[tokio::test]
async fn fallback_to_logs_on_error_takes_the_log_tail_of_a_failed_run_only() {
    let f = Fixture::new();
    let m = message(
        &f,
        "fallback",
        "  - {name: c, image: toolbox-p1.wasm, args: [sh, 'count 100; exit 1'], terminationMessagePolicy: FallbackToLogsOnError}\n",
    )
    .await;
    let expected: String = (21..=100).map(|i| format!("{i}\n")).collect();
    assert_eq!(m.as_deref(), Some(expected.as_str()), "the last 80 lines");
    // At most 2 KiB of them.
    let m = message(
        &f,
        "fallback-bytes",
        &format!(
            "  - {{name: c, image: toolbox-p1.wasm, args: [sh, '{}; exit 1'], terminationMessagePolicy: FallbackToLogsOnError}}\n",
            vec![format!("echo {}", "y".repeat(99)); 80].join("; ")
        ),
    )
    .await
    .unwrap();
    assert_eq!(m.len(), 2048);
    // The file wins over the log; a success takes nothing from the log.
    let m = message(
        &f,
        "file-wins",
        "  - {name: c, image: toolbox-p1.wasm, args: [sh, 'echo noise; write /dev/termination-log the file; exit 1'], terminationMessagePolicy: FallbackToLogsOnError}\n",
    )
    .await;
    assert_eq!(m.as_deref(), Some("the file"));
    let m = message(
        &f,
        "success",
        "  - {name: c, image: toolbox-p1.wasm, args: [echo, fine], terminationMessagePolicy: FallbackToLogsOnError}\n",
    )
    .await;
    assert_eq!(m, None);
    let m = message(
        &f,
        "file-policy",
        "  - {name: c, image: toolbox-p1.wasm, args: [sh, 'echo noise; exit 1']}\n",
    )
    .await;
    assert_eq!(m, None, "File: the log is not used");
}

#[tokio::test]
async fn termination_message_fields_are_validated_and_defaulted() {
    let f = Fixture::new();
    let spec = f.spec(&pod("defaults", "  - {name: c, image: toolbox-p1.wasm}\n"));
    let c = &spec.containers[0];
    assert_eq!(
        (
            c.termination_message_path.as_str(),
            c.termination_message_policy.as_str()
        ),
        ("/dev/termination-log", "File")
    );
    assert!(spec.warnings.is_empty(), "{:?}", spec.warnings);
    let err = wasipod::PodSpec::from_yaml(
        &pod(
            "bad",
            "  - {name: c, image: toolbox-p1.wasm, terminationMessagePath: relative, terminationMessagePolicy: Sometimes}\n",
        ),
        images(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("spec.containers[0].terminationMessagePath: Invalid value: \"relative\"")
            && err.contains(
                "spec.containers[0].terminationMessagePolicy: Unsupported value: \"Sometimes\""
            ),
        "{err}"
    );
}
