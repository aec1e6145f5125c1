//! The pod network: the virtual loopback shared by a pod's containers, pod
//! IPs between pods, and the walls (no host sockets, no outbound).

use std::time::Duration;

use wasipod::PodPhase;

use crate::support::{Fixture, eventually};

#[tokio::test]
async fn containers_talk_over_loopback_by_address_and_by_name() {
    let f = Fixture::new();
    let (w, status) = f
        .run(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: loop}\nspec:\n  restartPolicy: Never\n  containers:\n  - {name: v4, image: tcp-echo-p2.wasm, args: [serve, '127.0.0.1:8080', '2']}\n  - {name: v6, image: tcp-echo-p2.wasm, args: [serve, '[::1]:8081', '1']}\n  - {name: by-ip, image: tcp-echo-p2.wasm, args: [send, '127.0.0.1:8080', hello over 127.0.0.1]}\n  - {name: by-name, image: tcp-echo-p2.wasm, args: [send, 'localhost:8080', hello over localhost]}\n  - {name: by-v6, image: tcp-echo-p2.wasm, args: [send, '[::1]:8081', hello over ::1]}\n",
        )
        .await;
    assert_eq!(status.phase, PodPhase::Succeeded);
    assert_eq!(w.log("by-ip"), "hello over 127.0.0.1\n");
    assert_eq!(w.log("by-name"), "hello over localhost\n");
    assert_eq!(w.log("by-v6"), "hello over ::1\n");
    let v4 = w.log("v4");
    assert!(v4.starts_with("listening on 127.0.0.1:8080\n"), "{v4}");
    assert_eq!(
        v4.matches("echoed 20 bytes to 127.0.0.1:").count(),
        2,
        "{v4}"
    );
    assert!(
        w.log("v6").contains("echoed 14 bytes to [::1]:"),
        "{}",
        w.log("v6")
    );
}

#[tokio::test]
async fn socket_errors_are_the_ones_programs_expect() {
    let f = Fixture::new();
    let w = f
        .start(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: errors}\nspec:\n  restartPolicy: Never\n  containers:\n  - {name: holder, image: toolbox-p2.wasm, args: [sh, try-bind 0.0.0.0:9000 600000]}\n  - name: probe\n    image: toolbox-p2.wasm\n    args: [\"sh\", \"wait-port 127.0.0.1:9000; try-bind 127.0.0.1:9000; try-bind 0.0.0.0:9001; try-connect 127.0.0.1:9999; try-connect 10.88.255.254:80; try-connect 93.184.216.34:80; try-connect [2001:db8::1]:80; try-bind 8.8.8.8:80; resolve nowhere.example\"]\n  - {name: wasip1, image: toolbox-p1.wasm, args: [sh, try-bind 127.0.0.1:9002]}\n",
        )
        .await;
    w.until("probe done", |s| {
        s.container("probe")
            .and_then(|c| c.state.terminated())
            .is_some()
    })
    .await;
    w.until("wasip1 done", |s| {
        s.container("wasip1")
            .and_then(|c| c.state.terminated())
            .is_some()
    })
    .await;
    let log = w.log("probe");
    for line in [
        "bind 127.0.0.1:9000: error AddrInUse",
        "bind 0.0.0.0:9001: ok 9001",
        "connect 127.0.0.1:9999: error ConnectionRefused",
        "connect 10.88.255.254:80: error ConnectionRefused",
        "connect 93.184.216.34:80: error HostUnreachable",
        "connect [2001:db8::1]:80: error HostUnreachable",
        "bind 8.8.8.8:80: error AddrNotAvailable",
        "resolve nowhere.example: error",
    ] {
        assert!(log.contains(line), "missing {line:?} in:\n{log}");
    }
    assert!(
        w.log("wasip1")
            .contains("bind 127.0.0.1:9002: error Unsupported"),
        "{}",
        w.log("wasip1")
    );
    w.pod.delete(Some(Duration::ZERO)).await;
}

