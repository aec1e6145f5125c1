//! Attacks on the sandbox and on the runtime, each reproduced by a real
//! guest or a hostile manifest: escapes through symlinks and races, host
//! paths built from manifest strings, file-descriptor exhaustion, timer
//! starvation, overflowing durations, exponential expansion, undeletable
//! pods and state that outlives its pods.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use wasipod::{ContainerState, PodPhase, PodSpec, Runtime, RuntimeConfig};

use crate::support::{Fixture, PATIENCE, Watched, eventually, images};

/// A relative symlink target that climbs out of any folder to `host`.
fn climb_to(host: &Path) -> String {
    format!(
        "{}{}",
        "../".repeat(40),
        host.display().to_string().trim_start_matches('/')
    )
}

fn terminated(status: &wasipod::PodStatus, name: &str) -> (i32, String) {
    match &status.container(name).unwrap().state {
        ContainerState::Terminated(t) => (t.exit_code, t.message.clone().unwrap_or_default()),
        other => panic!("{name}: {other:?}"),
    }
}

/// Item 1: a guest that replaced `/run/wasipod/terminate` with a symlink to
/// a host file (or a host FIFO) must not get the runtime to write that file
/// (or to block on that FIFO): SIGTERM still arrives, as a real file.
#[tokio::test]
async fn sigterm_never_follows_a_symlink_the_guest_planted() {
    let f = Fixture::new();
    let host = tempfile::tempdir().unwrap();
    let victim = host.path().join("victim");
    std::fs::write(&victim, "precious").unwrap();
    let fifo = host.path().join("fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success(), "mkfifo");
    let mut n = 0;
    for image in ["toolbox-p1.wasm", "toolbox-p2.wasm"] {
        for target in [&victim, &fifo] {
            n += 1;
            let w = f
                .start(&format!(
                    "apiVersion: v1\nkind: Pod\nmetadata: {{name: link-{n}}}\nspec:\n  containers:\n  - name: c\n    image: {image}\n    args: [sh, 'handle-sigterm; try-symlink {link} /run/wasipod/terminate; wait-sigterm']\n",
                    link = climb_to(target)
                ))
                .await;
            eventually("the symlink is planted", || {
                w.log("c").contains("symlink /run/wasipod/terminate: ok")
            })
            .await;
            let status =
                tokio::time::timeout(PATIENCE, w.pod.delete(Some(Duration::from_secs(30_000))))
                    .await
                    .unwrap_or_else(|_| panic!("{image}: deletion hangs on {}", target.display()));
            assert_eq!(
                terminated(&status, "c").0,
                0,
                "{image}: SIGTERM arrived as a file"
            );
            assert!(w.log("c").contains("got SIGTERM"));
            assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        }
    }
}

/// Item 2: a container swaps the folder another container mounts with
/// `subPath` for a symlink out of the volume, as fast as it can, while the
/// other container's exec probe re-resolves the mount every millisecond.
/// No probe may ever land outside the volume.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sub_path_swapped_for_a_symlink_never_leads_out_of_the_volume() {
    let f = Fixture::new();
    let canary = tempfile::tempdir().unwrap();
    let w = f
        .start(&format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: race}}\nspec:\n  volumes: [{{name: data, emptyDir: {{}}}}]\n  containers:\n  - name: swapper\n    image: toolbox-p1.wasm\n    args: [swap-symlink, /data/sub, '{link}']\n    volumeMounts: [{{name: data, mountPath: /data}}]\n  - name: victim\n    image: toolbox-p1.wasm\n    args: [sleep, '100000000']\n    volumeMounts: [{{name: data, mountPath: /mnt, subPath: sub}}]\n    readinessProbe:\n      exec: {{command: [toolbox, append, /mnt/attempts, x]}}\n      periodSeconds: 1\n      timeoutSeconds: 100000\n      failureThreshold: 1\n",
            link = climb_to(canary.path())
        ))
        .await;
    let volume = w.pod.dir().join(".volumes/data");
    let attempts = || {
        let lines = |p: PathBuf| {
            std::fs::read_to_string(p)
                .map(|t| t.lines().count())
                .unwrap_or(0)
        };
        let failed = w
            .pod
            .events()
            .iter()
            .filter(|e| e.reason == "Unhealthy")
            .count();
        // The folder, wherever the swap has it now, and the folders the
        // mount created while it was away.
        let written: usize = std::fs::read_dir(&volume)
            .map(|d| d.flatten().map(|e| lines(e.path().join("attempts"))).sum())
            .unwrap_or(0);
        written + failed
    };
    eventually("1000 probes raced the swap", || attempts() >= 1000).await;
    w.pod.delete(Some(Duration::ZERO)).await;
    // The swap really happened (the probes met the symlink, or the folder
    // away, at least once): otherwise this test would prove nothing.
    assert!(
        w.pod.events().iter().any(|e| e.reason == "Unhealthy"),
        "no probe ever met the swap"
    );
    let escaped: Vec<_> = std::fs::read_dir(canary.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let escapes = std::fs::read_to_string(canary.path().join("attempts"))
        .map(|t| t.lines().count())
        .unwrap_or(0);
    assert!(
        escaped.is_empty(),
        "{escapes} probes escaped the volume and wrote {escaped:?} on the host"
    );
}

