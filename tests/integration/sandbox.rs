//! The sandbox layer (CRI level) driven directly, without the pod worker:
//! what the containerd shim will use.

use std::sync::Arc;

use wasipod::sandbox::{
    ContainerConfig, Image, Node, PodSandbox, RunState, SandboxConfig, Signal, StdioPaths,
};
use wasipod::spec::{MountSpec, VolumeSource, VolumeSpec};
use wasipod::status::ExitReason;
use wasipod::{ErrorKind, RuntimeConfig};

use crate::support::{PATIENCE, eventually, images};

struct Host {
    node: Arc<Node>,
    _state: tempfile::TempDir,
}

fn host_with(f: impl FnOnce(RuntimeConfig) -> RuntimeConfig) -> Host {
    let state = tempfile::tempdir().unwrap();
    let config = f(RuntimeConfig::default().state_dir(state.path()));
    Host {
        node: Node::new(&config).unwrap(),
        _state: state,
    }
}

fn host() -> Host {
    host_with(|c| c)
}

impl Host {
    async fn image(&self, file: &str) -> Arc<Image> {
        self.node
            .load_image(&images().join(file), file)
            .await
            .unwrap()
            .image
    }

    async fn container(&self, name: &str, file: &str, argv: &[&str]) -> ContainerConfig {
        ContainerConfig {
            argv: argv.iter().map(|a| a.to_string()).collect(),
            ..ContainerConfig::new(name, self.image(file).await)
        }
    }

    fn sandbox(&self, config: SandboxConfig) -> PodSandbox {
        let sandbox = PodSandbox::run(&self.node, config).unwrap();
        sandbox.mount_volumes().unwrap();
        sandbox
    }
}

fn log(sandbox: &PodSandbox, container: &str) -> String {
    String::from_utf8(
        wasipod::log::read(
            &sandbox.layout().log(container, 0),
            &Default::default(),
            true,
        )
        .unwrap(),
    )
    .unwrap()
}

async fn wait_for_log(sandbox: &PodSandbox, container: &str, text: &str) {
    eventually(&format!("{container} printed {text:?}"), || {
        log(sandbox, container).contains(text)
    })
    .await;
}

fn mount(volume: usize, path: &str) -> MountSpec {
    MountSpec {
        volume,
        mount_path: path.into(),
        read_only: false,
        sub_path: None,
        field: format!("mount {path}"),
    }
}

#[tokio::test]
async fn two_containers_share_localhost_and_an_empty_dir() {
    let h = host();
    let mut config = SandboxConfig::new("default", "pair");
    config.volumes.push(VolumeSpec {
        name: "shared".into(),
        source: VolumeSource::EmptyDir {
            memory: false,
            size_limit: None,
        },
        field: "volumes[0]".into(),
    });
    let sandbox = h.sandbox(config);
    let mut containers = Vec::new();
    for (name, file, argv, mounted) in [
        (
            "server",
            "tcp-echo-p2.wasm",
            &["tcp-echo", "serve", "127.0.0.1:7000", "1"][..],
            false,
        ),
        (
            "client",
            "tcp-echo-p2.wasm",
            &["tcp-echo", "send", "localhost:7000", "ping over localhost"][..],
            false,
        ),
        (
            "writer",
            "toolbox-p1.wasm",
            &[
                "toolbox",
                "sh",
                "write /shared/note hello from a volume; write /shared/done yes",
            ][..],
            true,
        ),
        (
            "reader",
            "toolbox-p2.wasm",
            &["toolbox", "sh", "wait-for /shared/done; cat /shared/note"][..],
            true,
        ),
    ] {
        let mut cfg = h.container(name, file, argv).await;
        if mounted {
            cfg.mounts.push(mount(0, "/shared"));
        }
        let c = sandbox.create_container(cfg).unwrap();
        c.start().unwrap();
        containers.push((name, c));
    }
    for (name, c) in &containers {
        let exit = tokio::time::timeout(PATIENCE, c.wait()).await.unwrap();
        assert_eq!(
            exit.exit.code,
            0,
            "{name}: {exit:?}\n{}",
            log(&sandbox, name)
        );
        assert!(exit.started_at.is_some_and(|s| s <= exit.finished_at));
    }
    assert_eq!(log(&sandbox, "client"), "ping over localhost\n");
    // The unterminated line is completed, as containerd does.
    assert_eq!(log(&sandbox, "reader"), "hello from a volume\n");
    sandbox.remove();
}

