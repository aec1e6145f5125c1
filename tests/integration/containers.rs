//! Containers: p1 and p2 guests, argv/env, volumes, the sandbox's walls,
//! memory limits and traps.

use wasipod::PodPhase;

use crate::support::Fixture;

#[tokio::test]
async fn wasip1_and_wasip2_guests_both_run() {
    let f = Fixture::new();
    let (w, status) = f
        .run(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: hello}\nspec:\n  restartPolicy: Never\n  containers:\n  - {name: one, image: hello-p1.wasm}\n  - {name: two, image: hello-p2.wasm, args: [x]}\n",
        )
        .await;
    assert_eq!(status.phase, PodPhase::Succeeded);
    assert!(
        w.log("one")
            .contains("I am a wasip1 module; argv = [\"hello-p1\"]"),
        "{}",
        w.log("one")
    );
    assert!(
        w.log("two")
            .contains("I am a wasip2 component; argv = [\"hello-p2\", \"x\"]"),
        "{}",
        w.log("two")
    );
    for c in &status.container_statuses {
        assert!(
            c.image_id.starts_with("sha256:") && c.image_id.len() == 71,
            "{}",
            c.image_id
        );
    }
}

#[tokio::test]
async fn env_args_and_field_refs_reach_the_guest() {
    let f = Fixture::new();
    let (w, status) = f
        .run(
            r#"
apiVersion: v1
kind: Pod
metadata:
  name: env
  namespace: team-a
  labels: {tier: backend}
  annotations: {owner: ops}
spec:
  restartPolicy: Never
  containers:
  - name: app
    image: toolbox-p1.wasm
    command: [toolbox]
    args: [sh, "env; args", "$(GREETING)-$(POD_NAME)", "$$(GREETING)"]
    envFrom:
    - configMapRef: {name: settings}
      prefix: CFG_
    env:
    - {name: GREETING, value: hi}
    - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    - {name: POD_NAMESPACE, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}
    - {name: POD_UID, valueFrom: {fieldRef: {fieldPath: metadata.uid}}}
    - {name: TIER, valueFrom: {fieldRef: {fieldPath: "metadata.labels['tier']"}}}
    - {name: OWNER, valueFrom: {fieldRef: {fieldPath: "metadata.annotations['owner']"}}}
    - {name: COMBINED, value: "$(GREETING) from $(POD_NAMESPACE)"}
    - {name: MODE, valueFrom: {configMapKeyRef: {name: settings, key: mode}}}
    - {name: TOKEN, valueFrom: {secretKeyRef: {name: creds, key: token}}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {mode: fast, level: "3"}
---
apiVersion: v1
kind: Secret
metadata: {name: creds}
data: {token: czNjcjN0}
"#,
        )
        .await;
    assert_eq!(status.phase, PodPhase::Succeeded);
    let log = w.log("app");
    let uid = w.pod.uid().to_string();
    for line in [
        "GREETING=hi".to_string(),
        "POD_NAME=env".into(),
        "POD_NAMESPACE=team-a".into(),
        format!("POD_UID={uid}"),
        "TIER=backend".into(),
        "OWNER=ops".into(),
        "COMBINED=hi from team-a".into(),
        "MODE=fast".into(),
        "TOKEN=s3cr3t".into(),
        "CFG_level=3".into(),
        "CFG_mode=fast".into(),
    ] {
        assert!(
            log.lines().any(|l| l == line),
            "missing {line:?} in:\n{log}"
        );
    }
    let argv: Vec<&str> = log.lines().skip_while(|l| *l != "toolbox").collect();
    assert_eq!(
        argv,
        ["toolbox", "sh", "env; args", "hi-env", "$(GREETING)"],
        "\n{log}"
    );
}

#[tokio::test]
async fn init_containers_run_in_order_before_the_app() {
    let f = Fixture::new();
    let (w, status) = f
        .run(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: init}\nspec:\n  restartPolicy: Never\n  volumes: [{name: w, emptyDir: {}}]\n  initContainers:\n  - {name: first, image: toolbox-p1.wasm, args: [sh, append /w/order first], volumeMounts: [{name: w, mountPath: /w}]}\n  - {name: second, image: toolbox-p2.wasm, args: [sh, cat /w/order; append /w/order second], volumeMounts: [{name: w, mountPath: /w}]}\n  containers:\n  - {name: app, image: toolbox-p1.wasm, args: [cat, /w/order], volumeMounts: [{name: w, mountPath: /w}]}\n",
        )
        .await;
    assert_eq!(status.phase, PodPhase::Succeeded);
    assert_eq!(
        w.log("second"),
        "first\n",
        "the second init container saw the first one's file"
    );
    assert_eq!(w.log("app"), "first\nsecond\n");
    let first = w.terminated("first");
    let second = w.terminated("second");
    let app = w.terminated("app");
    assert!(first.finished_at <= second.started_at.unwrap());
    assert!(second.finished_at <= app.started_at.unwrap());
    // Events give the exact order.
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
            "Started container first",
            "Started container second",
            "Started container app"
        ]
    );
}

