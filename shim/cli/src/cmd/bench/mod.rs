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

use crate::Format;
use anyhow::{Context, Result, bail};
use serde::Serialize;
use wasipod::status::ConditionType;
use wasipod::{PodPhase, PodSpec, RestartPolicy, Runtime, RuntimeConfig};

/// The options of `wasipod bench`.
#[derive(clap::Args)]
pub(crate) struct BenchArgs {
    /// The manifest (pods get unique names).
    pub(crate) manifest: PathBuf,
    /// Pods to measure.
    #[arg(short = 'n', long, default_value_t = 1000)]
    pub(crate) count: usize,
    /// Pods in flight at once.
    #[arg(short, long, default_value_t = 1)]
    pub(crate) concurrency: usize,
    /// Unmeasured pods first.
    #[arg(short, long, default_value_t = 50)]
    pub(crate) warmup: usize,
    /// Print the report as JSON or YAML.
    #[arg(short, long, value_enum)]
    pub(crate) output: Option<Format>,
    /// Compile cache [default: $XDG_CACHE_HOME/wasipod or ~/.cache/wasipod]
    #[arg(long, env = "WASIPOD_CACHE_DIR")]
    pub(crate) cache_dir: Option<PathBuf>,
    /// Keep all pods running at once and report the memory per pod
    /// (for pods that run on, such as servers).
    #[arg(long)]
    pub(crate) hold: bool,
    /// Allocate instances on demand instead of from a pool.
    #[arg(long)]
    pub(crate) no_pool: bool,
    /// How pods are driven: one single-threaded executor per core (a
    /// pod and its observer share a thread), or one work-stealing
    /// runtime for all.
    #[arg(long, value_enum, default_value = "thread-per-core")]
    pub(crate) scheduler: Scheduler,
    /// Executor threads [default: one per core; thread-per-core uses at
    /// most one per pod in flight].
    #[arg(long)]
    pub(crate) threads: Option<usize>,
    /// Write the latency distribution (share of pods under each
    /// latency, per measure) as an SVG chart.
    #[arg(long, value_name = "FILE.svg")]
    pub(crate) plot: Option<PathBuf>,
}

/// How the bench drives its pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Scheduler {
    /// One current-thread tokio runtime per core; a pod and whoever waits
    /// on it stay on one thread (no cross-core wake-ups).
    ThreadPerCore,
    /// One multi-threaded (work-stealing) tokio runtime for every pod.
    MultiThread,
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
    pub scheduler: Scheduler,
    /// Executor threads that drove the pods.
    pub threads: usize,
    pub wall_seconds: f64,
    pub pods_per_second: f64,
    pub peak_rss_bytes: Option<u64>,
    pub compile: Compile,
    /// With --hold: resident memory added per running pod.
    pub bytes_per_pod: Option<f64>,
    /// With --hold: memory mappings and file descriptors added per running
    /// pod (against `vm.max_map_count` and `ulimit -n`).
    pub mappings_per_pod: Option<f64>,
    pub fds_per_pod: Option<f64>,
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