#[tokio::test]
async fn term_ends_a_guest_without_a_handler_at_once_and_lets_one_with_a_handler_drain() {
    let h = host();
    let sandbox = h.sandbox(SandboxConfig::new("default", "term"));
    let plain = sandbox
        .create_container(
            h.container("plain", "toolbox-p1.wasm", &["toolbox", "sleep", "600000"])
                .await,
        )
        .unwrap();
    let handler = sandbox
        .create_container(
            h.container(
                "handler",
                "toolbox-p2.wasm",
                &[
                    "toolbox",
                    "sh",
                    "handle-sigterm; echo ready; wait-sigterm 20",
                ],
            )
            .await,
        )
        .unwrap();
    plain.start().unwrap();
    handler.start().unwrap();
    assert!(matches!(plain.state(), RunState::Running { .. }));

    plain.kill(Signal::Term);
    let exit = tokio::time::timeout(PATIENCE, plain.wait()).await.unwrap();
    assert_eq!(exit.exit.code, 143);
    assert_eq!(exit.exit.reason, ExitReason::Error);

    wait_for_log(&sandbox, "handler", "ready").await;
    handler.kill(Signal::Term);
    let exit = tokio::time::timeout(PATIENCE, handler.wait())
        .await
        .unwrap();
    assert_eq!(exit.exit.code, 0, "{}", log(&sandbox, "handler"));
    assert_eq!(log(&sandbox, "handler"), "ready\ngot SIGTERM\ndrained\n");
    // Removing a container empties its /run/wasipod (the handler file and
    // the termination file were there); its log stays.
    let run = sandbox.layout().container("handler").join("run");
    assert!(run.join("sigterm-handler").exists());
    handler.remove().await;
    assert_eq!(std::fs::read_dir(&run).unwrap().count(), 0);
    assert_eq!(log(&sandbox, "handler"), "ready\ngot SIGTERM\ndrained\n");
    // A run happens once.
    let again = plain.start().unwrap_err();
    assert_eq!(again.kind(), ErrorKind::FailedPrecondition);
    sandbox.remove();
}

#[tokio::test]
async fn kill_ends_a_guest_blocked_in_accept_and_exec_runs_beside_it() {
    let h = host();
    let sandbox = h.sandbox(SandboxConfig::new("default", "kill"));
    let server = sandbox
        .create_container(
            h.container(
                "server",
                "tcp-echo-p2.wasm",
                &["tcp-echo", "serve", "127.0.0.1:9000"],
            )
            .await,
        )
        .unwrap();
    // Not started yet: nothing to exec into.
    let early = server.exec(vec!["tcp-echo".into()]).await.unwrap_err();
    assert_eq!(early.kind(), ErrorKind::FailedPrecondition);
    server.start().unwrap();
    // An exec runs the container's program again in its network: the
    // client retries until the server listens, then gets its echo.
    let exec = server
        .exec(vec![
            "tcp-echo".into(),
            "send".into(),
            "127.0.0.1:9000".into(),
            "echo via exec".into(),
        ])
        .await
        .unwrap();
    assert_eq!(exec.exit.code, 0);
    assert_eq!(String::from_utf8_lossy(&exec.output), "echo via exec\n");
    wait_for_log(&sandbox, "server", "echoed").await;
    // Back in accept: SIGKILL ends it where it waits.
    server.kill(Signal::Kill);
    let exit = tokio::time::timeout(PATIENCE, server.wait()).await.unwrap();
    assert_eq!(exit.exit.code, 137);
    assert_eq!(exit.exit.message.as_deref(), Some("killed (SIGKILL)"));
    sandbox.remove();
}

#[tokio::test]
async fn exec_returns_the_exit_code_and_output_with_the_containers_environment() {
    let h = host();
    let mut config = SandboxConfig::new("default", "exec");
    config.hostname = "exec-host".into();
    let sandbox = h.sandbox(config);
    let mut cfg = h
        .container("app", "toolbox-p1.wasm", &["toolbox", "sleep", "600000"])
        .await;
    cfg.env.push(("GREETING".into(), "hi".into()));
    let app = sandbox.create_container(cfg).unwrap();
    app.start().unwrap();
    let exec = app
        .exec(vec![
            "toolbox".into(),
            "sh".into(),
            "env; eprint to stderr; exit 3".into(),
        ])
        .await
        .unwrap();
    assert_eq!(exec.exit.code, 3);
    let output = String::from_utf8(exec.output).unwrap();
    assert!(output.contains("GREETING=hi\n"), "{output}");
    assert!(output.contains("HOSTNAME=exec-host\n"), "{output}");
    assert!(output.ends_with("to stderr\n"), "{output}");
    // The container itself runs on, untouched.
    assert!(matches!(app.state(), RunState::Running { .. }));
    app.kill(Signal::Kill);
    assert_eq!(app.wait().await.exit.code, 137);
    sandbox.remove();
}