#[tokio::test]
async fn shared_empty_dir_carries_bytes_between_containers_and_is_removed_on_delete() {
    let f = Fixture::new();
    let (w, status) = f
        .run(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: share}\nspec:\n  restartPolicy: Never\n  volumes: [{name: s, emptyDir: {}}]\n  containers:\n  - {name: reader, image: toolbox-p2.wasm, args: [sh, wait-for /s/ready; cat /s/data], volumeMounts: [{name: s, mountPath: /s}]}\n  - {name: writer, image: toolbox-p1.wasm, args: [sh, write /shared/data payload-42; write /shared/ready 1], volumeMounts: [{name: s, mountPath: /shared}]}\n",
        )
        .await;
    assert_eq!(status.phase, PodPhase::Succeeded);
    assert_eq!(w.log("reader"), "payload-42\n", "the last line completed");
    let on_host = w.pod.dir().join(".volumes/s/data");
    assert_eq!(std::fs::read(&on_host).unwrap(), b"payload-42");
    w.pod.delete(None).await;
    assert!(!on_host.exists(), "the emptyDir is removed with the pod");
    assert!(!w.pod.dir().join(".volumes").exists());
    assert_eq!(
        w.pod
            .logs(&wasipod::LogOptions::container("reader"))
            .unwrap(),
        b"payload-42\n",
        "logs outlive the pod's volumes"
    );
}

#[tokio::test]
async fn read_only_mounts_refuse_writes_and_host_paths_are_shared_with_the_host() {
    let f = Fixture::new();
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("input.txt"), "from the host").unwrap();
    let yaml = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: ro}}\nspec:\n  restartPolicy: Never\n  volumes: [{{name: h, hostPath: {{path: {host}}}}}, {{name: c, configMap: {{name: cm}}}}]\n  containers:\n  - name: p1\n    image: toolbox-p1.wasm\n    args: [sh, try-write /ro/new.txt; try-write /rw/written-by-p1.txt; cat /ro/input.txt; try-write /cfg/key]\n    volumeMounts: [{{name: h, mountPath: /ro, readOnly: true}}, {{name: h, mountPath: /rw}}, {{name: c, mountPath: /cfg}}]\n  - name: p2\n    image: toolbox-p2.wasm\n    args: [sh, try-write /ro/new.txt; write /rw/sub/../written-by-p2.txt p2]\n    volumeMounts: [{{name: h, mountPath: /ro, readOnly: true}}, {{name: h, mountPath: /rw}}]\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cm}}\ndata: {{key: value}}\n",
        host = host.path().display()
    );
    let (w, status) = f.run(&yaml).await;
    let p1 = w.log("p1");
    assert!(p1.contains("write /ro/new.txt: error"), "{p1}");
    assert!(!p1.contains("write /ro/new.txt: ok"), "{p1}");
    assert!(p1.contains("write /rw/written-by-p1.txt: ok"), "{p1}");
    assert!(p1.contains("from the host"), "{p1}");
    assert!(
        p1.contains("write /cfg/key: error"),
        "configMap volumes are read-only: {p1}"
    );
    assert!(
        w.log("p2").contains("write /ro/new.txt: error"),
        "{}",
        w.log("p2")
    );
    assert!(!host.path().join("new.txt").exists());
    assert_eq!(
        std::fs::read(host.path().join("written-by-p1.txt")).unwrap(),
        b"x"
    );
    assert_eq!(
        status
            .container("p2")
            .unwrap()
            .state
            .terminated()
            .unwrap()
            .exit_code,
        1,
        "sub/ does not exist"
    );
    w.pod.delete(None).await;
    assert!(
        host.path().join("input.txt").exists(),
        "deleting a pod never touches a hostPath"
    );
}

