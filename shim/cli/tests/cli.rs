//! The `wasipod` command line, run as a user would: the real binary on the
//! sample pods. (Its own test binary because only the CLI's package gets
//! `CARGO_BIN_EXE_wasipod`.)

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

struct Env {
    state: tempfile::TempDir,
    cache: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        Self {
            state: tempfile::tempdir().unwrap(),
            cache: tempfile::tempdir().unwrap(),
        }
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_wasipod"));
        c.env("WASIPOD_STATE_DIR", self.state.path())
            .env("WASIPOD_CACHE_DIR", self.cache.path())
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        let out = self.cmd().args(args).output().unwrap();
        eprintln!(
            "$ wasipod {}\n--- stdout\n{}--- stderr\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}

fn demo() -> String {
    wasipod_samples::pods_dir()
        .join("demo.yaml")
        .display()
        .to_string()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn run_prints_prefixed_output_and_exits_zero_on_success() {
    let env = Env::new();
    let out = env.run(&["run", &demo()]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("[setup] wrote /work/greeting.txt"),
        "{stdout}"
    );
    assert!(
        stdout.contains("[reader] Hello from the init container"),
        "{stdout}"
    );
    assert!(
        stdout.contains("[hello] Hello from demo! I am a wasip2 component"),
        "{stdout}"
    );
    assert!(stdout.contains("[counter] counted to 3"), "{stdout}");
    let stderr = text(&out.stderr);
    assert!(stderr.contains("pod default/demo: Succeeded"), "{stderr}");
    assert!(
        stderr.contains("Compiled container image"),
        "first run compiles: {stderr}"
    );

    // The second run loads every image from the disk cache.
    let out = env.run(&["run", &demo()]);
    assert_eq!(out.status.code(), Some(0));
    let stderr = text(&out.stderr);
    assert!(!stderr.contains("Compiled container image"), "{stderr}");
    assert!(stderr.contains("loaded from the compile cache"), "{stderr}");

    // Logs and status stay readable after the run.
    let out = env.run(&["logs", "demo", "-c", "reader"]);
    assert_eq!(
        text(&out.stdout),
        "Hello from the init container\nmotd\nwasm pods, Kubernetes semantics.\n"
    );
    let out = env.run(&[
        "logs",
        "demo",
        "-c",
        "reader",
        "--tail",
        "1",
        "--timestamps",
    ]);
    let last = text(&out.stdout);
    let (time, line) = last.split_once(' ').unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(time).is_ok(), "{last}");
    assert_eq!(line, "wasm pods, Kubernetes semantics.\n");
    let out = env.run(&["logs", "demo"]);
    assert_ne!(
        out.status.code(),
        Some(0),
        "several containers: -c is required"
    );
    assert!(text(&out.stderr).contains("choose one of: [setup hello reader counter]"));
    let out = env.run(&["get"]);
    let listing = text(&out.stdout);
    assert_eq!(
        listing
            .lines()
            .filter(|l| l.contains(" demo ") && l.contains(" Completed "))
            .count(),
        2,
        "kubectl's STATUS of a succeeded pod: {listing}"
    );
    assert!(
        listing.starts_with("NAMESPACE   NAME   READY   STATUS      RESTARTS   AGE\n"),
        "{listing}"
    );
    let wide = text(&env.run(&["get", "-o", "wide"]).stdout);
    let line = wide.lines().nth(1).unwrap();
    assert!(
        wide.lines().next().unwrap().ends_with("IP          QOS")
            && line.contains(" 10.88.")
            && line.ends_with(" Burstable"),
        "{wide}"
    );
    let out = env.run(&["rm", "--all"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&env.run(&["get"]).stdout).lines().count() == 1);
}

#[test]
fn output_json_is_the_final_pod_object() {
    let env = Env::new();
    let out = env.run(&["run", &demo(), "-o", "json", "--rm", "-q"]);
    assert_eq!(out.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", text(&out.stdout)));
    assert_eq!(json["kind"], "Pod");
    assert_eq!(json["status"]["phase"], "Succeeded");
    assert_eq!(
        json["status"]["containerStatuses"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        std::fs::read_dir(env.state.path().join("pods"))
            .unwrap()
            .count(),
        0,
        "--rm leaves nothing"
    );
    let out = env.run(&["run", &demo(), "-o", "yaml", "-q"]);
    let yaml = text(&out.stdout);
    assert!(
        yaml.contains("apiVersion: v1") && yaml.contains("phase: Succeeded"),
        "{yaml}"
    );
}

#[test]
fn bad_manifests_exit_2_naming_the_field_and_failed_pods_exit_1() {
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "apiVersion: v1\nkind: Pod\nmetadata: {name: bad}\nspec:\n  containers:\n  - {name: a, image: nowhere.wasm}\n").unwrap();
    let out = env.run(&["run", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("spec.containers[0].image: file not found: "),
        "{}",
        text(&out.stderr)
    );
    let out = env.run(&["validate", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));

    // A library module: refused by validate from its bytes, no compile.
    std::fs::write(dir.path().join("lib.wasm"), b"\0asm\x01\0\0\0").unwrap();
    let lib = dir.path().join("lib.yaml");
    std::fs::write(&lib, "apiVersion: v1\nkind: Pod\nmetadata: {name: lib}\nspec:\n  containers:\n  - {name: a, image: lib.wasm}\n").unwrap();
    let out = env.run(&["validate", lib.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr)
            .contains("spec.containers[0].image: lib.wasm: the module has no _start export"),
        "{}",
        text(&out.stderr)
    );

    let failing = dir.path().join("failing.yaml");
    std::fs::write(
        &failing,
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: failing}}\nspec:\n  restartPolicy: Never\n  nodeName: n1\n  containers:\n  - {{name: a, image: {}, args: [sh, eprint going down; exit 3]}}\n",
            wasipod_samples::TOOLBOX_P1
        ),
    )
    .unwrap();
    let out = env.run(&["run", failing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("warning: spec.nodeName: ignored"),
        "{stderr}"
    );
    assert!(stderr.contains("[a] going down"), "{stderr}");
    assert!(stderr.contains("pod default/failing: Failed"), "{stderr}");
    let out = env.run(&["validate", failing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));

    // A host port that is taken: the machine is out of it, exit 3.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let publish = format!("{port}:80");
    let out = env.run(&["run", failing.to_str().unwrap(), "-p", &publish]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{}",
        text(&out.stderr)
    );
    // Logs of a pod that does not exist: a user error, exit 2.
    let out = env.run(&["logs", "nobody"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("pods \"nobody\" not found in namespace \"default\""),
        "{}",
        text(&out.stderr)
    );
}

fn wait_for(what: &str, f: impl Fn() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "never happened: {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn pod_json(state: &Path) -> Option<serde_json::Value> {
    let dir = std::fs::read_dir(state.join("pods"))
        .ok()?
        .flatten()
        .next()?
        .path();
    serde_json::from_slice(&std::fs::read(dir.join("pod.json")).ok()?).ok()
}

/// Starts `wasipod run MANIFEST` (a pod whose container writes `/w/f` in
/// an emptyDir) and waits until it runs and the file is there; returns
/// the process and the pod's folder.
fn run_until_written(
    env: &Env,
    manifest: &Path,
    output: fn() -> Stdio,
) -> (std::process::Child, std::path::PathBuf) {
    let child = env
        .cmd()
        .args(["run", manifest.to_str().unwrap()])
        .stdout(output())
        .stderr(output())
        .spawn()
        .unwrap();
    wait_for("the pod runs", || {
        pod_json(env.state.path()).is_some_and(|j| j["status"]["phase"] == "Running")
    });
    let pod_dir = std::fs::read_dir(env.state.path().join("pods"))
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    wait_for("the emptyDir is written", || {
        pod_dir.join(".volumes/w/f").exists()
    });
    (child, pod_dir)
}

#[test]
fn sigterm_and_stop_delete_a_running_pod_and_clean_up() {
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("forever.yaml");
    std::fs::write(
        &manifest,
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: forever}}\nspec:\n  volumes: [{{name: w, emptyDir: {{}}}}]\n  containers:\n  - {{name: sleeper, image: {t}, args: [sh, write /w/f x; sleep 600000], volumeMounts: [{{name: w, mountPath: /w}}]}}\n  - {{name: spinner, image: {t}, args: [spin]}}\n",
            t = wasipod_samples::TOOLBOX_P2
        ),
    )
    .unwrap();