#[tokio::test]
async fn pods_reach_each_other_by_pod_ip_and_hostname_but_loopback_is_private() {
    let f = Fixture::new();
    // Two pods listen on the same port: loopback is per pod.
    let server = f
        .start("apiVersion: v1\nkind: Pod\nmetadata: {name: server}\nspec:\n  hostname: backend\n  containers:\n  - {name: echo, image: tcp-echo-p2.wasm, args: [serve, '0.0.0.0:8080']}\n")
        .await;
    let twin = f
        .start("apiVersion: v1\nkind: Pod\nmetadata: {name: twin}\nspec:\n  containers:\n  - {name: echo, image: tcp-echo-p2.wasm, args: [serve, '0.0.0.0:8080']}\n")
        .await;
    let ip = server.pod.status().pod_ip.expect("a pod IP");
    let twin_ip = twin.pod.status().pod_ip.unwrap();
    assert!(ip.starts_with("10.88.") && ip != twin_ip, "{ip} {twin_ip}");
    server
        .until("listening", |s| {
            s.container("echo").is_some_and(|c| c.state.is_running())
        })
        .await;
    let client = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: client}}\nspec:\n  restartPolicy: Never\n  containers:\n  - {{name: by-ip, image: tcp-echo-p2.wasm, args: [send, '{ip}:8080', to the server]}}\n  - {{name: by-host, image: tcp-echo-p2.wasm, args: [send, 'backend:8080', by hostname]}}\n  - name: env\n    image: toolbox-p2.wasm\n    args: [sh, env; resolve backend; resolve client; try-connect 127.0.0.1:8080]\n    env: [{{name: MY_IP, valueFrom: {{fieldRef: {{fieldPath: status.podIP}}}}}}, {{name: URL, value: 'http://$(MY_IP):80/'}}]\n"
    );
    let (c, status) = f.run(&client).await;
    assert_eq!(status.phase, PodPhase::Succeeded, "{status:#?}");
    assert_eq!(c.log("by-ip"), "to the server\n");
    assert_eq!(c.log("by-host"), "by hostname\n");
    let client_ip = status.pod_ip.clone().unwrap();
    let env = c.log("env");
    assert!(env.contains(&format!("MY_IP={client_ip}\n")), "{env}");
    assert!(
        env.contains(&format!("URL=http://{client_ip}:80/\n")),
        "{env}"
    );
    assert!(env.contains(&format!("resolve backend: {ip}\n")), "{env}");
    assert!(
        env.contains(&format!("resolve client: {client_ip}\n")),
        "{env}"
    );
    assert!(
        env.contains("connect 127.0.0.1:8080: error ConnectionRefused"),
        "the client pod's loopback is its own: {env}"
    );
    let served = server.log("echo");
    assert!(
        served.contains(&format!("echoed 13 bytes to {client_ip}:")),
        "{served}"
    );
    assert!(!twin.log("echo").contains("echoed"), "{}", twin.log("echo"));
    server.pod.delete(Some(Duration::ZERO)).await;
    twin.pod.delete(Some(Duration::ZERO)).await;
}

#[tokio::test]
async fn no_host_socket_is_opened() {
    // The test holds a real port on the host's loopback; a guest binds the
    // same port in its pod and serves a client there without conflict.
    let host = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = host.local_addr().unwrap().port();
    let f = Fixture::new();
    let (w, status) = f
        .run(&format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: isolated}}\nspec:\n  restartPolicy: Never\n  containers:\n  - {{name: server, image: tcp-echo-p2.wasm, args: [serve, '127.0.0.1:{port}', '1']}}\n  - {{name: client, image: tcp-echo-p2.wasm, args: [send, '127.0.0.1:{port}', inside the pod]}}\n"
        ))
        .await;
    assert_eq!(status.phase, PodPhase::Succeeded);
    assert_eq!(w.log("client"), "inside the pod\n");
    host.set_nonblocking(true).unwrap();
    assert!(
        host.accept().is_err(),
        "nothing reached the host's listener"
    );
}