/// Item 3: `metadata.uid` becomes part of a host path; only a UUID is
/// accepted, from a manifest or from code.
#[tokio::test]
async fn a_uid_that_is_not_a_uuid_is_refused() {
    let yaml = |uid: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: u, uid: '{uid}'}}\nspec:\n  containers: [{{name: c, image: hello-p1.wasm}}]\n"
        )
    };
    for bad in ["../../../../tmp/escape", "a/b", ".."] {
        let err = PodSpec::from_yaml(&yaml(bad), images())
            .unwrap_err()
            .to_string();
        assert!(err.contains("metadata.uid: Invalid value"), "{err}");
    }
    let good = "6f1c1f0e-6a6b-4d47-9d2c-2a3e8f4b5c6d";
    assert_eq!(PodSpec::from_yaml(&yaml(good), images()).unwrap().uid, good);

    let f = Fixture::new();
    let mut spec = f.spec(&yaml(good));
    spec.uid = "../../../outside".into();
    let err = f.runtime.create_pod(spec).await.err().expect("refused");
    assert!(err.to_string().contains("must be a DNS label"), "{err}");
}

/// Item 4: greedy guests cannot take the runtime's file descriptors: each
/// stops at its own cap, all together at the runtime's budget, and a
/// neighbour's output and new pods keep working.
#[tokio::test]
async fn greedy_guests_stop_at_their_open_file_caps_and_neighbours_keep_working() {
    let f = Fixture::with(|mut c| {
        c.max_open_files = 40;
        c.max_open_files_total = Some(70);
        c
    });
    let w = f
        .start(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: greedy}\nspec:\n  volumes: [{name: data, emptyDir: {}}]\n  containers:\n  - {name: g1, image: toolbox-p2.wasm, args: [open-many, /data/a, '100000'], volumeMounts: [{name: data, mountPath: /data}]}\n  - {name: g2, image: toolbox-p2.wasm, args: [open-many, /data/b, '100000'], volumeMounts: [{name: data, mountPath: /data}]}\n  - {name: g3, image: toolbox-p1.wasm, args: [open-many, /data/c, '100000'], volumeMounts: [{name: data, mountPath: /data}]}\n  - {name: talker, image: toolbox-p1.wasm, args: [sh, 'wait-for /data/go; count 1000'], volumeMounts: [{name: data, mountPath: /data}]}\n",
        )
        .await;
    let opened = |name: &str| -> Option<usize> {
        let log = w.log(name);
        let line = log.lines().find(|l| l.starts_with("opened "))?;
        assert!(line.ends_with("error QuotaExceeded"), "{name}: {line}");
        line["opened ".len()..].split(':').next()?.parse().ok()
    };
    eventually("both wasip2 guests hit a limit", || {
        opened("g1").is_some() && opened("g2").is_some()
    })
    .await;
    let status = w
        .until("the wasip1 guest is stopped", |s| {
            s.container("g3")
                .is_some_and(|c| c.state.terminated().is_some() || c.restart_count > 0)
        })
        .await;
    let (g1, g2) = (opened("g1").unwrap(), opened("g2").unwrap());
    // Each guest also holds its two preopens (/data, /run/wasipod).
    assert!(g1 + 2 <= 40 && g2 + 2 <= 40, "per-guest cap: {g1} {g2}");
    assert!(g1 + g2 + 4 <= 70, "runtime budget: {g1} + {g2}");
    let last = status.container("g3").unwrap();
    let message = match (&last.state, &last.last_state) {
        (ContainerState::Terminated(t), _) => t.message.clone(),
        (_, Some(ContainerState::Terminated(t))) => t.message.clone(),
        other => panic!("g3: {other:?}"),
    };
    assert!(
        message.unwrap_or_default().contains("too many open files"),
        "g3 is stopped with the reason"
    );
    // The runtime's own files (logs) and new pods still work.
    std::fs::write(w.pod.dir().join(".volumes/data/go"), "").unwrap();
    eventually("the neighbour writes its output", || {
        w.log("talker").lines().count() == 1000
    })
    .await;
    let (other, status) = f
        .run("apiVersion: v1\nkind: Pod\nmetadata: {name: next}\nspec:\n  restartPolicy: Never\n  containers: [{name: c, image: hello-p2.wasm}]\n")
        .await;
    assert_eq!(status.phase, PodPhase::Succeeded);
    assert!(!other.log("c").is_empty());
    w.pod.delete(Some(Duration::ZERO)).await;
}