#[tokio::test]
async fn guests_cannot_reach_outside_their_mounts() {
    let f = Fixture::new();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), "TOP SECRET").unwrap();
    let volume = tempfile::tempdir().unwrap();
    std::fs::write(volume.path().join("ok.txt"), "fine").unwrap();
    std::os::unix::fs::symlink(outside.path(), volume.path().join("link-out")).unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("secret.txt"),
        volume.path().join("file-link"),
    )
    .unwrap();
    let secret = outside.path().join("secret.txt");
    for image in ["toolbox-p1.wasm", "toolbox-p2.wasm"] {
        let yaml = format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: escape}}\nspec:\n  restartPolicy: Never\n  volumes: [{{name: v, hostPath: {{path: {vol}}}}}]\n  containers:\n  - name: c\n    image: {image}\n    workingDir: /data\n    args: [sh, try-read /data/ok.txt; try-read ok.txt; try-read /data/../{rel}; try-read ../{rel}; try-read {secret}; try-read /data/link-out/secret.txt; try-read /data/file-link; try-symlink {outside} /data/planted; try-read /data/planted/secret.txt; try-symlink ../../../../.. /data/up; try-read /data/up{secret}]\n    volumeMounts: [{{name: v, mountPath: /data}}]\n",
            vol = volume.path().display(),
            rel = secret.strip_prefix("/").unwrap().display(),
            secret = secret.display(),
            outside = outside.path().display(),
        );
        let (w, _) = f.run(&yaml).await;
        let log = w.log("c");
        assert!(
            log.contains("read /data/ok.txt: ok 4 bytes"),
            "{image}: {log}"
        );
        assert!(
            log.contains("read ok.txt: ok 4 bytes"),
            "{image}: relative paths resolve in workingDir: {log}"
        );
        let reads: Vec<&str> = log
            .lines()
            .filter(|l| l.starts_with("read ") && !l.contains("ok.txt"))
            .collect();
        assert_eq!(reads.len(), 7, "{image}: {log}");
        for line in reads {
            assert!(line.contains(": error "), "{image}: escaped: {line}\n{log}");
        }
        assert!(!log.contains("TOP SECRET"));
        w.pod.delete(None).await;
    }
}

#[tokio::test]
async fn a_sub_path_cannot_be_redirected_outside_its_volume() {
    let f = Fixture::new();
    let outside = tempfile::tempdir().unwrap();
    let volume = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path(), volume.path().join("evil")).unwrap();
    std::fs::create_dir(volume.path().join("good")).unwrap();
    std::fs::write(volume.path().join("good/f"), "in good").unwrap();
    let yaml = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: subpath}}\nspec:\n  restartPolicy: Never\n  volumes: [{{name: v, hostPath: {{path: {vol}}}}}]\n  containers:\n  - {{name: good, image: toolbox-p1.wasm, args: [cat, /m/f], volumeMounts: [{{name: v, mountPath: /m, subPath: good}}]}}\n  - {{name: evil, image: toolbox-p1.wasm, args: [ls, /m], volumeMounts: [{{name: v, mountPath: /m, subPath: evil}}]}}\n",
        vol = volume.path().display()
    );
    let (w, status) = f.run(&yaml).await;
    // An unterminated last line reads back completed, as kubectl logs shows it.
    assert_eq!(w.log("good"), "in good\n");
    let evil = w.terminated("evil");
    assert_eq!(
        (evil.reason.as_str(), evil.exit_code),
        ("StartError", 128),
        "{evil:?}"
    );
    assert!(
        evil.message
            .unwrap()
            .contains("spec.containers[1].volumeMounts[0].subPath")
    );
    assert_eq!(status.phase, PodPhase::Failed);
}