    for how in ["SIGTERM", "wasipod stop"] {
        let (child, pod_dir) = run_until_written(&env, &manifest, Stdio::piped);
        if how == "SIGTERM" {
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        } else {
            let out = env.run(&["stop", "forever"]);
            assert_eq!(out.status.code(), Some(0));
        }
        let out = child.wait_with_output().unwrap();
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{how}: {stderr}");
        assert!(
            stderr.contains("wasipod: deleting pod forever (grace period 30s)"),
            "{stderr}"
        );
        assert!(stderr.contains("Stopping container spinner"), "{stderr}");
        assert!(
            !pod_dir.join(".volumes").exists(),
            "{how}: the emptyDir is removed"
        );
        let json = pod_json(env.state.path()).unwrap();
        assert_eq!(json["status"]["phase"], "Failed");
        assert_eq!(
            json["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"],
            143
        );
        assert!(!pod_dir.join("wasipod.pid").exists());
        let out = env.run(&["stop", "forever"]);
        assert_ne!(out.status.code(), Some(0), "nothing left to stop");
        std::fs::remove_dir_all(pod_dir).unwrap();
    }
}

#[test]
fn bench_reports_every_measure_as_json() {
    let env = Env::new();
    let plot = env.state.path().join("latency.svg");
    let manifest = wasipod_samples::pods_dir().join("bench/hello-p1.yaml");
    let out = env.run(&[
        "bench",
        manifest.to_str().unwrap(),
        "--count",
        "20",
        "--warmup",
        "2",
        "--concurrency",
        "2",
        "-o",
        "json",
        "--plot",
        plot.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["pods"], 20);
    assert_eq!(report["concurrency"], 2);
    assert_eq!(report["scheduler"], "thread-per-core");
    let threads = report["threads"].as_u64().unwrap();
    assert!((1..=2).contains(&threads), "{threads}");
    // The chart: an SVG with a curve and a legend entry per measure.
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    for measure in ["created", "started", "succeeded", "deleted"] {
        assert!(
            svg.contains(&format!(">\n{measure}\n<")),
            "{measure} in the legend"
        );
    }
    assert!(!svg.contains(">\nready\n<"), "no readiness curve");
    assert!(svg.matches("<polyline").count() >= 4);
    assert_eq!(
        report["compile"]["compiled"], 1,
        "a fresh cache compiles the one image, outside the figures"
    );
    for measure in ["created", "started", "succeeded", "deleted"] {
        let m = &report[measure];
        assert_eq!(m["count"], 20, "{measure}: {m}");
        let (p50, p99, max) = (
            m["p50_us"].as_f64().unwrap(),
            m["p99_us"].as_f64().unwrap(),
            m["max_us"].as_f64().unwrap(),
        );
        assert!(0.0 < p50 && p50 <= p99 && p99 <= max, "{measure}: {m}");
    }
    assert!(report["ready"].is_null(), "no readiness probe in this pod");
    assert!(report["pods_per_second"].as_f64().unwrap() > 0.0);
    // The second run finds the image in the disk cache.
    let out = env.run(&[
        "bench",
        manifest.to_str().unwrap(),
        "--count",
        "5",
        "--warmup",
        "0",
    ]);
    let text = text(&out.stdout);
    assert!(
        text.contains("compile: cached (1 image(s) from the disk cache"),
        "{text}"
    );
    assert!(
        text.contains("succeeded") && text.contains("pods/s"),
        "{text}"
    );
}

/// A `wasipod run` killed with SIGKILL leaves a record that says Running;
/// `get` tells it is Unknown (the lock its process held is gone, whatever
/// process may have its pid now), `stop` refuses to signal anything, and
/// the next `wasipod run` reclaims the dead pod's volumes.
#[test]
fn a_killed_run_is_unknown_never_signalled_and_its_volumes_are_reclaimed() {
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("victim.yaml");
    std::fs::write(
        &manifest,
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: victim}}\nspec:\n  volumes: [{{name: w, emptyDir: {{}}}}]\n  containers:\n  - {{name: c, image: {t}, args: [sh, write /w/f x; sleep 600000], volumeMounts: [{{name: w, mountPath: /w}}]}}\n",
            t = wasipod_samples::TOOLBOX_P1
        ),
    )
    .unwrap();
    let (mut child, pod_dir) = run_until_written(&env, &manifest, Stdio::null);
    let out = env.run(&["get"]);
    assert!(
        text(&out.stdout).contains("Running"),
        "alive: listed as Running"
    );
    child.kill().unwrap();
    child.wait().unwrap();

    let list = text(&env.run(&["get"]).stdout);
    let line = list.lines().find(|l| l.contains("victim")).unwrap();
    assert!(line.contains("Unknown"), "{list}");
    let one = env.run(&["get", "victim", "-o", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&one.stdout).unwrap();
    assert_eq!(
        json["status"]["phase"], "Unknown",
        "get POD agrees with the list"
    );
    let out = env.run(&["stop", "victim"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(text(&out.stderr).contains("is not running"));

    // The next run on the same state folder reclaims the dead pod's volume.
    let out = env.run(&["run", &demo()]);
    assert_eq!(out.status.code(), Some(0));
    wait_for("the dead pod's volumes are removed", || {
        !pod_dir.join(".volumes").exists()
    });
    assert!(pod_dir.join("pod.json").exists(), "its record stays");
}

/// A trap's message carries the guest's wasm backtrace, never the host's
/// Rust frames, even with RUST_BACKTRACE set.
#[test]
fn trap_messages_carry_no_host_frames() {
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("trap.yaml");
    std::fs::write(
        &manifest,
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: trap}}\nspec:\n  restartPolicy: Never\n  containers: [{{name: c, image: {t}, args: [trap]}}]\n",
            t = wasipod_samples::TOOLBOX_P2
        ),
    )
    .unwrap();
    let out = env
        .cmd()
        .env("RUST_BACKTRACE", "1")
        .env("RUST_LIB_BACKTRACE", "1")
        .args(["run", "-o", "json", manifest.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let message = json["status"]["containerStatuses"][0]["state"]["terminated"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(message.contains("wasm backtrace"), "{message}");
    for host in ["wasmtime::", "tokio::", "/rustc/", "std::"] {
        assert!(!message.contains(host), "host frame {host:?} in: {message}");
    }
}

/// CPU time (user + system, in clock ticks) a process has used so far.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The fields after the command name, which is in parentheses.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

/// A published port whose accepts fail (the process is out of file
/// descriptors, with clients still waiting) pauses between tries instead
/// of spinning a core.
#[test]
fn failing_accepts_on_a_published_port_do_not_spin() {
    use std::os::unix::process::CommandExt;
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("echo.yaml");
    std::fs::write(
        &manifest,
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: echo}}\nspec:\n  containers: [{{name: c, image: {t}, args: [serve, '0.0.0.0:7000']}}]\n",
            t = wasipod_samples::TCP_ECHO_P2
        ),
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = env.cmd();
    cmd.args([
        "run",
        "-p",
        &format!("{port}:7000"),
        manifest.to_str().unwrap(),
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    // SAFETY: setrlimit is async-signal-safe; it runs in the child before exec.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 64,
                rlim_max: 64,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    wait_for("the port answers", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    // More clients than the process has descriptors: the kernel completes
    // their handshakes, the runtime's accepts fail with EMFILE.
    let clients: Vec<_> = (0..100)
        .filter_map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).ok())
        .collect();
    assert!(clients.len() > 64, "{} clients", clients.len());
    std::thread::sleep(Duration::from_millis(500));
    let before = cpu_ticks(child.id());
    std::thread::sleep(Duration::from_secs(2));
    let used = cpu_ticks(child.id()) - before;
    eprintln!("{used} ticks of CPU in 2 s with accepts failing");
    child.kill().unwrap();
    child.wait().unwrap();
    // A spinning accept loop takes a whole core: 200 ticks in 2 s.
    assert!(used < 60, "{used} ticks of CPU in 2 s with accepts failing");
}

/// A memory limit larger than any wasm32 guest can use is refused at
/// create naming the field (it was an mmap error naming nothing).
#[test]
fn a_huge_memory_limit_is_refused_naming_the_field() {
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("big.yaml");
    std::fs::write(
        &manifest,
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: big}}\nspec:\n  containers: [{{name: c, image: {t}, resources: {{limits: {{memory: 64Ti}}}}}}]\n",
            t = wasipod_samples::HELLO_P1
        ),
    )
    .unwrap();
    let out = env.run(&["run", manifest.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr)
            .contains("spec.containers[0].resources.limits[memory]: 70368744177664 bytes exceed"),
        "{}",
        text(&out.stderr)
    );
}