/// Item 6: with more CPU-bound guests than executor threads, timers still
/// fire on time: an endless preStop with a 2 s grace period ends by grace
/// + the 2 s extension + a little.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timers_hold_their_bound_under_eight_spinning_guests_on_two_threads() {
    let f = Fixture::with(|c| c.time_scale(1.0));
    let spinners: String = (0..8)
        .map(|i| format!("  - {{name: s{i}, image: toolbox-p1.wasm, args: [spin]}}\n"))
        .collect();
    let busy = f
        .start(&format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: busy}}\nspec:\n  terminationGracePeriodSeconds: 0\n  containers:\n{spinners}"
        ))
        .await;
    let w = f
        .start("apiVersion: v1\nkind: Pod\nmetadata: {name: slow-stop}\nspec:\n  terminationGracePeriodSeconds: 2\n  containers:\n  - name: c\n    image: toolbox-p2.wasm\n    args: [sleep, '100000000']\n    lifecycle:\n      preStop: {exec: {command: [toolbox, sleep, '100000000']}}\n")
        .await;
    busy.until("8 spinners run", |s| {
        s.container_statuses.iter().all(|c| c.state.is_running())
    })
    .await;
    w.until("running", |s| s.container_statuses[0].state.is_running())
        .await;
    let start = Instant::now();
    w.pod.delete(None).await;
    let took = start.elapsed();
    eprintln!("deletion with 8 spinning guests on 2 threads took {took:?}");
    busy.pod.delete(Some(Duration::ZERO)).await;
    assert!(
        took >= Duration::from_secs(4),
        "grace and extension are waited for: {took:?}"
    );
    assert!(
        took < Duration::from_millis(4500),
        "grace 2 s + extension 2 s, then SIGKILL: stopped after {took:?}"
    );
}