#[tokio::test]
async fn going_past_the_memory_limit_is_oom_killed() {
    let f = Fixture::new();
    let (w, status) = f
        .run(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: oom}\nspec:\n  restartPolicy: Never\n  containers:\n  - {name: p1, image: toolbox-p1.wasm, args: [alloc, '64'], resources: {limits: {memory: 32Mi}}}\n  - {name: p2, image: toolbox-p2.wasm, args: [alloc, '64'], resources: {limits: {memory: 32Mi}}}\n  - {name: fits, image: toolbox-p1.wasm, args: [alloc, '16'], resources: {limits: {memory: 32Mi}}}\n",
        )
        .await;
    for name in ["p1", "p2"] {
        let t = w.terminated(name);
        assert_eq!(
            (t.reason.as_str(), t.exit_code),
            ("OOMKilled", 137),
            "{name}: {t:?}"
        );
        assert!(
            t.message
                .unwrap()
                .contains("memory limit of 33554432 bytes exceeded")
        );
        assert!(!w.log(name).contains("allocated"));
    }
    let fits = w.terminated("fits");
    assert_eq!((fits.reason.as_str(), fits.exit_code), ("Completed", 0));
    assert!(w.log("fits").contains("allocated 16 MiB"));
    assert_eq!(status.phase, PodPhase::Failed);
    assert!(
        w.pod
            .events()
            .iter()
            .any(|e| e.reason == "OOMKilled" && e.object == "spec.containers{p1}")
    );
}

#[tokio::test]
async fn traps_and_exit_codes_end_containers_with_error() {
    let f = Fixture::new();
    let (w, status) = f
        .run(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: traps}\nspec:\n  restartPolicy: Never\n  containers:\n  - {name: unreachable, image: toolbox-p1.wasm, args: [trap]}\n  - {name: oob, image: toolbox-p1.wasm, args: [oob]}\n  - {name: p2-trap, image: toolbox-p2.wasm, args: [trap]}\n  - {name: code, image: toolbox-p1.wasm, args: [exit, '200']}\n  - {name: p2-code, image: toolbox-p2.wasm, args: [exit, '42']}\n",
        )
        .await;
    assert_eq!(status.phase, PodPhase::Failed);
    let t = w.terminated("unreachable");
    assert_eq!((t.reason.as_str(), t.exit_code), ("Error", 134));
    assert!(
        t.message.as_deref().unwrap().contains("unreachable"),
        "{t:?}"
    );
    assert!(
        w.log("unreachable")
            .contains("wasipod: wasm trap: wasm `unreachable` instruction executed"),
        "{}",
        w.log("unreachable")
    );
    let oob = w.terminated("oob");
    assert_eq!(
        (oob.reason.as_str(), oob.exit_code),
        ("Error", 139),
        "{oob:?}"
    );
    assert_eq!(w.terminated("p2-trap").exit_code, 134);
    assert_eq!(
        w.terminated("code").exit_code,
        200,
        "wasip1 exit codes up to 255 are kept"
    );
    assert_eq!(
        w.terminated("p2-code").exit_code,
        1,
        "wasip2 reports success or failure only"
    );
    assert!(w.pod.events().iter().any(|e| e.reason == "Failed"
        && e.object == "spec.containers{unreachable}"
        && e.message.contains("unreachable")));
}