#[tokio::test]
async fn wait_reports_oom_killed_for_a_guest_past_its_memory_limit() {
    let h = host();
    let sandbox = h.sandbox(SandboxConfig::new("default", "oom"));
    let mut cfg = h
        .container("hungry", "toolbox-p1.wasm", &["toolbox", "alloc", "64"])
        .await;
    cfg.memory_limit = Some(16 << 20);
    let hungry = sandbox.create_container(cfg).unwrap();
    hungry.start().unwrap();
    let exit = tokio::time::timeout(PATIENCE, hungry.wait()).await.unwrap();
    assert_eq!(exit.exit.reason, ExitReason::OomKilled, "{exit:?}");
    assert_eq!(exit.exit.code, 137);
    sandbox.remove();
}

#[tokio::test]
async fn removing_a_sandbox_frees_its_pod_ip_and_host_ports() {
    // A /30 has one address for pods.
    let h = host_with(|mut c| {
        c.pod_cidr = "10.77.0.0/30".into();
        c
    });
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut config = SandboxConfig::new("default", "first");
    config
        .publish
        .push(wasipod::net::PortMapping::parse(&format!("127.0.0.1:{port}:80")).unwrap());
    let first = h.sandbox(config);
    assert_eq!(first.ip().to_string(), "10.77.0.2");
    assert!(
        std::net::TcpListener::bind(("127.0.0.1", port)).is_err(),
        "the sandbox holds its host port"
    );
    let second = PodSandbox::run(&h.node, SandboxConfig::new("default", "second"));
    assert!(
        second
            .err()
            .is_some_and(|e| e.to_string().contains("no free address")),
        "the only pod IP is taken"
    );
    let dir = first.layout().dir().to_path_buf();
    first.remove();
    drop(first);
    eventually("the host port is free again", || {
        std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
    })
    .await;
    assert!(!dir.exists(), "the pod's folder is gone");
    let third = h.sandbox(SandboxConfig::new("default", "third"));
    assert_eq!(third.ip().to_string(), "10.77.0.2");
    third.remove();
}

#[tokio::test]
async fn standard_streams_go_to_the_files_given_and_host_folders_join_a_running_sandbox() {
    let h = host();
    let sandbox = h.sandbox(SandboxConfig::new("default", "stdio"));
    let dir = tempfile::tempdir().unwrap();
    let (stdin, stdout, stderr) = (
        dir.path().join("in"),
        dir.path().join("out"),
        dir.path().join("err"),
    );
    std::fs::write(&stdin, b"bytes on stdin\n").unwrap();
    std::fs::write(&stdout, b"").unwrap();
    std::fs::write(&stderr, b"").unwrap();
    // A host folder added after the sandbox was made (as a CRI container's
    // bind mount is), mounted read-only.
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("note"), b"from the host").unwrap();
    let volume = sandbox.add_host_volume(&data, "mounts[0]").unwrap();
    let mut config = h
        .container(
            "cat",
            "toolbox-p1.wasm",
            &["toolbox", "sh", "cat /data/note; eprint to stderr; cat-stdin; try-write /data/x; alloc 4; sleep 600000"],
        )
        .await;
    config.mounts.push(MountSpec {
        volume,
        mount_path: "/data".into(),
        read_only: true,
        sub_path: None,
        field: "mounts[0]".into(),
    });
    config.stdio = StdioPaths {
        stdin: Some(stdin.clone()),
        stdout: Some(stdout.clone()),
        stderr: Some(stderr.clone()),
    };
    let c = sandbox.create_container(config).unwrap();
    assert_eq!(c.memory_usage(), 0);
    c.start().unwrap();
    eventually("the guest to allocate", || {
        std::fs::read_to_string(&stdout).is_ok_and(|o| o.contains("allocated"))
    })
    .await;
    assert!(c.memory_usage() > 4 << 20, "{}", c.memory_usage());
    let out = std::fs::read_to_string(&stdout).unwrap();
    assert_eq!(
        out,
        "from the hostbytes on stdin\nwrite /data/x: error PermissionDenied\nallocated 4 MiB\n"
    );
    assert_eq!(
        std::fs::read_to_string(&stderr).unwrap(),
        "to stderr\nstdin: 15 bytes\n"
    );
    // Nothing went to the container's log.
    assert_eq!(log(&sandbox, "cat"), "");
    // An exec with streams of its own.
    let exec_out = dir.path().join("exec-out");
    std::fs::write(&exec_out, b"").unwrap();
    let exit = c
        .exec_stdio(
            vec![
                "toolbox".into(),
                "sh".into(),
                "echo from the exec; exit 6".into(),
            ],
            &StdioPaths {
                stdout: Some(exec_out.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(exit.code, 6);
    assert_eq!(
        std::fs::read_to_string(&exec_out).unwrap(),
        "from the exec\n"
    );
    // A file is not a folder: refused, naming the field.
    let err = sandbox
        .add_host_volume(&data.join("note"), "mounts[1]")
        .unwrap_err();
    assert!(err.to_string().contains("mounts[1]"), "{err}");
    c.kill(Signal::Kill);
    assert_eq!(c.wait().await.exit.code, 137);
    sandbox.remove();
}