/// Item 7: durations at the edge of int64 (grace periods of a manifest, of
/// a probe, of a deletion) saturate instead of panicking, and the pod stays
/// deletable. (Real time: scaled down, they would not overflow.)
#[tokio::test]
async fn huge_grace_periods_saturate_and_pods_stay_deletable() {
    let f = Fixture::with(|c| c.time_scale(1.0));
    let w = f
        .start("apiVersion: v1\nkind: Pod\nmetadata: {name: huge}\nspec:\n  terminationGracePeriodSeconds: 9223372036854775807\n  containers:\n  - name: c\n    image: toolbox-p1.wasm\n    args: [sleep, '100000000']\n    livenessProbe:\n      exec: {command: [toolbox, exit, '1']}\n      terminationGracePeriodSeconds: 9223372036854775807\n      failureThreshold: 1\n")
        .await;
    eventually("the liveness probe killed it and it restarted", || {
        w.pod
            .status()
            .container("c")
            .is_some_and(|c| c.restart_count >= 1)
    })
    .await;
    let (code, _) = terminated_or_last(&w.pod.status(), "c");
    assert_eq!(code, 143, "no handler: SIGTERM ended it at once");
    let status = tokio::time::timeout(PATIENCE, w.pod.delete(Some(Duration::MAX)))
        .await
        .expect("deletion ends");
    assert!(status.phase.is_terminal(), "{:?}", status.phase);
    let w = f
        .start("apiVersion: v1\nkind: Pod\nmetadata: {name: huge2}\nspec:\n  terminationGracePeriodSeconds: 9223372036854775807\n  containers: [{name: c, image: toolbox-p1.wasm, args: [sleep, '100000000']}]\n")
        .await;
    w.until("running", |s| s.container_statuses[0].state.is_running())
        .await;
    let status = tokio::time::timeout(PATIENCE, w.pod.delete(None))
        .await
        .expect("deletion ends");
    assert_eq!(terminated(&status, "c").0, 143);
}

fn terminated_or_last(status: &wasipod::PodStatus, name: &str) -> (i32, String) {
    let c = status.container(name).unwrap();
    match (&c.state, &c.last_state) {
        (ContainerState::Terminated(t), _) | (_, Some(ContainerState::Terminated(t))) => {
            (t.exit_code, t.message.clone().unwrap_or_default())
        }
        other => panic!("{name}: {other:?}"),
    }
}

/// Item 8: 64 variables each doubling the previous one: refused at
/// validation, naming the field, without allocating the expansion.
#[test]
fn exponential_variable_expansion_is_refused_naming_the_field() {
    let mut env = String::from("    - {name: V0, value: xxxxxxxxxxxxxxxx}\n");
    for i in 1..64 {
        env.push_str(&format!(
            "    - {{name: V{i}, value: '$(V{p})$(V{p})'}}\n",
            p = i - 1
        ));
    }
    let yaml = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: bomb}}\nspec:\n  containers:\n  - name: c\n    image: hello-p1.wasm\n    env:\n{env}"
    );
    let err = PodSpec::from_yaml(&yaml, images()).unwrap_err().to_string();
    assert!(
        err.contains("spec.containers[0].env: Invalid value: \"V")
            && err.contains("expand to more than 1048576 bytes"),
        "{err}"
    );
}

/// Item 9: deleting a pod whose guest made many files does not wait for
/// their removal: the volume is gone from its place at once and removed
/// in the background.
#[tokio::test]
async fn deletion_moves_a_full_volume_aside_and_removes_it_in_the_background() {
    let f = Fixture::new();
    let w = f
        .start("apiVersion: v1\nkind: Pod\nmetadata: {name: many}\nspec:\n  volumes: [{name: data, emptyDir: {}}]\n  containers:\n  - {name: c, image: toolbox-p2.wasm, args: [sh, 'make-files /data 20000; sleep 100000000'], volumeMounts: [{name: data, mountPath: /data}]}\n")
        .await;
    eventually("the files are made", || {
        w.log("c").contains("made 20000 files")
    })
    .await;
    let volume = w.pod.dir().join(".volumes");
    assert!(volume.join("data/19999").exists());
    w.pod.delete(Some(Duration::ZERO)).await;
    assert!(
        !volume.exists(),
        "the volume left its place with the deletion"
    );
    let trash = w
        .pod
        .dir()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("trash");
    eventually("the background removal finishes", || {
        std::fs::read_dir(&trash).is_ok_and(|mut d| d.next().is_none())
    })
    .await;
}