/// Runs the bench: the first pod (compilation, reported apart), the
/// warm-up, then the measured pods, driven as `args.scheduler` says.
pub fn bench(args: BenchArgs) -> Result<Report> {
    if args.count == 0 || args.concurrency == 0 || args.threads == Some(0) {
        bail!("--count, --concurrency and --threads must be at least 1");
    }
    let spec = PodSpec::from_file(&args.manifest)?;
    // The pooling allocator, with a slot for every guest that can run at
    // once (every slot costs address space and kernel mappings, even unused).
    let in_flight = if args.hold {
        args.count
    } else {
        args.concurrency
    } as u32;
    let pool = (!args.no_pool).then(|| {
        let mut pool = wasipod::PoolConfig::sized_for(&spec, in_flight, 16);
        pool.slots = pool.slots.max(64);
        pool
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
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = match (args.scheduler, args.hold) {
        // Held pods are only counted, not timed: one executor holds them.
        (Scheduler::ThreadPerCore, true) => 1,
        (Scheduler::ThreadPerCore, false) => args.threads.unwrap_or(cores).min(args.concurrency),
        (Scheduler::MultiThread, _) => args.threads.unwrap_or(cores),
    };
    let executor = |multi: bool| {
        if multi {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads)
                .enable_all()
                .build()
        } else {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
        }
        .context("tokio runtime")
    };
    let multi = args.scheduler == Scheduler::MultiThread;

    // Compilation, reported apart, then the warm-up.
    let first = executor(multi)?;
    let before = runtime.cache_stats();
    let t = Instant::now();
    first
        .block_on(one(&runtime, &spec, "compile", 0))
        .context("the first pod")?;
    let first_load = t.elapsed();
    let after = runtime.cache_stats();
    let compile = Compile {
        compiled: after.compiled - before.compiled,
        disk_hits: after.disk_hits - before.disk_hits,
        first_load_ms: first_load.as_secs_f64() * 1e3,
    };
    first.block_on(async {
        for i in 0..args.warmup {
            one(&runtime, &spec, "warmup", i).await?;
        }
        anyhow::Ok(())
    })?;

    let progress = progress_bar(&args);
    if args.hold {
        let report = first.block_on(hold(&args, &runtime, &spec, compile, &progress));
        progress.finish_and_clear();
        return report;
    }
    drop(first);

    // The measured pods: pod i goes to executor i % threads, each executor
    // keeping its share of the concurrency in flight.
    let start = Instant::now();
    let samples: Vec<Sample> = if multi {
        let rt = executor(true)?;
        rt.block_on(drive(
            runtime.clone(),
            spec.clone(),
            (0..args.count).collect(),
            args.concurrency,
            progress.clone(),
        ))?
    } else {
        let shards: Vec<std::thread::JoinHandle<Result<Vec<Sample>>>> = (0..threads)
            .map(|t| {
                let (runtime, spec, progress) = (runtime.clone(), spec.clone(), progress.clone());
                let pods: Vec<usize> = (t..args.count).step_by(threads).collect();
                // This executor's share of the concurrency (the first ones
                // take the remainder).
                let share =
                    args.concurrency / threads + usize::from(t < args.concurrency % threads);
                let rt = executor(false)?;
                std::thread::Builder::new()
                    .name(format!("bench-{t}"))
                    .spawn(move || rt.block_on(drive(runtime, spec, pods, share, progress)))
                    .context("bench thread")
            })
            .collect::<Result<_>>()?;
        let mut all = Vec::with_capacity(args.count);
        for shard in shards {
            all.extend(
                shard
                    .join()
                    .map_err(|_| anyhow::anyhow!("a bench thread panicked"))??,
            );
        }
        all
    };
    let wall = start.elapsed();
    progress.finish_and_clear();
    let pick =
        |f: fn(&Sample) -> Option<Duration>| samples.iter().filter_map(f).collect::<Vec<_>>();
    let report = Report {
        manifest: args.manifest.display().to_string(),
        pods: args.count,
        concurrency: args.concurrency,
        warmup: args.warmup,
        scheduler: args.scheduler,
        threads,
        wall_seconds: wall.as_secs_f64(),
        pods_per_second: args.count as f64 / wall.as_secs_f64(),
        peak_rss_bytes: peak_rss(),
        compile,
        bytes_per_pod: None,
        mappings_per_pod: None,
        fds_per_pod: None,
        pool_slots: runtime.config().pool.map(|p| p.slots),
        created: Summary::of(pick(|s| s.created)),
        started: Summary::of(pick(|s| s.started)),
        ready: Summary::of(pick(|s| s.ready)),
        succeeded: Summary::of(pick(|s| s.succeeded)),
        deleted: Summary::of(pick(|s| s.deleted)),
    };
    if let Some(path) = &args.plot {
        let series: Vec<(&str, Vec<Duration>)> = [
            ("created", pick(|s| s.created)),
            ("started", pick(|s| s.started)),
            ("ready", pick(|s| s.ready)),
            ("succeeded", pick(|s| s.succeeded)),
            ("deleted", pick(|s| s.deleted)),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .collect();
        plot(path, &report, &series).with_context(|| format!("--plot {}", path.display()))?;
    }
    Ok(report)
}

/// Pods `indices`, `concurrency` at a time, on the current executor.
async fn drive(
    runtime: Runtime,
    spec: Arc<PodSpec>,
    indices: Vec<usize>,
    concurrency: usize,
    progress: indicatif::ProgressBar,
) -> Result<Vec<Sample>> {
    let semaphore = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    let mut samples = Vec::with_capacity(indices.len());
    for i in indices {
        let permit = semaphore.clone().acquire_owned().await?;
        let (runtime, spec, progress) = (runtime.clone(), spec.clone(), progress.clone());
        tasks.spawn(async move {
            let sample = one(&runtime, &spec, "bench", i).await;
            drop(permit);
            progress.inc(1);
            sample
        });
        // Collect as we go, so that a failing pod stops the bench early.
        while let Some(s) = tasks.try_join_next() {
            samples.push(s??);
        }
    }
    while let Some(s) = tasks.join_next().await {
        samples.push(s??);
    }
    Ok(samples)
}

/// A progress bar on stderr (drawn only on a terminal).
fn progress_bar(args: &BenchArgs) -> indicatif::ProgressBar {
    // On a terminal, unless the report itself goes to stdout as data.
    if args.output.is_some() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(args.count as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} pods  {per_sec}  eta {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

/// The latency distribution as an SVG chart: for each measure, the share
/// of pods (y, percent) that took at most x microseconds (log scale).
fn plot(path: &std::path::Path, report: &Report, series: &[(&str, Vec<Duration>)]) -> Result<()> {
    use plotters::prelude::*;
    let us = |d: &Duration| d.as_secs_f64() * 1e6;
    let all = series.iter().flat_map(|(_, v)| v.iter().map(us));
    let (lo, hi) = all.fold((f64::MAX, 0.0f64), |(lo, hi), x| (lo.min(x), hi.max(x)));
    let (lo, hi) = ((lo * 0.8).max(0.1), (hi * 1.25).max(lo * 2.0));
    let root = SVGBackend::new(path, (960, 540)).into_drawing_area();
    root.fill(&WHITE)?;
    let title = format!(
        "{}: {} pods, {} at a time, {:.0} pods/s",
        report.manifest, report.pods, report.concurrency, report.pods_per_second
    );
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d((lo..hi).log_scale(), 0.0..100.0)?;
    chart
        .configure_mesh()
        .x_desc("latency from create_pod (µs, log scale)")
        .y_desc("pods (%)")
        .draw()?;
    for (i, (name, samples)) in series.iter().enumerate() {
        let mut xs: Vec<f64> = samples.iter().map(us).collect();
        xs.sort_by(f64::total_cmp);
        let n = xs.len() as f64;
        let points = xs
            .iter()
            .enumerate()
            .map(|(k, x)| (*x, (k + 1) as f64 * 100.0 / n));
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))?
            .label(*name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
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
            bail!("pod {} ended {}: {}", pod.name(), s.phase, why_failed(&s));
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
    progress: &indicatif::ProgressBar,
) -> Result<Report> {
    let all = names(spec);
    let rss_before = proc_status("VmRSS:");
    let (maps_before, fds_before) = (mappings(), fds());
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
        progress.inc(1);
    }
    let wall = start.elapsed();
    // Let every guest reach its blocking call.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss_after = proc_status("VmRSS:");
    let (maps_after, fds_after) = (mappings(), fds());
    let per_pod = |before: Option<u64>, after: Option<u64>| {
        before
            .zip(after)
            .map(|(b, a)| a.saturating_sub(b) as f64 / args.count as f64)
    };
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
        scheduler: args.scheduler,
        threads: 1,
        wall_seconds: wall.as_secs_f64(),
        pods_per_second: args.count as f64 / wall.as_secs_f64(),
        peak_rss_bytes: peak_rss(),
        compile,
        bytes_per_pod: per_pod(rss_before, rss_after),
        mappings_per_pod: per_pod(maps_before, maps_after),
        fds_per_pod: per_pod(fds_before, fds_after),
        pool_slots: runtime.config().pool.map(|p| p.slots),
        created: None,
        started: Summary::of(started),
        ready: None,
        succeeded: None,
        deleted: Summary::of(deleted),
    })
}

/// Memory mappings of this process, where /proc has them.
fn mappings() -> Option<u64> {
    let maps = std::fs::read("/proc/self/maps").ok()?;
    Some(maps.iter().filter(|&&b| b == b'\n').count() as u64)
}

/// Open file descriptors of this process, where /proc has them.
fn fds() -> Option<u64> {
    Some(std::fs::read_dir("/proc/self/fd").ok()?.count() as u64)
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

/// The report as text.
pub fn render(report: &Report) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: {} pods, {} at a time (after {} warm-up pods), {} on {} thread(s)",
        report.manifest,
        report.pods,
        report.concurrency,
        report.warmup,
        match report.scheduler {
            Scheduler::ThreadPerCore => "thread per core",
            Scheduler::MultiThread => "multi-thread runtime",
        },
        report.threads
    );
    let c = &report.compile;
    if c.compiled > 0 {
        let _ = writeln!(
            out,
            "compile: {} image(s) compiled for the first pod in {:.1} ms (not in the figures below)",
            c.compiled, c.first_load_ms
        );
    } else {
        let _ = writeln!(
            out,
            "compile: cached ({} image(s) from the disk cache; first pod loaded in {:.1} ms)",
            c.disk_hits, c.first_load_ms
        );
    }
    let _ = writeln!(
        out,
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
            let _ = writeln!(
                out,
                "{name:<10} {:>10} {:>10} {:>10} {:>10} {:>10}",
                f(s.p50_us),
                f(s.p90_us),
                f(s.p99_us),
                f(s.max_us),
                f(s.mean_us)
            );
        }
    }
    let _ = writeln!(
        out,
        "throughput: {:.0} pods/s ({:.2} s wall)",
        report.pods_per_second, report.wall_seconds
    );
    if let Some(rss) = report.peak_rss_bytes {
        let _ = writeln!(out, "peak memory: {:.1} MiB", rss as f64 / (1 << 20) as f64);
    }
    if let Some(b) = report.bytes_per_pod {
        let _ = writeln!(
            out,
            "memory per running pod: {:.1} KiB ({} pods held at once)",
            b / 1024.0,
            report.pods
        );
    }
    if let (Some(m), Some(f)) = (report.mappings_per_pod, report.fds_per_pod) {
        let _ = writeln!(
            out,
            "per running pod: {m:.1} memory mappings, {f:.2} file descriptors"
        );
    }
    out
}

/// Why a pod failed, in words: its reason and message, or else each
/// container that did not complete, with its reason, exit code and message.
fn why_failed(s: &wasipod::PodStatus) -> String {
    if let Some(reason) = &s.reason {
        return match &s.message {
            Some(m) => format!("{reason}: {m}"),
            None => reason.clone(),
        };
    }
    let failed: Vec<String> = s
        .init_container_statuses
        .iter()
        .chain(&s.container_statuses)
        .filter_map(|c| {
            let t = c.state.terminated().filter(|t| t.exit_code != 0)?;
            Some(format!(
                "container {} {} (exit code {}){}",
                c.name,
                t.reason,
                t.exit_code,
                t.message
                    .as_deref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            ))
        })
        .collect();
    if failed.is_empty() {
        "no container failed; the pod ended without completing".into()
    } else {
        failed.join("; ")
    }
}
