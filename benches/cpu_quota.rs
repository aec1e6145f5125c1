//! The CPU quota (`limits.cpu`) and weight (`requests.cpu`), measured as
//! progress: a CPU-bound guest (`toolbox work MS`) counts rounds of work
//! for a fixed wall time, on one runtime thread.
//!
//! - alone: each limit by itself on the thread, against an unlimited guest
//!   by itself (CFS's promise: `250m` makes a quarter of the progress);
//! - side by side: a limited and an unlimited guest sharing the thread;
//! - weights: two unlimited guests sharing the thread, one requesting
//!   `1` CPU.
//!
//! `cargo bench --bench cpu_quota` (prints a table; not a criterion bench:
//! what it measures is a ratio, not a time).

use wasipod::{PodPhase, PodSpec, Runtime, RuntimeConfig};

const MS: u64 = 2000;

/// Rounds of work of each container of one pod.
async fn rounds(runtime: &Runtime, name: &str, containers: &[(&str, &str)]) -> Vec<u64> {
    let list: String = containers
        .iter()
        .map(|(c, r)| {
            format!(
                "  - {{name: {c}, image: {}, args: [work, '{MS}'], resources: {r}}}\n",
                wasipod_samples::TOOLBOX_P1
            )
        })
        .collect();
    let yaml = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  restartPolicy: Never\n  containers:\n{list}"
    );
    let pod = runtime
        .create_pod(PodSpec::from_yaml(&yaml, ".").unwrap())
        .await
        .unwrap();
    let status = pod.wait().await;
    assert_eq!(status.phase, PodPhase::Succeeded);
    let out = containers
        .iter()
        .map(|(c, _)| {
            let log =
                String::from_utf8(pod.logs(&wasipod::LogOptions::container(c)).unwrap()).unwrap();
            log.trim()
                .trim_start_matches("work: ")
                .trim_end_matches(" rounds")
                .parse()
                .unwrap()
        })
        .collect();
    pod.delete(None).await;
    out
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
        // Warm the compile cache.
        rounds(&runtime, "warm", &[("c", "{}")]).await;
        let free = rounds(&runtime, "free", &[("c", "{}")]).await[0] as f64;
        println!("alone on one thread, {MS} ms each:");
        println!("  unlimited: {free} rounds");
        for limit in ["100m", "250m", "500m", "1"] {
            let r = rounds(&runtime, "limited", &[("c", &format!("{{limits: {{cpu: {limit}}}}}"))]).await[0] as f64;
            println!("  {limit:>5}: {r} rounds = {:.1} % of unlimited", 100.0 * r / free);
        }
        let pair = rounds(&runtime, "pair", &[("limited", "{limits: {cpu: 250m}}"), ("free", "{}")]).await;
        println!(
            "side by side: 250m {} rounds, unlimited {} rounds: {:.1} % of the unlimited one's progress, {:.1} % of the unlimited guest alone",
            pair[0],
            pair[1],
            100.0 * pair[0] as f64 / pair[1] as f64,
            100.0 * pair[0] as f64 / free
        );
        let w = rounds(&runtime, "weights", &[("heavy", "{requests: {cpu: '1'}}"), ("light", "{}")]).await;
        println!(
            "weights: requests.cpu 1 {} rounds, none {} rounds: {:.2}x",
            w[0],
            w[1],
            w[0] as f64 / w[1] as f64
        );
    });
}
