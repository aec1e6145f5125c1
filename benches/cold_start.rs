//! Cold start: a one-container hello pod, create → Succeeded → deleted,
//! against a bare wasmtime baseline (same engine settings, same guest, no
//! pod machinery). Images are compiled once beforehand in both cases, so
//! the figures are warm-cache starts.
//!
//! `cargo bench --bench cold_start`

mod common;
use common::Guest;

use criterion::{Criterion, criterion_group, criterion_main};
use wasipod::{PodPhase, PodSpec, Runtime, RuntimeConfig};
use wasmtime::{Config, Engine, Linker, Module, Store, UpdateDeadline};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::bindings::CommandPre;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

fn pods(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let mut group = c.benchmark_group("cold_start");
    for (label, image) in [("p1", "hello-p1.wasm"), ("p2", "hello-p2.wasm")] {
        let spec = PodSpec::from_yaml(
            &format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: hello}}\nspec:\n  restartPolicy: Never\n  containers:\n  - {{name: hello, image: {image}}}\n"),
            wasipod_samples::images_dir(),
        )
        .unwrap();
        let mut n = 0u64;
        group.bench_function(format!("pod_hello_{label}"), |b| {
            b.iter(|| {
                n += 1;
                let spec = spec.renamed(&format!("hello-{n}"));
                rt.block_on(async {
                    let pod = runtime.create_pod(spec).await.unwrap();
                    assert_eq!(pod.wait().await.phase, PodPhase::Succeeded);
                    pod.delete(None).await;
                })
            })
        });
    }

    let mut config = Config::new();
    config.epoch_interruption(true);
    let engine = Engine::new(&config).unwrap();
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

criterion_group!(benches, pods);
criterion_main!(benches);