#[tokio::test]
async fn deleting_a_pod_closes_its_connections() {
    let f = Fixture::new();
    let server = f
        .start("apiVersion: v1\nkind: Pod\nmetadata: {name: holder}\nspec:\n  containers:\n  - {name: echo, image: tcp-echo-p2.wasm, args: [serve, '0.0.0.0:7000']}\n  - {name: backlog, image: toolbox-p2.wasm, args: [try-bind, '0.0.0.0:7001', '600000']}\n")
        .await;
    let ip = server.pod.status().pod_ip.unwrap();
    // Readers of an accepted connection (the server waits for bytes that
    // never come) and of one still in the accept queue: each ends only if
    // its peer goes away.
    let client = f
        .start(&format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: waiter}}\nspec:\n  restartPolicy: Never\n  containers:\n  - {{name: accepted, image: toolbox-p2.wasm, args: [sh, wait-port {ip}:7000; read-eof {ip}:7000]}}\n  - {{name: queued, image: toolbox-p2.wasm, args: [sh, wait-port {ip}:7001; read-eof {ip}:7001]}}\n"
        ))
        .await;
    for c in ["accepted", "queued"] {
        eventually("connected", || client.log(c).contains("connected to")).await;
    }
    let status = server.pod.delete(Some(Duration::ZERO)).await;
    assert_eq!(status.phase, PodPhase::Failed);
    let status = client.wait().await;
    assert_eq!(status.phase, PodPhase::Succeeded);
    assert!(
        client.log("accepted").ends_with("eof after 0 bytes\n"),
        "{}",
        client.log("accepted")
    );
    assert!(
        client.log("queued").ends_with("eof after 0 bytes\n"),
        "{}",
        client.log("queued")
    );
    // Nobody listens at the old address any more.
    let (after, _) = f
        .run(&format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: after}}\nspec:\n  restartPolicy: Never\n  containers:\n  - {{name: c, image: toolbox-p2.wasm, args: [try-connect, '{ip}:7000']}}\n"
        ))
        .await;
    assert_eq!(
        after.log("c"),
        format!("connect {ip}:7000: error ConnectionRefused\n")
    );
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn published_ports_forward_host_connections_into_the_pod() {
    let f = Fixture::new();
    let port = free_port();
    let w = f
        .start(&format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: web}}\nspec:\n  containers:\n  - name: echo\n    image: tcp-echo-p2.wasm\n    args: [serve, '0.0.0.0:80']\n    ports: [{{containerPort: 80, hostPort: {port}, hostIP: 127.0.0.1}}]\n"
        ))
        .await;
    assert!(
        w.pod.events().iter().any(|e| e.reason == "Published"
            && e.message.contains(&format!("127.0.0.1:{port} to port 80")))
    );
    eventually("the server listens", || w.log("echo").contains("listening")).await;
    // A real client on the host: bytes both ways, then half-close.
    let reply = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(b"through the published port").unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut reply = String::new();
        s.read_to_string(&mut reply).unwrap();
        reply
    })
    .await
    .unwrap();
    assert_eq!(reply, "through the published port");
    let gateway = "10.88.0.1";
    eventually("served", || {
        w.log("echo")
            .contains(&format!("echoed 26 bytes to {gateway}:"))
    })
    .await;
    // A second pod cannot take the same host port.
    let err = f
        .runtime
        .create_pod(f.spec(&format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: web2}}\nspec:\n  containers:\n  - {{name: echo, image: tcp-echo-p2.wasm, ports: [{{containerPort: 80, hostPort: {port}, hostIP: 127.0.0.1}}]}}\n"
        )))
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.starts_with(&format!(
            "spec.containers[0].ports[0].hostPort: cannot listen on 127.0.0.1:{port}: "
        )),
        "{err}"
    );
    w.pod.delete(Some(Duration::ZERO)).await;
    // The host listener is closed with the pod.
    eventually("the host port is free", || {
        std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
    })
    .await;
}

#[tokio::test]
async fn outbound_access_is_off_unless_the_pod_asks_for_it() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = host.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (mut s, _) = host.accept().await.unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).await.unwrap();
        s.write_all(b"host heard: ").await.unwrap();
        s.write_all(&got).await.unwrap();
    });
    let f = Fixture::new();
    let probe = format!(
        "  - {{name: c, image: toolbox-p2.wasm, args: [sh, resolve host.wasipod.internal; try-connect host.wasipod.internal:{port}; try-connect 10.88.0.1:{port}]}}\n"
    );
    let send = format!(
        "  - {{name: send, image: tcp-echo-p2.wasm, args: [send, 'host.wasipod.internal:{port}', ping from the pod]}}\n"
    );
    let pod = |name: &str, annotation: &str, containers: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n{annotation}spec:\n  restartPolicy: Never\n  containers:\n{containers}"
        )
    };
    let (closed, _) = f.run(&pod("closed", "", &probe)).await;
    let log = closed.log("c");
    assert!(
        log.contains("resolve host.wasipod.internal: 10.88.0.1"),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "connect host.wasipod.internal:{port}: error ConnectionRefused"
        )),
        "{log}"
    );

    let annotation = format!("  annotations:\n    wasipod.io/outbound: \"host:{port}\"\n");
    let (open, _) = f.run(&pod("open", &annotation, &send)).await;
    assert_eq!(open.log("send"), "host heard: ping from the pod\n");
    tokio::time::timeout(crate::support::PATIENCE, server)
        .await
        .unwrap()
        .unwrap();

    let bad = f.spec(&pod("x", &annotation, &send));
    assert_eq!(bad.outbound.len(), 1);
    let err = wasipod::PodSpec::from_yaml(
        &pod(
            "bad",
            "  annotations:\n    wasipod.io/outbound: \"nowhere\"\n",
            &send,
        ),
        crate::support::images(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("metadata.annotations[wasipod.io/outbound]: Invalid value: \"nowhere\""),
        "{err}"
    );
}

