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