/// Item 11: a container that restarts keeps the logs of its current and
/// previous runs only, as the kubelet does.
#[tokio::test]
async fn only_the_current_and_previous_runs_keep_their_logs() {
    let f = Fixture::new();
    let (w, status) = f
        .run("apiVersion: v1\nkind: Pod\nmetadata: {name: logs}\nspec:\n  restartPolicy: OnFailure\n  volumes: [{name: data, emptyDir: {}}]\n  containers:\n  - {name: c, image: toolbox-p1.wasm, args: [fail-until, /data/runs, '5'], volumeMounts: [{name: data, mountPath: /data}]}\n")
        .await;
    assert_eq!(status.phase, PodPhase::Succeeded);
    assert_eq!(status.container_statuses[0].restart_count, 4);
    let mut logs: Vec<String> = std::fs::read_dir(w.pod.dir().join("c"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".log"))
        .collect();
    logs.sort();
    assert_eq!(logs, ["3.log", "4.log"]);
    assert!(w.log("c").contains("run 5 of 5: succeeding"));
    let previous = String::from_utf8(
        w.pod
            .logs(&wasipod::LogOptions::container("c").previous())
            .unwrap(),
    )
    .unwrap();
    assert!(previous.contains("run 4 of 5: failing"), "{previous}");
}

/// Item 12: without `retain_deleted_pods` a deleted pod leaves nothing in
/// the state folder, and what a runtime that died left is reclaimed by the
/// next runtime on the same folder.
#[tokio::test]
async fn deleted_pods_and_dead_runtimes_leave_no_state_behind() {
    let state = tempfile::tempdir().unwrap();
    let config = || {
        RuntimeConfig::default()
            .state_dir(state.path())
            .time_scale(0.001)
    };
    let runtime = Runtime::new(config()).unwrap();
    let spec = |name: &str| {
        PodSpec::from_yaml(
            &format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  restartPolicy: Never\n  volumes: [{{name: data, emptyDir: {{}}}}]\n  containers: [{{name: c, image: toolbox-p1.wasm, args: [write, /data/x, y], volumeMounts: [{{name: data, mountPath: /data}}]}}]\n"),
            images(),
        )
        .unwrap()
    };
    for i in 0..20 {
        let pod = Watched::new(runtime.create_pod(spec(&format!("p{i}"))).await.unwrap());
        pod.wait().await;
        pod.pod.delete(None).await;
    }
    let pods = state.path().join("pods");
    let empty = |dir: &Path| std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_none());
    eventually("every pod folder is gone", || empty(&pods)).await;

    // A runtime that died (its lock file is there, nobody holds the lock)
    // with a pod whose volumes were never removed.
    let dead = state
        .path()
        .join("runtimes/0123456789abcdef0123456789abcdef.lock");
    let orphan = pods.join("default_orphan_6f1c1f0e-6a6b-4d47-9d2c-2a3e8f4b5c6d");
    std::fs::create_dir_all(orphan.join(".volumes/data")).unwrap();
    std::fs::write(orphan.join(".volumes/data/x"), "left behind").unwrap();
    std::fs::write(
        &dead,
        "pid 999999999 retain 0\ndefault_orphan_6f1c1f0e-6a6b-4d47-9d2c-2a3e8f4b5c6d\n",
    )
    .unwrap();
    drop(runtime);
    let _next = Runtime::new(config()).unwrap();
    assert!(!dead.exists(), "the dead runtime's lock file is reclaimed");
    eventually("the orphan's folder is removed", || !orphan.exists()).await;
}