#[tokio::test]
async fn a_thousand_concurrent_connections_and_a_hundred_mib_arrive_intact() {
    let f = Fixture::new();
    let (w, status) = f
        .run(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: load}\nspec:\n  restartPolicy: Never\n  containers:\n  - {name: fan-in, image: tcp-echo-p2.wasm, args: [fan-in, '127.0.0.1:5000', '1000']}\n  - {name: fan-out, image: tcp-echo-p2.wasm, args: [fan-out, '127.0.0.1:5000', '1000']}\n  - {name: bulk-server, image: tcp-echo-p2.wasm, args: [serve, '127.0.0.1:6000', '1']}\n  - {name: bulk, image: tcp-echo-p2.wasm, args: [bulk, '127.0.0.1:6000', '100']}\n",
        )
        .await;
    assert_eq!(status.phase, PodPhase::Succeeded, "{status:#?}");
    assert!(
        w.log("fan-in").contains("holding 1000 connections"),
        "{}",
        w.log("fan-in")
    );
    assert_eq!(w.log("fan-out"), "fan-out ok 1000\n");
    assert_eq!(w.log("bulk"), format!("bulk ok {} bytes\n", 100u64 << 20));
    assert!(
        w.log("bulk-server")
            .contains(&format!("echoed {} bytes", 100u64 << 20))
    );
}

#[tokio::test]
async fn a_pod_cannot_open_more_sockets_than_its_limit() {
    let f = Fixture::with(|mut c| {
        c.net_limits.max_sockets = 50;
        c
    });
    let w = f
        .start("apiVersion: v1\nkind: Pod\nmetadata: {name: greedy}\nspec:\n  restartPolicy: Never\n  containers:\n  - {name: fan-in, image: tcp-echo-p2.wasm, args: [fan-in, '127.0.0.1:5000', '100']}\n  - {name: fan-out, image: tcp-echo-p2.wasm, args: [fan-out, '127.0.0.1:5000', '100']}\n")
        .await;
    let s = w
        .until("the client gave up", |s| {
            s.container("fan-out")
                .and_then(|c| c.state.terminated())
                .is_some()
        })
        .await;
    assert_eq!(
        s.container("fan-out")
            .unwrap()
            .state
            .terminated()
            .unwrap()
            .exit_code,
        1
    );
    // The server's accepts and the client's connects draw on the same
    // budget: whichever asks first past it gets the EMFILE-like error.
    let logs = format!("{}\n{}", w.log("fan-out"), w.log("fan-in"));
    assert!(
        logs.contains("No file descriptors available"),
        "the limit reaches a guest as EMFILE-like error: {logs}"
    );
    w.pod.delete(Some(Duration::ZERO)).await;
}

pub fn http(port: u16, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let status = raw.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, raw.split_once("\r\n\r\n").unwrap().1.to_string())
}

#[tokio::test]
async fn an_http_server_in_a_pod_serves_its_sidecar_and_the_host() {
    let f = Fixture::new();
    let port = free_port();
    let w = f
        .start(&format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: web}}\nspec:\n  containers:\n  - {{name: server, image: http-server-p2.wasm, args: ['0.0.0.0:8080'], ports: [{{containerPort: 8080, hostPort: {port}, hostIP: 127.0.0.1}}]}}\n  - {{name: poller, image: http-get-p2.wasm, args: ['localhost:8080', /healthz, '1', '3']}}\n"
        ))
        .await;
    eventually("the poller polled", || w.log("poller").lines().count() == 3).await;
    assert!(
        w.log("poller")
            .lines()
            .all(|l| l == "GET /healthz -> 200 ok"),
        "{}",
        w.log("poller")
    );
    let (hello, health, fail, failing, missing) = tokio::task::spawn_blocking(move || {
        (
            http(port, "/"),
            http(port, "/healthz"),
            http(port, "/admin/fail"),
            http(port, "/healthz"),
            http(port, "/nope"),
        )
    })
    .await
    .unwrap();
    assert_eq!(hello, (200, "hello from wasipod web\n".to_string()));
    assert_eq!(health.0, 200);
    assert_eq!(fail.0, 200);
    assert_eq!(failing, (500, "failing\n".to_string()));
    assert_eq!(missing.0, 404);
    let log = w.log("server");
    assert!(log.contains("GET /healthz 500"), "{log}");
    w.pod.delete(Some(Duration::ZERO)).await;
}
