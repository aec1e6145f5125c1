//! The pod network against real sockets: the same `tcp-echo` guests
//! (wasip2 components on `std::net`) over wasipod's in-memory loopback, and
//! over the host's loopback through wasmtime-wasi's own `wasi:sockets`.
//!
//! - `stream_64mib`: one connection, 64 MiB sent and echoed back (128 MiB
//!   moved), checked byte for byte by the client.
//! - `pingpong_2000`: 2,000 request/response round trips of 32 bytes on one
//!   connection.
//!
//! Each iteration starts the server and the client afresh (a pod, or two
//! bare wasmtime stores); that start costs well under a millisecond.
//!
//! `cargo bench --bench network`

use std::net::SocketAddr;
use std::time::Duration;

mod common;
use common::Guest;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use wasipod::{PodPhase, PodSpec, Runtime, RuntimeConfig};
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, Store, UpdateDeadline};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p2::bindings::CommandPre;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

const MIB: u64 = 64;
const ROUND_TRIPS: u64 = 2000;

/// The same guests on real host sockets (wasmtime-wasi's implementation).
struct RealSockets {
    engine: Engine,
    pre: CommandPre<Guest>,
}

impl RealSockets {
    fn new() -> Self {
        let mut config = Config::new();
        config.epoch_interruption(true);
        let engine = Engine::new(&config).unwrap();
        let ticker = engine.weak();
        std::thread::spawn(move || {
            while let Some(e) = ticker.upgrade() {
                e.increment_epoch();
                drop(e);
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        let component = Component::from_file(&engine, wasipod_samples::TCP_ECHO_P2).unwrap();
        let mut linker = Linker::<Guest>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).unwrap();
        let pre = CommandPre::new(linker.instantiate_pre(&component).unwrap()).unwrap();
        Self { engine, pre }
    }

    async fn run(&self, args: &[String]) -> String {
        let out = MemoryOutputPipe::new(1 << 20);
        let ctx = WasiCtxBuilder::new()
            .args(args)
            .stdout(out.clone())
            .inherit_stderr()
            .allow_tcp(true)
            .socket_addr_check(|addr, _| {
                Box::pin(async move { addr.ip().is_loopback() || addr.ip().is_unspecified() })
            })
            .build();
        let mut store = Store::new(&self.engine, Guest::new(ctx));
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|_| Ok(UpdateDeadline::Yield(1)));
        let command = self.pre.instantiate_async(&mut store).await.unwrap();
        command
            .wasi_cli_run()
            .call_run(&mut store)
            .await
            .unwrap()
            .unwrap();
        String::from_utf8(out.contents().to_vec()).unwrap()
    }

    /// Server and client as two concurrent guests; returns the client's output.
    async fn pair(self: &std::sync::Arc<Self>, client: &[&str]) -> String {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port)).to_string();
        let me = self.clone();
        let server_args = vec![
            "tcp-echo".to_string(),
            "serve".into(),
            addr.clone(),
            "1".into(),
        ];
        let server = tokio::spawn(async move { me.run(&server_args).await });
        let mut args = vec!["tcp-echo".to_string(), client[0].to_string(), addr];
        args.extend(client[1..].iter().map(|a| a.to_string()));
        let out = self.run(&args).await;
        server.await.unwrap();
        out
    }
}

async fn pod(runtime: &Runtime, n: u64, client: &str) -> String {
    let spec = PodSpec::from_yaml(
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: net-{n}}}\nspec:\n  restartPolicy: Never\n  containers:\n  - {{name: server, image: tcp-echo-p2.wasm, args: [serve, '127.0.0.1:9000', '1']}}\n  - {{name: client, image: tcp-echo-p2.wasm, args: [{client}]}}\n"
        ),
        wasipod_samples::images_dir(),
    )
    .unwrap();
    let pod = runtime.create_pod(spec).await.unwrap();
    assert_eq!(pod.wait().await.phase, PodPhase::Succeeded);
    let out =
        String::from_utf8(pod.logs(&wasipod::LogOptions::container("client")).unwrap()).unwrap();
    pod.delete(None).await;
    out
}

fn network(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let real = std::sync::Arc::new(RealSockets::new());
    let mib = MIB.to_string();
    let trips = ROUND_TRIPS.to_string();

    let mut group = c.benchmark_group("network");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Bytes(2 * (MIB << 20)));
    let mut n = 0;
    group.bench_function("stream_64mib/virtual", |b| {
        b.iter(|| {
            n += 1;
            let out = rt.block_on(pod(
                &runtime,
                n,
                &format!("bulk, '127.0.0.1:9000', '{MIB}'"),
            ));
            assert!(out.starts_with("bulk ok"), "{out}");
        })
    });
    group.bench_function("stream_64mib/host_sockets", |b| {
        b.iter(|| {
            let out = rt.block_on(real.pair(&["bulk", &mib]));
            assert!(out.starts_with("bulk ok"), "{out}");
        })
    });
    group.throughput(Throughput::Elements(ROUND_TRIPS));
    group.bench_function("pingpong_2000/virtual", |b| {
        b.iter(|| {
            n += 1;
            let out = rt.block_on(pod(
                &runtime,
                n,
                &format!("pingpong, '127.0.0.1:9000', '{ROUND_TRIPS}'"),
            ));
            assert!(out.starts_with("pingpong ok"), "{out}");
        })
    });
    group.bench_function("pingpong_2000/host_sockets", |b| {
        b.iter(|| {
            let out = rt.block_on(real.pair(&["pingpong", &trips]));
            assert!(out.starts_with("pingpong ok"), "{out}");
        })
    });
    group.finish();
}

criterion_group!(benches, network);
criterion_main!(benches);
