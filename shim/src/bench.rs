//! `wasipod bench`: cold-start figures for a manifest on this machine.
//!
//! Creates `count` pods from the manifest (unique names), `concurrency` at a
//! time, after `warmup` unmeasured ones, and measures for each pod, from
//! the moment `create_pod` is called:
//! - `created`: the call returned (images looked up, sandbox ready to start),
//! - `started`: every container has started (its `Started` event),
//! - `ready`: the pod is Ready (pods with readiness probes),
//! - `succeeded`: the pod reached Succeeded (pods that end by themselves),
//! - `deleted`: how long `delete` took.
//!
//! Compilation is reported on its own: the first pod's images are loaded
//! (compiled, or read from the disk cache) before any measurement.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Serialize;
use wasipod::status::ConditionType;
use wasipod::{PodPhase, PodSpec, RestartPolicy, Runtime, RuntimeConfig};

pub struct BenchArgs {
    pub manifest: PathBuf,
    pub count: usize,
    pub concurrency: usize,
    pub warmup: usize,
    pub cache_dir: Option<PathBuf>,
    /// Keep every pod running until all have started, then report the
    /// resident memory per pod, then delete them all.
    pub hold: bool,
    /// Use on-demand instance allocation instead of the pooling allocator.
    pub no_pool: bool,
}

/// Percentiles of one measure, in microseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub count: usize,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
    pub mean_us: f64,
}

impl Summary {
    fn of(mut samples: Vec<Duration>) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        samples.sort();
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        let at = |p: f64| {
            us(samples[((p * samples.len() as f64).ceil() as usize).clamp(1, samples.len()) - 1])
        };
        Some(Summary {
            count: samples.len(),
            p50_us: at(0.50),
            p90_us: at(0.90),
            p99_us: at(0.99),
            max_us: us(*samples.last().unwrap()),
            mean_us: samples.iter().map(|d| us(*d)).sum::<f64>() / samples.len() as f64,
        })
    }
}

#[derive(Debug, Serialize)]
pub struct Compile {
    /// Images compiled by Cranelift for the first pod.
    pub compiled: u64,
    /// Images read from the disk cache for the first pod.
    pub disk_hits: u64,
    /// How long loading the first pod's images took.
    pub first_load_ms: f64,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub manifest: String,
    pub pods: usize,
    pub concurrency: usize,
    pub warmup: usize,
    pub wall_seconds: f64,
    pub pods_per_second: f64,
    pub peak_rss_bytes: Option<u64>,
    pub compile: Compile,
    /// With --hold: resident memory added per running pod.
    pub bytes_per_pod: Option<f64>,
    /// Instance slots of the pooling allocator (absent: on-demand).
    pub pool_slots: Option<u32>,
    pub created: Option<Summary>,
    pub started: Option<Summary>,
    pub ready: Option<Summary>,
    pub succeeded: Option<Summary>,
    pub deleted: Option<Summary>,
}

#[derive(Default)]
struct Sample {
    created: Option<Duration>,
    started: Option<Duration>,
    ready: Option<Duration>,
    succeeded: Option<Duration>,
    deleted: Option<Duration>,
}

