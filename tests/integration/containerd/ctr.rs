//! The shim through `ctr`, containerd's own client: `ctr run` prints a
//! guest's output and returns its exit code; `ctr task kill`, `exec`, `ps`
//! and `metrics` act on a running guest.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{IMAGE, LogOnFailure, NS, containerd};
use crate::support::PATIENCE;

const RUNTIME: &str = "io.containerd.wasipod.v1";

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `ctr run --rm` in the foreground, as a child process (its stdout
/// piped).
fn spawn_run(c: &super::Containerd, id: &str, extra: &[&str], args: &[&str]) -> Child {
    Command::new("ctr")
        .arg("--address")
        .arg(c.socket())
        .args(["--namespace", NS, "run", "--rm", "--runtime", RUNTIME])
        .args(extra)
        .args([IMAGE, id])
        .args(args)
        .env("CONTAINERD_SNAPSHOTTER", "overlayfs")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running ctr run")
}

/// Waits until `ctr task ls` shows the task RUNNING.
fn wait_running(c: &super::Containerd, id: &str) {
    let started = Instant::now();
    loop {
        let out = c.ctr_ok(NS, &["task", "ls"]);
        let running = text(&out.stdout)
            .lines()
            .any(|l| l.split_whitespace().next() == Some(id) && l.contains("RUNNING"));
        if running {
            return;
        }
        assert!(started.elapsed() < PATIENCE, "task {id} never ran");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits for a child with a bound; its exit code, stdout and stderr.
fn finish_bytes(child: Child) -> (i32, Vec<u8>, String) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = rx
        .recv_timeout(PATIENCE)
        .expect("ctr never ended")
        .expect("ctr");
    (
        out.status.code().unwrap_or(-1),
        out.stdout,
        text(&out.stderr),
    )
}

/// Waits for a child with a bound, and returns its exit code and output.
fn finish(child: Child) -> (i32, String, String) {
    let (code, out, err) = finish_bytes(child);
    (code, text(&out), err)
}

#[test]
fn ctr_run_prints_the_output_and_returns_the_exit_code() {
    let c = containerd();
    let _log = LogOnFailure(&c);
    let (code, out, _) = finish(spawn_run(
        &c,
        "run-ok",
        &[],
        &[
            "/toolbox-p1.wasm",
            "sh",
            "echo hello from wasm; eprint to stderr",
        ],
    ));
    assert_eq!(code, 0);
    assert_eq!(out, "hello from wasm\n");

    let (code, out, _) = finish(spawn_run(
        &c,
        "run-three",
        &[],
        &["/toolbox-p1.wasm", "sh", "echo three; exit 3"],
    ));
    assert_eq!((code, out.as_str()), (3, "three\n"));

    // The image's entrypoint with the arguments ctr gives: `ctr run`
    // replaces the whole argv, so the test names the module itself; the
    // module is read from the container's root file system.
    let (code, _, err) = finish(spawn_run(
        &c,
        "run-oom",
        &["--memory-limit", "20000000"],
        &["/toolbox-p1.wasm", "alloc", "64"],
    ));
    assert_eq!(code, 137, "{err}");
    assert!(
        err.contains("memory limit of 20000000 bytes exceeded"),
        "{err}"
    );

    let (code, _, err) = finish(spawn_run(&c, "run-missing", &[], &["/nothing.wasm"]));
    assert_ne!(code, 0);
    assert!(err.contains("/nothing.wasm"), "{err}");
    // `--rm` took every container away.
    let left = c.ctr_ok(NS, &["containers", "ls", "-q"]);
    for id in ["run-ok", "run-three", "run-oom", "run-missing"] {
        assert!(
            !text(&left.stdout).lines().any(|l| l == id),
            "{id} left behind"
        );
    }
}

#[test]
fn ctr_task_kill_sigterm_lets_the_guest_drain_and_sigkill_ends_it_at_once() {
    let c = containerd();
    let _log = LogOnFailure(&c);
    let run = spawn_run(
        &c,
        "drain",
        &[],
        &[
            "/toolbox-p1.wasm",
            "sh",
            "handle-sigterm; echo ready; wait-sigterm 50 0",
        ],
    );
    wait_running(&c, "drain");
    c.ctr_ok(NS, &["task", "kill", "--signal", "SIGTERM", "drain"]);
    let (code, out, err) = finish(run);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "ready\ngot SIGTERM\ndrained\n");

    // Without a handler, SIGTERM ends the guest at once: 143.
    let run = spawn_run(
        &c,
        "no-handler",
        &[],
        &["/toolbox-p1.wasm", "sleep", "3600000"],
    );
    wait_running(&c, "no-handler");
    c.ctr_ok(NS, &["task", "kill", "--signal", "SIGTERM", "no-handler"]);
    assert_eq!(finish(run).0, 143);

    // A guest blocked in accept (on the pod's own loopback) ends with 137.
    let run = spawn_run(
        &c,
        "blocked",
        &[],
        &["/toolbox-p2.wasm", "accept", "127.0.0.1:9"],
    );
    wait_running(&c, "blocked");
    c.ctr_ok(NS, &["task", "kill", "--signal", "SIGKILL", "blocked"]);
    assert_eq!(finish(run).0, 137);
}

#[test]
fn ctr_task_exec_runs_the_program_again_in_the_container() {
    let c = containerd();
    let _log = LogOnFailure(&c);
    c.ctr_ok(
        NS,
        &[
            "run",
            "-d",
            "--runtime",
            RUNTIME,
            IMAGE,
            "exec-target",
            "/toolbox-p1.wasm",
            "sh",
            "write /tmp/mark written-by-the-main-run; alloc 8; sleep 3600000",
        ],
    );
    wait_running(&c, "exec-target");
    // The exec sees the container's files, and its code comes back.
    let out = c.ctr_in(
        NS,
        &[
            "task",
            "exec",
            "--exec-id",
            "e1",
            "exec-target",
            "/toolbox-p1.wasm",
            "sh",
            "cat /tmp/mark; exit 4",
        ],
    );
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "written-by-the-main-run");
    let out = c.ctr_ok(
        NS,
        &[
            "task",
            "exec",
            "--exec-id",
            "e2",
            "exec-target",
            "x",
            "echo",
            "again",
        ],
    );
    assert_eq!(text(&out.stdout), "again\n");
    // A terminal is refused with a reason.
    let out = c.ctr_in(
        NS,
        &[
            "task",
            "exec",
            "-t",
            "--exec-id",
            "e3",
            "exec-target",
            "x",
            "echo",
        ],
    );
    assert!(!out.status.success());

    let ps = c.ctr_ok(NS, &["task", "ps", "exec-target"]);
    assert!(
        text(&ps.stdout).lines().count() >= 2,
        "{}",
        text(&ps.stdout)
    );
    let metrics = text(&c.ctr_ok(NS, &["task", "metrics", "exec-target"]).stdout);
    let usage: u64 = metrics
        .lines()
        .find(|l| l.starts_with("memory.usage_in_bytes"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no memory usage in:\n{metrics}"));
    // The guest touched 8 MiB on top of its own memory.
    assert!(usage > 8 << 20, "{metrics}");

    // An exec still running when the container ends, ends with it.
    let mut lingering = Command::new("ctr")
        .arg("--address")
        .arg(c.socket())
        .args([
            "--namespace",
            NS,
            "task",
            "exec",
            "--exec-id",
            "e5",
            "exec-target",
        ])
        .args(["x", "sh", "echo started; sleep 3600000"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ctr task exec");
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(lingering.stdout.as_mut().unwrap()),
        &mut first,
    )
    .unwrap();
    assert_eq!(first, "started\n");
    c.ctr_ok(NS, &["task", "kill", "--signal", "SIGKILL", "exec-target"]);
    assert_eq!(finish(lingering).0, 137);
    let started = Instant::now();
    while c.ctr_in(NS, &["task", "rm", "exec-target"]).status.code() != Some(0) {
        assert!(started.elapsed() < PATIENCE, "the task never stopped");
        std::thread::sleep(Duration::from_millis(10));
    }
    c.ctr_ok(NS, &["containers", "rm", "exec-target"]);
}

/// A network namespace the test makes (`ip netns add`), with loopback up
/// and a veth pair inside it, one end at 192.0.2.1/24; deleted on drop.
struct Netns {
    name: String,
}

impl Netns {
    fn new(name: &str) -> Self {
        let ip = |args: &[&str]| {
            let out = Command::new("ip").args(args).output().expect("running ip");
            assert!(out.status.success(), "ip {args:?}: {}", text(&out.stderr));
        };
        let _ = Command::new("ip").args(["netns", "del", name]).output();
        ip(&["netns", "add", name]);
        let ns = Netns {
            name: name.to_string(),
        };
        ip(&["-n", name, "link", "set", "lo", "up"]);
        ip(&[
            "-n", name, "link", "add", "v0", "type", "veth", "peer", "name", "v1",
        ]);
        ip(&["-n", name, "addr", "add", "192.0.2.1/24", "dev", "v0"]);
        ip(&["-n", name, "link", "set", "v0", "up"]);
        ip(&["-n", name, "link", "set", "v1", "up"]);
        ns
    }

    fn path(&self) -> String {
        format!("/var/run/netns/{}", self.name)
    }

    /// Runs `f` on a thread inside the namespace.
    fn within<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = self.path();
        std::thread::spawn(move || {
            use std::os::fd::AsRawFd;
            let ns = std::fs::File::open(&path).expect("the namespace");
            // SAFETY: setns for this short-lived thread only.
            let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
            f()
        })
        .join()
        .expect("namespace thread")
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

fn echo_once(listener: std::net::TcpListener) {
    use std::io::{Read, Write};
    let (mut s, _) = listener.accept().expect("accept");
    let mut got = Vec::new();
    s.read_to_end(&mut got).expect("read");
    s.write_all(&got).expect("write");
}

#[test]
fn a_pod_in_a_network_namespace_is_reached_there_and_dials_out_from_there() {
    use std::io::{Read, Write};
    let c = containerd();
    let _log = LogOnFailure(&c);
    let ns = Netns::new(&format!("wasipod-t{}", std::process::id()));
    let with_ns = format!("network:{}", ns.path());

    // Outbound: the guest reaches a server the test runs in the namespace
    // (at an address only the namespace has).
    let server = ns.within(|| std::net::TcpListener::bind("192.0.2.1:0").expect("bind in netns"));
    let target = server.local_addr().unwrap().to_string();
    let serving = std::thread::spawn(move || echo_once(server));
    let (code, out, err) = finish(spawn_run(
        &c,
        "dial-out",
        &["--with-ns", &with_ns],
        &["/tcp-echo-p2.wasm", "send", &target, "from-the-guest"],
    ));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("from-the-guest"), "{out}");
    serving.join().unwrap();

    // Inbound: a guest's wildcard listener is listened on in the namespace
    // (where the kubelet's probes and port-forward connect), and not on
    // the host's own network.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let at = format!("0.0.0.0:{port}");
    let run = spawn_run(
        &c,
        "listen-in-ns",
        &["--with-ns", &with_ns],
        &["/tcp-echo-p2.wasm", "serve", &at, "2"],
    );
    wait_running(&c, "listen-in-ns");
    for addr in ["192.0.2.1", "127.0.0.1"] {
        let back = ns.within(move || {
            let started = Instant::now();
            let mut s = loop {
                match std::net::TcpStream::connect((addr, port)) {
                    Ok(s) => break s,
                    Err(e) => {
                        assert!(started.elapsed() < PATIENCE, "{addr}:{port}: {e}");
                        std::thread::sleep(Duration::from_millis(10));
                    }
                }
            };
            s.write_all(b"into-the-pod").unwrap();
            s.shutdown(std::net::Shutdown::Write).unwrap();
            let mut back = String::new();
            s.read_to_string(&mut back).unwrap();
            back
        });
        assert_eq!(back, "into-the-pod", "through {addr}");
    }
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the guest's port is open on the host's own network"
    );
    let (code, _, err) = finish(run);
    assert_eq!(code, 0, "{err}");

    // A loopback listener is mirrored on the namespace's loopback only
    // (where CRI port-forward dials), never on its interfaces. (Another
    // port: the first guest's mirror may linger for a moment.)
    let port = port + 1;
    let at = format!("127.0.0.1:{port}");
    let run = spawn_run(
        &c,
        "loopback-in-ns",
        &["--with-ns", &with_ns],
        &["/tcp-echo-p2.wasm", "serve", &at, "1"],
    );
    wait_running(&c, "loopback-in-ns");
    let back = ns.within(move || {
        let started = Instant::now();
        let mut s = loop {
            match std::net::TcpStream::connect(("127.0.0.1", port)) {
                Ok(s) => break s,
                Err(e) => {
                    assert!(started.elapsed() < PATIENCE, "127.0.0.1:{port}: {e}");
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        };
        let outside = std::net::TcpStream::connect(("192.0.2.1", port)).is_ok();
        s.write_all(b"over-loopback").unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut back = String::new();
        s.read_to_string(&mut back).unwrap();
        (back, outside)
    });
    assert_eq!(back, ("over-loopback".to_string(), false));
    let (code, _, err) = finish(run);
    assert_eq!(code, 0, "{err}");
}