/// Item 13: tables count against the memory limit with on-demand
/// instances too.
#[tokio::test]
async fn tables_count_against_the_memory_limit() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = wat::parse_str(
        r#"(module
             (table $t 0 funcref)
             (memory (export "memory") 1)
             (func (export "_start")
               (drop (table.grow $t (ref.null func) (i32.const 10000000)))))"#,
    )
    .unwrap();
    std::fs::write(dir.path().join("tables.wasm"), wasm).unwrap();
    let f = Fixture::with(|mut c| {
        c.pool = None;
        c
    });
    let spec = PodSpec::from_yaml(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: tables}\nspec:\n  restartPolicy: Never\n  containers:\n  - {name: c, image: tables.wasm, resources: {limits: {memory: 64Mi}}}\n",
        dir.path(),
    )
    .unwrap();
    let w = Watched::new(f.runtime.create_pod(spec).await.unwrap());
    let status = w.wait().await;
    let t = w.terminated("c");
    assert_eq!(
        (t.exit_code, t.reason.as_str()),
        (137, "OOMKilled"),
        "{status:?}"
    );
    assert!(t.message.unwrap_or_default().contains("(tables)"));
}

/// Item 14: a deeply nested manifest is refused before parsing.
#[test]
fn deep_nesting_and_huge_manifests_are_refused_before_parsing() {
    let deep = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n  labels: {}{}\n",
        "[".repeat(40_000),
        "]".repeat(40_000)
    );
    let start = Instant::now();
    let err = PodSpec::from_yaml(&deep, images()).unwrap_err().to_string();
    assert!(err.contains("nested more than 64 deep"), "{err}");
    assert!(start.elapsed() < PATIENCE);
    let huge = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n  annotations: {{a: '{}'}}\n",
        "x".repeat(4 << 20)
    );
    let err = PodSpec::from_yaml(&huge, images()).unwrap_err().to_string();
    assert!(err.contains("larger than the 3145728 bytes"), "{err}");
}

/// Item 15: Kubernetes' int32 ranges are enforced, naming the field,
/// instead of truncating (a failureThreshold of 2^32 was 0).
#[test]
fn out_of_range_numbers_are_refused_naming_the_field() {
    let cases = [
        (
            "  activeDeadlineSeconds: 2147483648\n  containers: [{name: c, image: hello-p1.wasm}]\n",
            "spec.activeDeadlineSeconds: Invalid value: 2147483648: must be between 1 and 2147483647, inclusive",
        ),
        (
            "  containers:\n  - name: c\n    image: hello-p1.wasm\n    livenessProbe: {tcpSocket: {port: 80}, failureThreshold: 4294967296}\n",
            "spec.containers[0].livenessProbe.failureThreshold: Invalid value: 4294967296: must be between 1 and 2147483647, inclusive",
        ),
        (
            "  containers:\n  - name: c\n    image: hello-p1.wasm\n    readinessProbe: {tcpSocket: {port: 80}, periodSeconds: 99999999999}\n",
            "spec.containers[0].readinessProbe.periodSeconds: Invalid value: 99999999999",
        ),
    ];
    for (spec, want) in cases {
        let yaml = format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: n}}\nspec:\n{spec}");
        let err = PodSpec::from_yaml(&yaml, images()).unwrap_err().to_string();
        assert!(err.contains(want), "{err}");
    }
}

/// Item 16: a guest with no memory limit that outgrows the pool's slot is
/// told so, not "a memory limit of 0 bytes".
#[tokio::test]
async fn outgrowing_the_pool_slot_without_a_limit_names_the_slot() {
    let f = Fixture::with(|mut c| {
        c.pool = Some(wasipod::PoolConfig {
            slots: 8,
            max_memory: 32 << 20,
        });
        c
    });
    let (w, _) = f
        .run("apiVersion: v1\nkind: Pod\nmetadata: {name: slot}\nspec:\n  restartPolicy: Never\n  containers: [{name: c, image: toolbox-p1.wasm, args: [alloc, '64']}]\n")
        .await;
    let t = w.terminated("c");
    assert_eq!(t.exit_code, 137);
    let message = t.message.unwrap_or_default();
    assert!(
        message.contains("instance pool's slot of 33554432 bytes")
            && !message.contains("limit of 0"),
        "{message}"
    );
}
