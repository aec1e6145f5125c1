//! A pod through the CRI, as the kubelet drives containerd: a sandbox with
//! the `wasipod` runtime handler (host network: no CNI plugin is
//! installed), containers that share its loopback and a volume, ExecSync,
//! the reasons the kubelet shows, StopContainer's grace period, a listener
//! the kubelet's probes reach, and a removal that leaves nothing behind.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use super::cri::{self, ContainerConfig, Cri, PodSandboxConfig};
use super::{Containerd, IMAGE, LogOnFailure, containerd};
use crate::support::PATIENCE;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn sandbox_config(c: &Containerd, name: &str) -> PodSandboxConfig {
    let logs = c.root().join("logs").join(name);
    std::fs::create_dir_all(&logs).unwrap();
    PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: name.into(),
            uid: "4c9c3f1e-2f7a-4e0b-9a51-0c5d7d3b1a10".into(),
            namespace: "default".into(),
            attempt: 0,
        }),
        hostname: name.into(),
        log_directory: logs.display().to_string(),
        labels: Default::default(),
        linux: Some(cri::LinuxPodSandboxConfig {
            security_context: Some(cri::LinuxSandboxSecurityContext {
                namespace_options: Some(cri::NamespaceOption {
                    network: cri::NODE,
                    pid: 0,
                    ipc: 0,
                }),
            }),
        }),
    }
}

fn container(name: &str, argv: &[&str]) -> ContainerConfig {
    ContainerConfig {
        metadata: Some(cri::ContainerMetadata {
            name: name.into(),
            attempt: 0,
        }),
        image: Some(cri::ImageSpec {
            image: IMAGE.into(),
        }),
        command: argv.iter().map(|s| s.to_string()).collect(),
        args: Vec::new(),
        envs: vec![cri::KeyValue {
            key: "GREETING".into(),
            value: "hello".into(),
        }],
        mounts: Vec::new(),
        log_path: format!("{name}.log"),
        linux: Some(cri::LinuxContainerConfig {
            resources: None,
            security_context: Some(cri::LinuxContainerSecurityContext {
                namespace_options: Some(cri::NamespaceOption {
                    network: cri::NODE,
                    pid: 0,
                    ipc: 0,
                }),
            }),
        }),
    }
}

struct Pod<'a> {
    cri: Cri,
    c: &'a Containerd,
    id: String,
    config: PodSandboxConfig,
}

