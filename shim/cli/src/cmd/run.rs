//! `wasipod run`: a pod in the foreground until it finishes.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use wasipod::{EventType, PodPhase, Runtime, RuntimeConfig, Stream};

use super::{load, print_summary, render};
use crate::Format;

/// The options of `wasipod run`.
#[derive(clap::Args)]
pub(crate) struct RunArgs {
    /// The manifest: one v1 Pod, plus the ConfigMaps/Secrets it uses.
    pub(crate) manifest: PathBuf,
    /// Print the final Pod object in this format.
    #[arg(short, long, value_enum)]
    pub(crate) output: Option<Format>,
    /// Compile cache [default: $XDG_CACHE_HOME/wasipod or ~/.cache/wasipod]
    #[arg(long, env = "WASIPOD_CACHE_DIR")]
    pub(crate) cache_dir: Option<PathBuf>,
    /// Grace period for deletion on Ctrl-C/SIGTERM, in seconds
    /// [default: the pod's terminationGracePeriodSeconds].
    #[arg(long)]
    pub(crate) grace_period: Option<u64>,
    /// Remove the pod's logs and status when it ends.
    #[arg(long)]
    pub(crate) rm: bool,
    /// Print only the containers' output (no events).
    #[arg(short, long)]
    pub(crate) quiet: bool,
    /// Publish a pod port on the host: `[HOST_IP:]HOST_PORT:CONTAINER_PORT`
    /// (host IP 127.0.0.1 by default). Repeatable.
    #[arg(
        short = 'p',
        long = "publish",
        value_name = "[HOST_IP:]HOST_PORT:CONTAINER_PORT"
    )]
    pub(crate) publish: Vec<String>,
}

pub(crate) async fn run(args: RunArgs, state_dir: PathBuf) -> Result<ExitCode> {
    let mut spec = load(&args.manifest)?;
    for p in &args.publish {
        spec.publish.push(
            wasipod::net::PortMapping::parse(p).map_err(|e| anyhow::anyhow!("--publish {e}"))?,
        );
    }
    let mut config = RuntimeConfig::default().state_dir(&state_dir);
    // The pod's folder is its record (`wasipod get`, `wasipod logs`).
    config.retain_deleted_pods = true;
    config.cache_dir = args.cache_dir.or_else(RuntimeConfig::default_cache_dir);
    // One pod: an instance pool just for it (a node-sized pool of a thousand
    // slots takes milliseconds to set up and tear down).
    config.pool = Some(wasipod::PoolConfig::sized_for(&spec, 1, 2));
    let runtime = Runtime::new(config)?;
    let pulling = pulling_message(&spec);
    let prepared = runtime.prepare_pod(spec);
    tokio::pin!(prepared);
    // A first run of a big image compiles for seconds: past one second, a
    // spinner on a terminal says what is going on (image, size, elapsed).
    let pod = tokio::select! {
        pod = &mut prepared => pod?,
        () = tokio::time::sleep(Duration::from_secs(1)), if !args.quiet => {
            let spinner = indicatif::ProgressBar::new_spinner();
            spinner.set_style(
                indicatif::ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            spinner.set_message(pulling);
            spinner.enable_steady_tick(Duration::from_millis(100));
            let pod = prepared.await;
            spinner.finish_and_clear();
            pod?
        }
    };
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
            // Events first: a line is printed after the events that
            // announce its container.
            biased;
            _ = events.recv() => print_events(&mut printed),
            s = &mut wait => {
                while let Ok(line) = logs.try_recv() { print_line(&line, reserved) }
                break s;
            }
            line = logs.recv() => match line {
                Ok(line) => {
                    print_events(&mut printed);
                    print_line(&line, reserved)
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => eprintln!("wasipod: {n} log lines skipped (terminal too slow); `wasipod logs` shows each run's last {} MiB", 2 * (RuntimeConfig::default().log_max_bytes >> 20)),
                Err(_) => {}
            },
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

/// Records the pod for `get` and `logs` (a failure is reported once).
fn save(record: &std::path::Path, object: &wasipod::PodObject) {
    static WARNED: std::sync::Once = std::sync::Once::new();
    if let Err(e) = wasipod::store::save(record, object) {
        WARNED.call_once(|| eprintln!("warning: cannot record the pod: {e}"));
    }
}

/// `Loading app.wasm (58.2 MB), sidecar.wasm (1.1 MB)`: what a slow
/// prepare is busy with.
fn pulling_message(spec: &wasipod::PodSpec) -> String {
    let mut seen = Vec::new();
    let images: Vec<String> = spec
        .init_containers
        .iter()
        .chain(&spec.containers)
        .filter(|c| {
            let new = !seen.contains(&c.image_path);
            seen.push(c.image_path.clone());
            new
        })
        .map(|c| {
            let size = std::fs::metadata(&c.image_path).map_or(0, |m| m.len());
            format!("{} ({:.1} MB)", c.image, size as f64 / 1e6)
        })
        .collect();
    format!("Compiling or loading {}", images.join(", "))
}
