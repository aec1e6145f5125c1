//! Cold start, in-process: pods against a bare wasmtime baseline.
//!
//! - `pod_hello_p1` / `pod_hello_p2`: a one-container hello pod, from
//!   `create_pod` to Succeeded (deletion not timed, as in `wasipod bench`).
//! - `pod_three_containers`: the init + native sidecar + app pod of
//!   `sample-modules/pods/bench/three-containers.yaml`, from `create_pod` to
//!   every container started.
//! - `baseline_hello_p1` / `baseline_hello_p2`: the same hello guest
//!   instantiated and run to its end directly on the runtime's own wasmtime
//!   engine (same settings, same instance pool), with no pod machinery.
//!
//! Everything runs on one current-thread tokio runtime, as `wasipod bench`
//! drives pods (thread per core). Images are compiled beforehand: these
//! are warm-cache starts. `cargo bench --bench cold_start`

mod common;
use common::Guest;

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use wasipod::{PodPhase, PodSpec, Runtime, RuntimeConfig};
use wasmtime::{Linker, Module, Store, UpdateDeadline};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::bindings::CommandPre;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

fn hello(image: &str) -> PodSpec {
    PodSpec::from_yaml(
        &format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: hello}}\nspec:\n  restartPolicy: Never\n  containers:\n  - {{name: hello, image: {image}}}\n"),
        wasipod_samples::images_dir(),
    )
    .unwrap()
}

/// `iters` pods of `spec`, each timed from `create_pod` until `done` holds
/// for its status, then deleted (untimed).
fn pods(
    rt: &tokio::runtime::Runtime,
    runtime: &Runtime,
    spec: &PodSpec,
    n: &mut u64,
    iters: u64,
    done: fn(&wasipod::PodStatus) -> bool,
) -> Duration {
    rt.block_on(async {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            *n += 1;
            let spec = spec.renamed(&format!("{}-{n}", spec.name));
            let t = Instant::now();
            let pod = runtime.create_pod(spec).await.unwrap();
            let s = pod
                .watch()
                .wait_for(|s| done(s) || s.phase.is_terminal())
                .await
                .unwrap()
                .clone();
            total += t.elapsed();
            assert!(done(&s), "pod ended {:?}: {:?}", s.phase, s.reason);
            pod.delete(Some(Duration::ZERO)).await;
        }
        total
    })
}

fn cold_start(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let mut group = c.benchmark_group("cold_start");
    let mut n = 0u64;
    for (label, image) in [("p1", "hello-p1.wasm"), ("p2", "hello-p2.wasm")] {
        let spec = hello(image);
        group.bench_function(format!("pod_hello_{label}"), |b| {
            b.iter_custom(|iters| {
                pods(&rt, &runtime, &spec, &mut n, iters, |s| {
                    s.phase == PodPhase::Succeeded
                })
            })
        });
    }
    let three = PodSpec::from_file(wasipod_samples::pods_dir().join("bench/three-containers.yaml"))
        .unwrap();
    group.bench_function("pod_three_containers", |b| {
        b.iter_custom(|iters| {
            // Started, or already past it (a watch may skip a state).
            pods(&rt, &runtime, &three, &mut n, iters, |s| {
                s.init_container_statuses
                    .iter()
                    .chain(&s.container_statuses)
                    .all(|c| c.started == Some(true) || c.state.terminated().is_some())
            })
        })
    });

    // The baseline: the same engine, no pod.
    let engine = runtime.wasmtime_engine();
    let module = Module::from_file(&engine, wasipod_samples::HELLO_P1).unwrap();
    let mut linker: Linker<WasiP1Ctx> = Linker::new(&engine);
    wasmtime_wasi::p1::add_to_linker_async(&mut linker, |s| s).unwrap();
    let pre = linker.instantiate_pre(&module).unwrap();
    group.bench_function("baseline_hello_p1", |b| {
        b.iter(|| {
            rt.block_on(async {
                let ctx = WasiCtxBuilder::new()
                    .arg("hello")
                    .stdout(MemoryOutputPipe::new(4096))
                    .build_p1();
                let mut store = Store::new(&engine, ctx);
                store.set_epoch_deadline(1);
                store.epoch_deadline_callback(|_| Ok(UpdateDeadline::Yield(1)));
                let instance = pre.instantiate_async(&mut store).await.unwrap();
                let start = instance
                    .get_typed_func::<(), ()>(&mut store, "_start")
                    .unwrap();
                start.call_async(&mut store, ()).await.unwrap();
            })
        })
    });

    let component =
        wasmtime::component::Component::from_file(&engine, wasipod_samples::HELLO_P2).unwrap();
    let mut linker = wasmtime::component::Linker::<Guest>::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).unwrap();
    let pre = CommandPre::new(linker.instantiate_pre(&component).unwrap()).unwrap();
    group.bench_function("baseline_hello_p2", |b| {
        b.iter(|| {
            rt.block_on(async {
                let ctx = WasiCtxBuilder::new()
                    .arg("hello")
                    .stdout(MemoryOutputPipe::new(4096))
                    .build();
                let mut store = Store::new(&engine, Guest::new(ctx));
                store.set_epoch_deadline(1);
                store.epoch_deadline_callback(|_| Ok(UpdateDeadline::Yield(1)));
                let command = pre.instantiate_async(&mut store).await.unwrap();
                command
                    .wasi_cli_run()
                    .call_run(&mut store)
                    .await
                    .unwrap()
                    .unwrap();
            })
        })
    });
    group.finish();
}

criterion_group!(benches, cold_start);
criterion_main!(benches);
