//! Embedding wasipod in a host application.
//!
//! Run it with `cargo run -p wasipod --example embed`. It starts two pods in
//! one runtime: a job that completes, and a crash-looping service that the
//! host watches and then deletes.

use std::time::Duration;

use wasipod::{PodPhase, PodSpec, Runtime, RuntimeConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // One runtime: one wasmtime engine and compile cache for every pod. Here
    // Kubernetes durations run 100x faster so the back-off is quick to see.
    let runtime = Runtime::new(RuntimeConfig::default().time_scale(0.01))?;
    let images = wasipod_samples::images_dir();

    // A manifest from a string; image paths resolve against `images`.
    let job = PodSpec::from_yaml(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: job}
spec:
  restartPolicy: Never
  volumes: [{name: scratch, emptyDir: {}}]
  initContainers:
  - {name: prepare, image: toolbox-p1.wasm, args: [write, /s/input, "21"], volumeMounts: [{name: scratch, mountPath: /s}]}
  containers:
  - {name: work, image: toolbox-p2.wasm, args: [sh, "echo input is; cat /s/input"], volumeMounts: [{name: scratch, mountPath: /s}]}
"#,
        &images,
    )?;
    let service = PodSpec::from_yaml(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: service}\nspec:\n  containers:\n  - {name: crashy, image: toolbox-p1.wasm, args: [exit, '1']}\n",
        &images,
    )?;

    // prepare + subscribe + start: not a line of output is missed.
    let job = runtime.prepare_pod(job).await?;
    let mut lines = job.subscribe_logs();
    job.start();
    let service = runtime.create_pod(service).await?;

    tokio::spawn(async move {
        while let Ok(l) = lines.recv().await {
            println!("job/{}: {}", l.container, l.line);
        }
    });

    let status = job.wait().await;
    println!("job finished: {}", status.phase);
    assert_eq!(status.phase, PodPhase::Succeeded);

    // Watch the service until it has restarted twice.
    let mut watch = service.watch();
    let seen = watch
        .wait_for(|s| s.container("crashy").is_some_and(|c| c.restart_count >= 2))
        .await?
        .clone();
    let crashy = seen.container("crashy").unwrap();
    println!(
        "service: crashy restarted {} times, state {:?}",
        crashy.restart_count, crashy.state
    );
    for e in service.events().iter().filter(|e| e.reason == "BackOff") {
        println!("  event: {}", e.message);
    }

    let final_status = service.delete(Some(Duration::ZERO)).await;
    println!("service deleted: {}", final_status.phase);
    println!("{}", serde_json::to_string_pretty(&job.to_object().status)?);
    job.delete(None).await;
    Ok(())
}