#[tokio::test]
async fn a_broken_image_is_refused_at_creation_naming_the_field() {
    let f = Fixture::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("junk.wasm"), b"\0asm\x01\0\0\0garbage").unwrap();
    std::fs::write(dir.path().join("text.wasm"), b"hello").unwrap();
    for (file, expected) in [
        // Refused by the check that reads the bytes before compiling.
        ("junk.wasm", "malformed WebAssembly"),
        ("text.wasm", "not a WebAssembly module or component"),
    ] {
        let spec = wasipod::PodSpec::from_yaml(
            &format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: broken}}\nspec:\n  containers:\n  - {{name: ok, image: {ok}}}\n  - {{name: bad, image: {file}}}\n", ok = wasipod_samples::HELLO_P1),
            dir.path(),
        )
        .unwrap();
        let err = f
            .runtime
            .create_pod(spec)
            .await
            .err()
            .expect("a broken image is refused")
            .to_string();
        assert!(err.starts_with("spec.containers[1].image: "), "{err}");
        assert!(err.contains(expected), "{err}");
    }
}

#[tokio::test]
async fn the_pooling_allocator_reports_a_full_pool_and_caps_memory() {
    let f = Fixture::with(|mut c| {
        c.pool = Some(wasipod::PoolConfig {
            slots: 1,
            max_memory: 64 << 20,
        });
        c
    });
    let w = f
        .start("apiVersion: v1\nkind: Pod\nmetadata: {name: pooled}\nspec:\n  restartPolicy: Never\n  containers:\n  - {name: a, image: toolbox-p2.wasm, args: [sleep, '600000']}\n  - {name: b, image: toolbox-p2.wasm, args: [sleep, '600000']}\n")
        .await;
    let s = w
        .until("one container could not get a slot", |s| {
            s.container_statuses.iter().any(|c| {
                c.state
                    .terminated()
                    .is_some_and(|t| t.reason == "StartError")
            })
        })
        .await;
    let failed = s
        .container_statuses
        .iter()
        .find_map(|c| c.state.terminated())
        .unwrap()
        .clone();
    assert_eq!(failed.exit_code, 128);
    let message = failed.message.unwrap();
    assert!(
        message.contains("could not start the guest") && message.contains("limit"),
        "{message}"
    );
    assert!(
        s.container_statuses.iter().any(|c| c.state.is_running()),
        "the other one has the slot"
    );
    w.pod.delete(Some(std::time::Duration::ZERO)).await;

    // A slot holds 64 MiB: asking for more is refused at creation, and
    // growing past it is an OOM kill.
    let err = f
        .runtime
        .create_pod(f.spec("apiVersion: v1\nkind: Pod\nmetadata: {name: big}\nspec:\n  containers:\n  - {name: a, image: toolbox-p1.wasm, resources: {limits: {memory: 1Gi}}}\n"))
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.starts_with("spec.containers[0].resources.limits[memory]: 1073741824 bytes exceed the instance pool's memory slot"), "{err}");
    let (w, _) = f.run("apiVersion: v1\nkind: Pod\nmetadata: {name: grow}\nspec:\n  restartPolicy: Never\n  containers:\n  - {name: a, image: toolbox-p1.wasm, args: [alloc, '100']}\n").await;
    let t = w.terminated("a");
    assert_eq!(
        (t.reason.as_str(), t.exit_code),
        ("OOMKilled", 137),
        "{t:?}"
    );
}

