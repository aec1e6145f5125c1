//! `wasipod`: run Kubernetes pods of WASI programs from the command line.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};

mod bench;
use clap::{Parser, Subcommand, ValueEnum};
use wasipod::{EventType, PodObject, PodPhase, PodSpec, Runtime, RuntimeConfig, Stream};

#[derive(Parser)]
#[command(
    name = "wasipod",
    version,
    about = "Run Kubernetes v1 Pods whose containers are WASI programs, sandboxed by wasmtime.",
    after_help = "Examples:\n  wasipod run sample-modules/pods/demo.yaml\n  wasipod logs demo -c reader\n  wasipod get\n  wasipod stop demo"
)]
struct Cli {
    /// Where pods keep their volumes, logs and status
    /// [default: $XDG_STATE_HOME/wasipod or ~/.local/state/wasipod]
    #[arg(long, global = true, env = "WASIPOD_STATE_DIR")]
    state_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a pod in the foreground until it finishes; Ctrl-C deletes it.
    ///
    /// Container output is printed as `[container] line` (stdout lines on
    /// stdout, stderr lines on stderr; all on stderr with --output, so that
    /// stdout holds only the Pod document); events and state changes go to
    /// stderr.
    #[command(
        after_help = "Examples:\n  wasipod run pod.yaml\n  wasipod run pod.yaml --output yaml   # print the final Pod object\n  wasipod run pod.yaml --rm            # keep no logs afterwards
  wasipod run web.yaml -p 8080:80      # curl http://127.0.0.1:8080/ reaches the pod's port 80\n\nExit status: 0 when the pod Succeeded, 1 when it Failed, 2 for a bad manifest."
    )]
    Run {
        /// The manifest: one v1 Pod, plus the ConfigMaps/Secrets it uses.
        manifest: PathBuf,
        /// Print the final Pod object in this format.
        #[arg(short, long, value_enum)]
        output: Option<Format>,
        /// Compile cache [default: $XDG_CACHE_HOME/wasipod or ~/.cache/wasipod]
        #[arg(long, env = "WASIPOD_CACHE_DIR")]
        cache_dir: Option<PathBuf>,
        /// Grace period for deletion on Ctrl-C/SIGTERM, in seconds
        /// [default: the pod's terminationGracePeriodSeconds].
        #[arg(long)]
        grace_period: Option<u64>,
        /// Remove the pod's logs and status when it ends.
        #[arg(long)]
        rm: bool,
        /// Print only the containers' output (no events).
        #[arg(short, long)]
        quiet: bool,
        /// Publish a pod port on the host: `[HOST_IP:]HOST_PORT:CONTAINER_PORT`
        /// (host IP 127.0.0.1 by default). Repeatable.
        #[arg(
            short = 'p',
            long = "publish",
            value_name = "[HOST_IP:]HOST_PORT:CONTAINER_PORT"
        )]
        publish: Vec<String>,
    },
    /// Measure pod cold start on this machine: create N pods from a manifest
    /// and report percentiles of each step.
    #[command(
        after_help = "Examples:\n  wasipod bench sample-modules/pods/bench/hello-p1.yaml\n  wasipod bench sample-modules/pods/bench/three-containers.yaml --count 500 --concurrency 4 -o json"
    )]
    Bench {
        /// The manifest (pods get unique names).
        manifest: PathBuf,
        /// Pods to measure.
        #[arg(short = 'n', long, default_value_t = 1000)]
        count: usize,
        /// Pods in flight at once.
        #[arg(short, long, default_value_t = 1)]
        concurrency: usize,
        /// Unmeasured pods first.
        #[arg(short, long, default_value_t = 50)]
        warmup: usize,
        /// Print the report as JSON or YAML.
        #[arg(short, long, value_enum)]
        output: Option<Format>,
        /// Compile cache [default: $XDG_CACHE_HOME/wasipod or ~/.cache/wasipod]
        #[arg(long, env = "WASIPOD_CACHE_DIR")]
        cache_dir: Option<PathBuf>,
        /// Keep all pods running at once and report the memory per pod
        /// (for pods that run on, such as servers).
        #[arg(long)]
        hold: bool,
        /// Allocate instances on demand instead of from a pool.
        #[arg(long)]
        no_pool: bool,
        /// How pods are driven: one single-threaded executor per core (a
        /// pod and its observer share a thread), or one work-stealing
        /// runtime for all.
        #[arg(long, value_enum, default_value = "thread-per-core")]
        scheduler: bench::Scheduler,
        /// Executor threads [default: one per core; thread-per-core uses at
        /// most one per pod in flight].
        #[arg(long)]
        threads: Option<usize>,
        /// Write the latency distribution (share of pods under each
        /// latency, per measure) as an SVG chart.
        #[arg(long, value_name = "FILE.svg")]
        plot: Option<PathBuf>,
    },
    /// Check a manifest without running it: errors and ignored fields.
    #[command(after_help = "Example:\n  wasipod validate pod.yaml")]
    Validate {
        /// The manifest.
        manifest: PathBuf,
    },
    /// Print a container's log (of a running or finished pod).
    #[command(
        after_help = "Examples:\n  wasipod logs demo                 # the only container\n  wasipod logs demo -c reader --previous"
    )]
    Logs {
        /// The pod's name.
        pod: String,
        /// The container (required when the pod has several).
        #[arg(short, long)]
        container: Option<String>,
        /// The previous run of a restarted container.
        #[arg(short, long)]
        previous: bool,
        /// The pod's namespace.
        #[arg(short, long, default_value = "default")]
        namespace: String,
    },
    /// List pods, or print one as YAML/JSON.
    #[command(after_help = "Examples:\n  wasipod get\n  wasipod get demo -o yaml")]
    Get {
        /// A pod's name; all pods when absent.
        pod: Option<String>,
        /// Print the Pod object in this format.
        #[arg(short, long, value_enum)]
        output: Option<Format>,
        /// The pod's namespace.
        #[arg(short, long, default_value = "default")]
        namespace: String,
    },
    /// Delete a pod running in another `wasipod run` (which then stops it
    /// and cleans up).
    #[command(after_help = "Example:\n  wasipod stop demo")]
    Stop {
        /// The pod's name.
        pod: String,
        /// The pod's namespace.
        #[arg(short, long, default_value = "default")]
        namespace: String,
    },
    /// Remove the records (logs, status) of pods that are not running.
    #[command(after_help = "Examples:\n  wasipod rm demo\n  wasipod rm --all")]
    Rm {
        /// The pod's name.
        pod: Option<String>,
        /// Every finished pod.
        #[arg(long)]
        all: bool,
        /// The pod's namespace.
        #[arg(short, long, default_value = "default")]
        namespace: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Yaml,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let state_dir = cli
        .state_dir
        .clone()
        .or_else(RuntimeConfig::default_state_dir)
        .unwrap_or_else(|| PathBuf::from(".wasipod"));
    let result = match cli.command {
        Command::Run {
            manifest,
            output,
            cache_dir,
            grace_period,
            rm,
            quiet,
            publish,
        } => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            rt.block_on(run(RunArgs {
                manifest,
                output,
                cache_dir,
                grace_period,
                rm,
                quiet,
                publish,
                state_dir,
            }))
        }
        Command::Validate { manifest } => validate(&manifest),
        Command::Bench {
            manifest,
            count,
            concurrency,
            warmup,
            output,
            cache_dir,
            hold,
            no_pool,
            scheduler,
            threads,
            plot,
        } => (|| {
            let report = bench::bench(bench::BenchArgs {
                manifest,
                count,
                concurrency,
                warmup,
                cache_dir,
                hold,
                no_pool,
                scheduler,
                threads,
                plot,
                progress: output.is_none(),
            })?;
            let text = match output {
                Some(Format::Json) => serde_json::to_string_pretty(&report)? + "\n",
                Some(Format::Yaml) => serde_yaml_ng::to_string(&report)?,
                None => bench::render(&report),
            };
            print_out(&text)?;
            Ok(ExitCode::SUCCESS)
        })(),
        Command::Logs {
            pod,
            container,
            previous,
            namespace,
        } => logs(&state_dir, &namespace, &pod, container.as_deref(), previous),
        Command::Get {
            pod,
            output,
            namespace,
        } => get(&state_dir, &namespace, pod.as_deref(), output),
        Command::Stop { pod, namespace } => stop(&state_dir, &namespace, &pod),
        Command::Rm {
            pod,
            all,
            namespace,
        } => rm(&state_dir, &namespace, pod.as_deref(), all),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Prints to stdout; a closed pipe (`| head`) is not an error.
fn print_out(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

struct RunArgs {
    manifest: PathBuf,
    output: Option<Format>,
    cache_dir: Option<PathBuf>,
    grace_period: Option<u64>,
    rm: bool,
    quiet: bool,
    publish: Vec<String>,
    state_dir: PathBuf,
}

fn load(manifest: &Path) -> Result<PodSpec> {
    let spec = PodSpec::from_file(manifest)?;
    for w in &spec.warnings {
        eprintln!("warning: {w}");
    }
    Ok(spec)
}

async fn run(args: RunArgs) -> Result<ExitCode> {
    let mut spec = load(&args.manifest)?;
    for p in &args.publish {
        spec.publish.push(
            wasipod::net::PortMapping::parse(p).map_err(|e| anyhow::anyhow!("--publish {e}"))?,
        );
    }
    let mut config = RuntimeConfig::default().state_dir(&args.state_dir);
    // The pod's folder is its record (`wasipod get`, `wasipod logs`).
    config.retain_deleted_pods = true;
    config.cache_dir = args.cache_dir.or_else(RuntimeConfig::default_cache_dir);
    // One pod: an instance pool just for it (a node-sized pool of a thousand
    // slots takes milliseconds to set up and tear down).
    config.pool = Some(wasipod::PoolConfig::sized_for(&spec, 1, 2));
    let runtime = Runtime::new(config)?;
    let pod = runtime.prepare_pod(spec).await?;
    let record = pod.dir().to_path_buf();

    let mut logs = pod.subscribe_logs();
    let mut events = pod.subscribe_events();
    let mut status = pod.watch();
    let mut printed = 0;
    let print_events = |printed: &mut usize| {
        if args.quiet {
            return;
        }
        let all = pod.events();
        for e in &all[*printed..] {
            let mark = if e.type_ == EventType::Warning {
                "Warning"
            } else {
                "Normal "
            };
            eprintln!(
                "{} {mark} {:<16} {}: {}",
                e.time.format("%H:%M:%S%.3f"),
                e.reason,
                e.object,
                e.message
            );
        }
        *printed = all.len();
    };
    print_events(&mut printed);
    pod.start();

    let reserved = args.output.is_some();
    let mut phase = PodPhase::Pending;
    let mut interrupts = 0;
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let wait = pod.wait();
    tokio::pin!(wait);
    let final_status = loop {
        tokio::select! {
            s = &mut wait => {
                while let Ok(line) = logs.try_recv() { print_line(&line, reserved) }
                break s;
            }
            line = logs.recv() => match line {
                Ok(line) => print_line(&line, reserved),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => eprintln!("wasipod: {n} log lines skipped (terminal too slow); `wasipod logs` shows each run's last {} MiB", 2 * (RuntimeConfig::default().log_max_bytes >> 20)),
                Err(_) => {}
            },
            _ = events.recv() => print_events(&mut printed),
            _ = status.changed() => {
                let s = status.borrow_and_update().clone();
                if s.phase != phase && !args.quiet {
                    eprintln!("pod {}/{}: {} -> {}", pod.namespace(), pod.name(), phase, s.phase);
                }
                phase = s.phase;
                save(&record, &pod.to_object());
            }
            _ = async { tokio::select! { _ = tokio::signal::ctrl_c() => {}, _ = sigterm.recv() => {} } } => {
                interrupts += 1;
                let grace = if interrupts > 1 { Some(Duration::ZERO) } else { args.grace_period.map(Duration::from_secs) };
                eprintln!("wasipod: deleting pod {} ({})", pod.name(), match grace {
                    Some(g) if g.is_zero() => "killing at once".to_string(),
                    Some(g) => format!("grace period {}s", g.as_secs()),
                    None => format!("grace period {}s", pod.spec().termination_grace_period.as_secs()),
                });
                let p = pod.clone();
                tokio::spawn(async move { p.delete(grace).await; });
            }
        }
    };
    print_events(&mut printed);
    // Cleans the volumes of a pod that finished by itself.
    pod.delete(Some(Duration::ZERO)).await;
    let object = pod.to_object();
    save(&record, &object);

    match args.output {
        Some(f) => println!("{}", render(&object, f)?),
        None if !args.quiet => print_summary(&object),
        None => {}
    }
    if args.rm {
        std::fs::remove_dir_all(&record).with_context(|| format!("{}", record.display()))?;
    }
    Ok(if final_status.phase == PodPhase::Succeeded {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Prints a container's line with its name; to stderr only when stdout is
/// reserved for the final Pod document (`--output`).
fn print_line(line: &wasipod::LogLine, stdout_reserved: bool) {
    match line.stream {
        Stream::Stdout if !stdout_reserved => {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "[{}] {}", line.container, line.line);
        }
        _ => eprintln!("[{}] {}", line.container, line.line),
    }
}

fn print_summary(object: &PodObject) {
    let s = &object.status;
    eprintln!(
        "\npod {}/{}: {}{}",
        object.metadata.namespace.as_deref().unwrap_or("default"),
        object.metadata.name.as_deref().unwrap_or(""),
        s.phase,
        s.reason
            .as_ref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default()
    );
    eprintln!(
        "  {:<20} {:<11} {:<18} {:>5} {:>8}",
        "CONTAINER", "STATE", "REASON", "EXIT", "RESTARTS"
    );
    for (c, init) in s
        .init_container_statuses
        .iter()
        .map(|c| (c, true))
        .chain(s.container_statuses.iter().map(|c| (c, false)))
    {
        let (state, reason, exit) = match &c.state {
            wasipod::ContainerState::Waiting(w) => ("Waiting", w.reason.clone(), String::new()),
            wasipod::ContainerState::Running(_) => ("Running", String::new(), String::new()),
            wasipod::ContainerState::Terminated(t) => {
                ("Terminated", t.reason.clone(), t.exit_code.to_string())
            }
        };
        let name = if init {
            format!("{} (init)", c.name)
        } else {
            c.name.clone()
        };
        eprintln!(
            "  {name:<20} {state:<11} {reason:<18} {exit:>5} {:>8}",
            c.restart_count
        );
    }
}

fn render(object: &PodObject, format: Format) -> Result<String> {
    Ok(match format {
        Format::Yaml => serde_yaml_ng::to_string(object)?,
        Format::Json => serde_json::to_string_pretty(object)?,
    })
}

fn save(record: &Path, object: &PodObject) {
    let tmp = record.join("pod.json.tmp");
    if let Ok(json) = serde_json::to_vec_pretty(object)
        && std::fs::write(&tmp, json).is_ok()
    {
        let _ = std::fs::rename(&tmp, record.join("pod.json"));
    }
}

fn validate(manifest: &Path) -> Result<ExitCode> {
    let spec = load(manifest)?;
    println!(
        "{}: pod {}/{} is valid ({} init containers, {} containers, {} volumes)",
        manifest.display(),
        spec.namespace,
        spec.name,
        spec.init_containers.len(),
        spec.containers.len(),
        spec.volumes.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// A pod recorded in the state folder.
struct Record {
    dir: PathBuf,
    object: PodObject,
    /// The wasipod process running the pod, while it runs: known from the
    /// lock that process holds (never from a pid file, whose pid may have
    /// been recycled).
    pid: Option<u32>,
}

impl Record {
    fn running(&self) -> bool {
        self.pid.is_some()
    }

    /// The phase as `get` shows it: `Unknown` for a pod whose process
    /// stopped before the pod finished (killed, or the machine restarted).
    fn phase(&self) -> String {
        let phase = self.object.status.phase;
        if !self.running() && !phase.is_terminal() {
            "Unknown".to_string()
        } else {
            phase.to_string()
        }
    }
}

fn records(state_dir: &Path) -> Vec<Record> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(state_dir.join("pods")) else {
        return out;
    };
    let running = wasipod::state::running_pods(state_dir);
    for e in entries.flatten() {
        let dir = e.path();
        let Ok(bytes) = std::fs::read(dir.join("pod.json")) else {
            continue;
        };
        let Ok(object) = serde_json::from_slice::<PodObject>(&bytes) else {
            continue;
        };
        let pid = running.get(&*e.file_name().to_string_lossy()).copied();
        out.push(Record { dir, object, pid });
    }
    out.sort_by(|a, b| {
        a.object
            .metadata
            .creation_timestamp
            .cmp(&b.object.metadata.creation_timestamp)
    });
    out
}

fn find(state_dir: &Path, namespace: &str, name: &str) -> Result<Record> {
    records(state_dir)
        .into_iter()
        .rev()
        .find(|r| {
            r.object.metadata.name.as_deref() == Some(name)
                && r.object.metadata.namespace.as_deref() == Some(namespace)
        })
        .with_context(|| {
            format!(
                "pods \"{name}\" not found in namespace \"{namespace}\" (state folder {})",
                state_dir.display()
            )
        })
}

fn logs(
    state_dir: &Path,
    namespace: &str,
    pod: &str,
    container: Option<&str>,
    previous: bool,
) -> Result<ExitCode> {
    let r = find(state_dir, namespace, pod)?;
    let s = &r.object.status;
    let all: Vec<&wasipod::ContainerStatus> = s
        .init_container_statuses
        .iter()
        .chain(&s.container_statuses)
        .collect();
    let c = match container {
        Some(name) => all
            .iter()
            .find(|c| c.name == name)
            .with_context(|| format!("container \"{name}\" is not valid for pod \"{pod}\""))?,
        None if s.container_statuses.len() == 1 => &s.container_statuses[0],
        None => bail!(
            "a container name must be specified for pod {pod}, choose one of: [{}]",
            all.iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        ),
    };
    let current = c.restart_count;
    let index = if previous {
        current
            .checked_sub(1)
            .with_context(|| format!("previous terminated container \"{}\" not found", c.name))?
    } else {
        current
    };
    let path = wasipod::log_file(&r.dir, &c.name, index);
    let mut out = std::io::stdout().lock();
    if let Ok(rotated) = std::fs::read(path.with_extension("log.1")) {
        out.write_all(&rotated)?;
    }
    match std::fs::read(&path) {
        Ok(bytes) => out.write_all(&bytes)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| path.display().to_string()),
    }
    Ok(ExitCode::SUCCESS)
}

fn get(
    state_dir: &Path,
    namespace: &str,
    pod: Option<&str>,
    output: Option<Format>,
) -> Result<ExitCode> {
    if let Some(name) = pod {
        let mut r = find(state_dir, namespace, name)?;
        if !r.running() && !r.object.status.phase.is_terminal() {
            // Recorded while running, but its process is gone.
            r.object.status.phase = wasipod::PodPhase::Unknown;
        }
        match output {
            Some(f) => println!("{}", render(&r.object, f)?),
            None => print_summary(&r.object),
        }
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<12} {:<30} {:<7} {:<12} {:>8}  CREATED",
        "NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS"
    );
    for r in records(state_dir) {
        let s = &r.object.status;
        let ready = s.container_statuses.iter().filter(|c| c.ready).count();
        let restarts: u32 = s.container_statuses.iter().map(|c| c.restart_count).sum();
        let phase = r.phase();
        println!(
            "{:<12} {:<30} {:<7} {:<12} {:>8}  {}",
            r.object.metadata.namespace.as_deref().unwrap_or(""),
            r.object.metadata.name.as_deref().unwrap_or(""),
            format!("{ready}/{}", s.container_statuses.len()),
            phase,
            restarts,
            r.object
                .metadata
                .creation_timestamp
                .as_deref()
                .unwrap_or("")
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn stop(state_dir: &Path, namespace: &str, pod: &str) -> Result<ExitCode> {
    let r = find(state_dir, namespace, pod)?;
    match r.pid {
        Some(pid) => {
            let Ok(pid) = i32::try_from(pid) else {
                bail!("pod \"{pod}\": process id {pid} out of range");
            };
            // SAFETY: kill(2) with a pid whose process holds the pod's lock.
            if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
                bail!(
                    "cannot signal the wasipod process {pid}: {}",
                    std::io::Error::last_os_error()
                );
            }
            println!("pod \"{pod}\" deleted (process {pid} is stopping it)");
            Ok(ExitCode::SUCCESS)
        }
        None => bail!("pod \"{pod}\" is not running (phase {})", r.phase()),
    }
}

fn rm(state_dir: &Path, namespace: &str, pod: Option<&str>, all: bool) -> Result<ExitCode> {
    let targets: Vec<Record> = match (pod, all) {
        (Some(name), false) => vec![find(state_dir, namespace, name)?],
        (None, true) => records(state_dir)
            .into_iter()
            .filter(|r| !r.running())
            .collect(),
        _ => bail!("give a pod name or --all"),
    };
    for r in targets {
        if r.running() {
            bail!(
                "pod \"{}\" is running; `wasipod stop` it first",
                r.object.metadata.name.unwrap_or_default()
            );
        }
        std::fs::remove_dir_all(&r.dir).with_context(|| r.dir.display().to_string())?;
        println!("removed {}", r.object.metadata.name.unwrap_or_default());
    }
    Ok(ExitCode::SUCCESS)
}