pub async fn bench(args: BenchArgs) -> Result<Report> {
    if args.count == 0 || args.concurrency == 0 {
        bail!("--count and --concurrency must be at least 1");
    }
    let spec = PodSpec::from_file(&args.manifest)?;
    // The pooling allocator, with a slot for every guest that can run at
    // once (each container, plus one for a probe or hook).
    let per_pod = (spec.init_containers.len() + spec.containers.len()) as u32 + 1;
    let in_flight = if args.hold {
        args.count
    } else {
        args.concurrency
    } as u32;
    let largest = spec
        .init_containers
        .iter()
        .chain(&spec.containers)
        .filter_map(|c| c.memory_limit)
        .max();
    let pool = (!args.no_pool).then(|| wasipod::PoolConfig {
        slots: in_flight.saturating_mul(per_pod).saturating_add(16).max(64),
        max_memory: largest.unwrap_or(0).max(128 << 20),
    });
    let config = RuntimeConfig {
        cache_dir: args
            .cache_dir
            .clone()
            .or_else(RuntimeConfig::default_cache_dir),
        pool,
        ..RuntimeConfig::default()
    };
    // Bench pods keep nothing: a temporary state folder, removed at the end.
    let runtime = Runtime::new(config)?;
    let spec = Arc::new(spec);

    // Compilation, reported apart.
    let before = runtime.cache_stats();
    let t = Instant::now();
    one(&runtime, &spec, "compile", 0)
        .await
        .context("the first pod")?;
    let first_load = t.elapsed();
    let after = runtime.cache_stats();
    let compile = Compile {
        compiled: after.compiled - before.compiled,
        disk_hits: after.disk_hits - before.disk_hits,
        first_load_ms: first_load.as_secs_f64() * 1e3,
    };

    for i in 0..args.warmup {
        one(&runtime, &spec, "warmup", i).await?;
    }

    if args.hold {
        return hold(&args, &runtime, &spec, compile).await;
    }
    let semaphore = Arc::new(tokio::sync::Semaphore::new(args.concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    let start = Instant::now();
    for i in 0..args.count {
        let permit = semaphore.clone().acquire_owned().await?;
        let (runtime, spec) = (runtime.clone(), spec.clone());
        tasks.spawn(async move {
            let sample = one(&runtime, &spec, "bench", i).await;
            drop(permit);
            sample
        });
    }
    let mut samples = Vec::with_capacity(args.count);
    while let Some(s) = tasks.join_next().await {
        samples.push(s??);
    }
    let wall = start.elapsed();
    let pick =
        |f: fn(&Sample) -> Option<Duration>| Summary::of(samples.iter().filter_map(f).collect());
    Ok(Report {
        manifest: args.manifest.display().to_string(),
        pods: args.count,
        concurrency: args.concurrency,
        warmup: args.warmup,
        wall_seconds: wall.as_secs_f64(),
        pods_per_second: args.count as f64 / wall.as_secs_f64(),
        peak_rss_bytes: peak_rss(),
        compile,
        bytes_per_pod: None,
        pool_slots: runtime.config().pool.map(|p| p.slots),
        created: pick(|s| s.created),
        started: pick(|s| s.started),
        ready: pick(|s| s.ready),
        succeeded: pick(|s| s.succeeded),
        deleted: pick(|s| s.deleted),
    })
}

/// One pod, created, followed to its end (or to Ready for pods that run on),
/// and deleted.
async fn one(runtime: &Runtime, spec: &PodSpec, tag: &str, i: usize) -> Result<Sample> {
    let spec = spec.renamed(&format!("{}-{tag}-{i}", spec.name));
    let has_readiness = spec
        .containers
        .iter()
        .chain(&spec.init_containers)
        .any(|c| c.readiness_probe.is_some());
    let ends = spec.restart_policy != RestartPolicy::Always;
    let all = names(&spec);
    let t0 = Instant::now();
    let wall0 = chrono::Utc::now();
    let pod = runtime.create_pod(spec).await?;
    let mut sample = Sample {
        created: Some(t0.elapsed()),
        ..Default::default()
    };
    let mut status = pod.watch();
    if has_readiness {
        let _ = status
            .wait_for(|s| {
                s.condition(ConditionType::Ready)
                    .is_some_and(|c| c.status == wasipod::status::ConditionStatus::True)
                    || s.phase.is_terminal()
            })
            .await;
        sample.ready = Some(t0.elapsed());
    }
    if ends {
        let s = pod.wait().await;
        if s.phase == PodPhase::Succeeded {
            sample.succeeded = Some(t0.elapsed());
        } else {
            bail!("pod {} ended {}: {:?}", pod.name(), s.phase, s.reason);
        }
    } else {
        wait_started(&pod, &all).await?;
    }
    // Every container's Started event, measured from the create call.
    let events = pod.events();
    let started: Option<Vec<Duration>> = all
        .iter()
        .map(|n| {
            events
                .iter()
                .find(|e| e.reason == "Started" && e.message == format!("Started container {n}"))
                .and_then(|e| (e.time - wall0).to_std().ok())
        })
        .collect();
    sample.started = started.and_then(|v| v.into_iter().max());
    let d = Instant::now();
    pod.delete(None).await;
    sample.deleted = Some(d.elapsed());
    Ok(sample)
}

/// Whether a container of the pod could not start or keeps failing: the
/// bench stops rather than wait for it.
fn failing(s: &wasipod::PodStatus) -> Option<String> {
    s.init_container_statuses
        .iter()
        .chain(&s.container_statuses)
        .find_map(|c| match &c.state {
            wasipod::ContainerState::Waiting(w) if w.reason == "CrashLoopBackOff" => Some(format!(
                "container {} is in CrashLoopBackOff: {:?}",
                c.name,
                c.last_state
                    .as_ref()
                    .and_then(|l| l.terminated())
                    .and_then(|t| t.message.clone())
            )),
            _ => None,
        })
}

/// Every container's name, init containers first.
fn names(spec: &PodSpec) -> Vec<String> {
    spec.init_containers
        .iter()
        .chain(&spec.containers)
        .map(|c| c.name.clone())
        .collect()
}

/// Waits until every container has started (or the pod ended); a container
/// that cannot start fails the bench instead of stalling it.
async fn wait_started(pod: &wasipod::Pod, all: &[String]) -> Result<()> {
    let mut status = pod.watch();
    let s = status
        .wait_for(|s| {
            all.iter()
                .all(|n| s.container(n).is_some_and(|c| c.started == Some(true)))
                || s.phase.is_terminal()
                || failing(s).is_some()
        })
        .await?
        .clone();
    match failing(&s) {
        Some(why) => bail!("pod {}: {why}", pod.name()),
        None => Ok(()),
    }
}

/// `--hold`: all pods up at once, memory per pod, then all deleted.
async fn hold(
    args: &BenchArgs,
    runtime: &Runtime,
    spec: &Arc<PodSpec>,
    compile: Compile,
) -> Result<Report> {
    let all = names(spec);
    let rss_before = proc_status("VmRSS:");
    let start = Instant::now();
    let mut pods = Vec::with_capacity(args.count);
    let mut started = Vec::with_capacity(args.count);
    for i in 0..args.count {
        let t0 = Instant::now();
        let pod = runtime
            .create_pod(spec.renamed(&format!("{}-hold-{i}", spec.name)))
            .await?;
        wait_started(&pod, &all)
            .await
            .with_context(|| format!("pod {} of {}", i + 1, args.count))?;
        started.push(t0.elapsed());
        pods.push(pod);
    }
    let wall = start.elapsed();
    // Let every guest reach its blocking call.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss_after = proc_status("VmRSS:");
    let mut deleted = Vec::with_capacity(pods.len());
    for pod in pods {
        let d = Instant::now();
        pod.delete(None).await;
        deleted.push(d.elapsed());
    }
    Ok(Report {
        manifest: args.manifest.display().to_string(),
        pods: args.count,
        concurrency: 1,
        warmup: args.warmup,
        wall_seconds: wall.as_secs_f64(),
        pods_per_second: args.count as f64 / wall.as_secs_f64(),
        peak_rss_bytes: peak_rss(),
        compile,
        bytes_per_pod: rss_before
            .zip(rss_after)
            .map(|(b, a)| a.saturating_sub(b) as f64 / args.count as f64),
        pool_slots: runtime.config().pool.map(|p| p.slots),
        created: None,
        started: Summary::of(started),
        ready: None,
        succeeded: None,
        deleted: Summary::of(deleted),
    })
}

/// Peak resident memory of this process (VmHWM), where /proc has it.
fn peak_rss() -> Option<u64> {
    proc_status("VmHWM:")
}

fn proc_status(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

pub fn print(report: &Report) {
    println!(
        "{}: {} pods, {} at a time (after {} warm-up pods)",
        report.manifest, report.pods, report.concurrency, report.warmup
    );
    let c = &report.compile;
    if c.compiled > 0 {
        println!(
            "compile: {} image(s) compiled for the first pod in {:.1} ms (not in the figures below)",
            c.compiled, c.first_load_ms
        );
    } else {
        println!(
            "compile: cached ({} image(s) from the disk cache; first pod loaded in {:.1} ms)",
            c.disk_hits, c.first_load_ms
        );
    }
    println!(
        "{:<10} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "measure", "p50", "p90", "p99", "max", "mean"
    );
    for (name, s) in [
        ("created", &report.created),
        ("started", &report.started),
        ("ready", &report.ready),
        ("succeeded", &report.succeeded),
        ("deleted", &report.deleted),
    ] {
        if let Some(s) = s {
            let f = |us: f64| {
                if us >= 10_000.0 {
                    format!("{:.1}ms", us / 1e3)
                } else {
                    format!("{us:.0}µs")
                }
            };
            println!(
                "{name:<10} {:>10} {:>10} {:>10} {:>10} {:>10}",
                f(s.p50_us),
                f(s.p90_us),
                f(s.p99_us),
                f(s.max_us),
                f(s.mean_us)
            );
        }
    }
    println!(
        "throughput: {:.0} pods/s ({:.2} s wall)",
        report.pods_per_second, report.wall_seconds
    );
    if let Some(rss) = report.peak_rss_bytes {
        println!("peak memory: {:.1} MiB", rss as f64 / (1 << 20) as f64);
    }
    if let Some(b) = report.bytes_per_pod {
        println!(
            "memory per running pod: {:.1} KiB ({} pods held at once)",
            b / 1024.0,
            report.pods
        );
    }
}