#[tokio::test]
async fn logs_take_kubectl_options_and_follow_a_run_to_its_end() {
    let f = Fixture::new();
    let w = f
        .start("apiVersion: v1\nkind: Pod\nmetadata: {name: talker}\nspec:\n  restartPolicy: Never\n  volumes: [{name: s, emptyDir: {}}]\n  containers:\n  - name: talk\n    image: toolbox-p1.wasm\n    args: [sh, echo one; eprint two; wait-for /s/go; echo three; echo four]\n    volumeMounts: [{name: s, mountPath: /s}]\n")
        .await;
    crate::support::eventually("two lines written", || {
        w.pod
            .logs(&wasipod::LogOptions::container("talk"))
            .is_ok_and(|l| l == b"one\ntwo\n")
    })
    .await;
    let follow = wasipod::LogOptions {
        follow: true,
        ..wasipod::LogOptions::container("talk")
    };
    let mut stream = w.pod.stream_logs(&follow).unwrap();
    let first = stream.recv().await.unwrap();
    assert_eq!(first, b"one\ntwo\n", "what was there first");
    // Let the guest go on: the stream carries the rest, then closes.
    std::fs::write(w.pod.dir().join(".volumes/s/go"), "").unwrap();
    let mut rest = Vec::new();
    while let Some(chunk) = stream.recv().await {
        rest.extend(chunk);
    }
    assert_eq!(rest, b"three\nfour\n");
    w.wait().await;

    let logs = |o: wasipod::LogOptions| String::from_utf8(w.pod.logs(&o).unwrap()).unwrap();
    assert_eq!(
        logs(wasipod::LogOptions::container("talk").tail(2)),
        "three\nfour\n"
    );
    let stamped = logs(wasipod::LogOptions {
        timestamps: true,
        ..wasipod::LogOptions::container("talk")
    });
    let times: Vec<chrono::DateTime<chrono::FixedOffset>> = stamped
        .lines()
        .map(|l| chrono::DateTime::parse_from_rfc3339(l.split_once(' ').unwrap().0).unwrap())
        .collect();
    assert_eq!(times.len(), 4);
    assert!(times.windows(2).all(|t| t[0] <= t[1]), "{stamped}");
    // Since the third line's time: the third and fourth.
    let since = logs(wasipod::LogOptions {
        since: Some(times[2].with_timezone(&chrono::Utc)),
        ..wasipod::LogOptions::container("talk")
    });
    assert_eq!(since, "three\nfour\n");
}

#[tokio::test]
async fn images_that_cannot_run_are_refused_before_anything_is_compiled() {
    let cache = tempfile::tempdir().unwrap();
    let cache_dir = cache.path().to_path_buf();
    let f = Fixture::with(move |c| c.cache_dir(&cache_dir));
    let dir = tempfile::tempdir().unwrap();
    let images = [
        (
            "reactor.wasm",
            wat::parse_str("(module (func (export \"init\")) (memory (export \"memory\") 1))")
                .unwrap(),
            "no _start export: it is a library (reactor)",
        ),
        (
            "foreign.wasm",
            wat::parse_str(
                "(module (import \"env\" \"host_call\" (func)) (func (export \"_start\")))",
            )
            .unwrap(),
            "imports env::host_call, which no WASI host provides",
        ),
        (
            "component.wasm",
            wat::parse_str("(component)").unwrap(),
            "exports no wasi:cli/run: it is a library",
        ),
    ];
    for (file, bytes, why) in images {
        std::fs::write(dir.path().join(file), bytes).unwrap();
        let yaml = format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: lib}}\nspec:\n  containers:\n  - {{name: a, image: {file}}}\n"
        );
        let spec = wasipod::PodSpec::from_yaml(&yaml, dir.path()).unwrap();
        // The same check as `wasipod validate`, from the bytes.
        let errors = spec.inspect_images().unwrap_err();
        assert_eq!(errors[0].path, "spec.containers[0].image");
        assert!(errors[0].message.contains(why), "{}", errors[0]);
        let err = f.runtime.create_pod(spec).await.err().unwrap().to_string();
        assert!(err.starts_with("spec.containers[0].image: "), "{err}");
        assert!(err.contains(why), "{err}");
    }
    assert_eq!(f.runtime.cache_stats().compiled, 0, "nothing was compiled");
    assert_eq!(
        std::fs::read_dir(cache.path()).unwrap().count(),
        0,
        "nothing was cached"
    );
    // A real command passes the same check, and says what it is.
    let ok = f.spec(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: ok}}\nspec:\n  containers:\n  - {{name: a, image: {}}}\n  - {{name: b, image: {}}}\n",
        wasipod_samples::HELLO_P1,
        wasipod_samples::HELLO_P2
    ));
    let versions: Vec<&str> = ok
        .inspect_images()
        .unwrap()
        .iter()
        .map(|i| i.wasi.as_str())
        .collect();
    assert_eq!(versions, ["wasip1", "wasip2"]);
}