impl Pod<'_> {
    async fn run(&self, config: ContainerConfig) -> String {
        let name = config.metadata.as_ref().unwrap().name.clone();
        let id = self
            .cri
            .create_container(&self.id, config, &self.config)
            .await
            .unwrap_or_else(|e| panic!("CreateContainer {name}: {e}"));
        self.cri
            .start_container(&id)
            .await
            .unwrap_or_else(|e| panic!("StartContainer {name}: {e}"));
        id
    }

    async fn exited(&self, id: &str) -> cri::ContainerStatus {
        let started = Instant::now();
        loop {
            let s = self
                .cri
                .container_status(id)
                .await
                .expect("ContainerStatus");
            if s.state == cri::EXITED {
                return s;
            }
            assert!(
                started.elapsed() < PATIENCE,
                "container never exited: {s:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The messages of a container's CRI log file (containerd writes it
    /// from the guest's stdout and stderr FIFOs).
    fn log(&self, name: &str) -> String {
        let path = std::path::Path::new(&self.config.log_directory).join(format!("{name}.log"));
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.splitn(4, ' ').nth(3))
            .map(|m| format!("{m}\n"))
            .collect()
    }

    async fn log_eventually(&self, name: &str, want: &str) {
        let started = Instant::now();
        while !self.log(name).contains(want) {
            assert!(
                started.elapsed() < PATIENCE,
                "{want:?} never in {name}'s log:\n{}",
                self.log(name)
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let _ = self.c;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cri_runs_a_pod_of_wasm_containers_as_the_kubelet_drives_it() {
    let c = containerd();
    let _log = LogOnFailure(&c);
    let cri = Cri::connect(&c.socket()).await.expect("CRI socket");
    let config = sandbox_config(&c, "web");
    let id = cri
        .run_pod_sandbox(config.clone())
        .await
        .unwrap_or_else(|e| panic!("RunPodSandbox: {e}\n{}", c.log_tail()));
    let pod = Pod {
        cri: cri.clone(),
        c: &c,
        id: id.clone(),
        config,
    };
    let shared = c.root().join("shared-web");
    std::fs::create_dir_all(&shared).unwrap();
    let with_shared = |mut cfg: ContainerConfig| {
        cfg.mounts.push(cri::Mount {
            container_path: "/shared".into(),
            host_path: shared.display().to_string(),
            readonly: false,
        });
        cfg
    };

    // Two containers talk over the pod's localhost (in memory) and pass a
    // file through a volume.
    let port = free_port().to_string();
    let at = format!("127.0.0.1:{port}");
    let echo = pod
        .run(container("echo", &["/tcp-echo-p2.wasm", "serve", &at, "1"]))
        .await;
    let client = pod
        .run(with_shared(container(
            "client",
            &["/tcp-echo-p2.wasm", "send", &at, "hello-over-localhost"],
        )))
        .await;
    let s = pod.exited(&client).await;
    assert_eq!((s.exit_code, s.reason.as_str()), (0, "Completed"), "{s:?}");
    pod.log_eventually("client", "hello-over-localhost").await;
    assert_eq!(pod.exited(&echo).await.exit_code, 0);

    let writer = pod
        .run(with_shared(container(
            "writer",
            &[
                "/toolbox-p1.wasm",
                "sh",
                "write /shared/note passed-through-the-volume; env",
            ],
        )))
        .await;
    assert_eq!(pod.exited(&writer).await.reason, "Completed");
    pod.log_eventually("writer", "GREETING=hello").await;
    assert_eq!(
        std::fs::read_to_string(shared.join("note")).unwrap(),
        "passed-through-the-volume"
    );
    let reader = pod
        .run(with_shared(container(
            "reader",
            &[
                "/toolbox-p1.wasm",
                "sh",
                "cat /shared/note; echo; sleep 3600000",
            ],
        )))
        .await;
    pod.log_eventually("reader", "passed-through-the-volume")
        .await;

    // ExecSync: the container's program once more, with the exec's argv.
    let r = cri
        .exec_sync(
            &reader,
            &[
                "/toolbox-p1.wasm",
                "sh",
                "cat /shared/note; eprint oops; exit 5",
            ],
            0,
        )
        .await
        .expect("ExecSync");
    assert_eq!(r.exit_code, 5);
    assert_eq!(
        String::from_utf8_lossy(&r.stdout),
        "passed-through-the-volume"
    );
    assert_eq!(String::from_utf8_lossy(&r.stderr), "oops\n");
    // Its timeout ends the exec's guest.
    let started = Instant::now();
    let r = cri
        .exec_sync(&reader, &["/toolbox-p1.wasm", "sleep", "600000"], 1)
        .await;
    assert!(r.is_err(), "a 600 s exec with a 1 s timeout returned {r:?}");
    assert!(started.elapsed() < Duration::from_secs(300));

    // The reasons and codes the kubelet shows.
    // The kubelet reads the termination message from the host file it
    // mounts at /dev/termination-log.
    let message = c.root().join("termination-web-failed");
    std::fs::write(&message, b"").unwrap();
    let mut failed = container(
        "failed",
        &[
            "/toolbox-p1.wasm",
            "sh",
            "write /dev/termination-log gave-up; exit 1",
        ],
    );
    failed.mounts.push(cri::Mount {
        container_path: "/dev/termination-log".into(),
        host_path: message.display().to_string(),
        readonly: false,
    });
    let failed = pod.run(failed).await;
    let s = pod.exited(&failed).await;
    assert_eq!((s.exit_code, s.reason.as_str()), (1, "Error"), "{s:?}");
    assert_eq!(std::fs::read_to_string(&message).unwrap(), "gave-up");
    let mut oom = container("oom", &["/toolbox-p1.wasm", "alloc", "64"]);
    oom.linux.as_mut().unwrap().resources = Some(cri::LinuxContainerResources {
        memory_limit_in_bytes: 20_000_000,
    });
    let oom = pod.run(oom).await;
    let s = pod.exited(&oom).await;
    assert_eq!(
        (s.exit_code, s.reason.as_str()),
        (137, "OOMKilled"),
        "{s:?}"
    );

    // StopContainer: SIGTERM, the timeout, then SIGKILL for a guest that
    // declared a handler but never exits.
    let stubborn = pod
        .run(container(
            "stubborn",
            &["/toolbox-p1.wasm", "sh", "handle-sigterm; sleep 3600000"],
        ))
        .await;
    let started = Instant::now();
    cri.stop_container(&stubborn, 1)
        .await
        .expect("StopContainer");
    let waited = started.elapsed();
    let s = pod.exited(&stubborn).await;
    assert_eq!(s.exit_code, 137, "{s:?}");
    assert!(
        waited >= Duration::from_secs(1),
        "SIGKILL came before the timeout: {waited:?}"
    );
    assert!(waited < Duration::from_secs(1) + PATIENCE / 4, "{waited:?}");
    // A guest with a handler drains and exits 0 on StopContainer.
    let graceful = pod
        .run(container(
            "graceful",
            &[
                "/toolbox-p1.wasm",
                "sh",
                "handle-sigterm; wait-sigterm 20 0",
            ],
        ))
        .await;
    cri.stop_container(&graceful, 30)
        .await
        .expect("StopContainer");
    let s = pod.exited(&graceful).await;
    assert_eq!((s.exit_code, s.reason.as_str()), (0, "Completed"), "{s:?}");

    // A guest's listener, reached from the node as the kubelet's probes
    // reach a host-network pod: at the host's loopback.
    let port = free_port();
    let server_at = format!("0.0.0.0:{port}");
    let _server = pod
        .run(container(
            "server",
            &["/tcp-echo-p2.wasm", "serve", &server_at],
        ))
        .await;
    pod.log_eventually("server", "listening on").await;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.write_all(b"probe-bytes").unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let mut back = String::new();
    stream
        .set_read_timeout(Some(PATIENCE))
        .and_then(|()| stream.read_to_string(&mut back).map(|_| ()))
        .unwrap();
    assert_eq!(back, "probe-bytes");

    // Start latency through the shim, as the kubelet sees it: CreateContainer
    // and StartContainer of a container in a running pod (printed, not
    // asserted: speed is the benchmarks' business).
    let (mut create, mut start) = (Vec::new(), Vec::new());
    for i in 0..30 {
        let t0 = Instant::now();
        let id = cri
            .create_container(
                &pod.id,
                container(&format!("hello-{i}"), &["/hello-p1.wasm"]),
                &pod.config,
            )
            .await
            .expect("CreateContainer");
        let t1 = Instant::now();
        cri.start_container(&id).await.expect("StartContainer");
        create.push(t1 - t0);
        start.push(t1.elapsed());
        pod.exited(&id).await;
    }
    let p50 = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    eprintln!(
        "CRI through the shim, 30 containers: CreateContainer p50 {:?}, StartContainer p50 {:?}",
        p50(&mut create),
        p50(&mut start)
    );

    // The shims compiled into the node's one cache folder.
    let cached = std::fs::read_dir(c.root().join("cache"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert!(cached > 0, "nothing in the shared compile cache");

    // Removal leaves no shim process, state folder or mount behind (the
    // running containers' root file systems are mounted until then, and
    // one shim process serves the whole pod).
    assert!(
        c.mounts().iter().any(|m| m.contains("/k8s.io/")),
        "{:?}",
        c.mounts()
    );
    let serving: Vec<(u32, String)> = c
        .shims()
        .into_iter()
        .filter(|(_, cmd)| cmd.contains(&id))
        .collect();
    assert_eq!(serving.len(), 1, "{serving:?}");
    cri.stop_pod_sandbox(&id).await.expect("StopPodSandbox");
    cri.remove_pod_sandbox(&id).await.expect("RemovePodSandbox");
    let started = Instant::now();
    let ours = || -> Vec<(u32, String)> {
        c.shims()
            .into_iter()
            .filter(|(_, cmd)| cmd.contains(&id))
            .collect()
    };
    while !ours().is_empty() {
        assert!(
            started.elapsed() < PATIENCE,
            "the pod's shim still runs after RemovePodSandbox: {:?}",
            ours()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // (The CRI's bundles are in the `k8s.io` namespace: no `ctr` test's.)
    let mounts: Vec<String> = c
        .mounts()
        .into_iter()
        .filter(|m| m.contains("/k8s.io/"))
        .collect();
    assert_eq!(mounts, Vec::<String>::new());
    let state = c.root().join("shim/k8s.io").join(&id);
    assert!(!state.exists(), "{} left behind", state.display());
    let bundle = c
        .root()
        .join("state/io.containerd.runtime.v2.task/k8s.io")
        .join(&id);
    assert!(!bundle.exists(), "{} left behind", bundle.display());
}
