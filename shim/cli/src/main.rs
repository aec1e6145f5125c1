//! `wasipod`: run Kubernetes pods of WASI programs from the command line.
//!
//! ## Layout
//!
//! `main.rs` parses the command line and dispatches; each verb is one file
//! under `cmd/` (`bench` is a folder of its own); pod records, logs and
//! liveness come from the library (`wasipod::store`).

mod cmd;
mod daemon;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use wasipod::RuntimeConfig;

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
    /// The node daemon's kubeconfig: `get`, `logs`, `stop` and `rm` act on
    /// its pods when it answers [default: STATE_DIR/daemon/kubeconfig,
    /// where `wasipodd` writes it]
    #[arg(long, global = true, env = "WASIPOD_KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
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
  wasipod run web.yaml -p 8080:80      # curl http://127.0.0.1:8080/ reaches the pod's port 80\n\nExit status: 0 when the pod Succeeded, 1 when it Failed, 2 for a bad manifest or argument, 3 when a host port or pod address is taken, 4 for a failure of wasipod or the host."
    )]
    Run(cmd::run::RunArgs),
    /// Measure pod cold start on this machine: create N pods from a manifest
    /// and report percentiles of each step.
    #[command(
        after_help = "Examples:\n  wasipod bench sample-modules/pods/bench/hello-p1.yaml\n  wasipod bench sample-modules/pods/bench/three-containers.yaml --count 500 --concurrency 4 -o json"
    )]
    Bench(cmd::bench::BenchArgs),
    /// Check a manifest without running it: errors, ignored fields, and each
    /// image (a WASI command, read from its bytes; nothing is compiled).
    #[command(after_help = "Example:\n  wasipod validate pod.yaml")]
    Validate {
        /// The manifest.
        manifest: PathBuf,
    },
    /// Print a container's log (of a running or finished pod: the node
    /// daemon's, or one `wasipod run` recorded).
    #[command(
        after_help = "Examples:\n  wasipod logs demo                 # the only container\n  wasipod logs demo -c reader --previous\n  wasipod logs demo -c counter --tail 5 --timestamps"
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
        /// Only the last N lines.
        #[arg(long, value_name = "N")]
        tail: Option<usize>,
        /// At most the last N bytes.
        #[arg(long, value_name = "N")]
        limit_bytes: Option<usize>,
        /// Prefix each line with the time it was written (RFC 3339).
        #[arg(long)]
        timestamps: bool,
        /// The pod's namespace.
        #[arg(short, long, default_value = "default")]
        namespace: String,
    },
    /// List pods (the node daemon's and those `wasipod run` recorded), or
    /// print one as YAML/JSON.
    #[command(after_help = "Examples:\n  wasipod get\n  wasipod get demo -o yaml")]
    Get {
        /// A pod's name; all pods when absent.
        pod: Option<String>,
        /// Print the Pod object as YAML or JSON, or the table with more
        /// columns (IP, QOS).
        #[arg(short, long, value_enum)]
        output: Option<GetFormat>,
        /// The pod's namespace.
        #[arg(short, long, default_value = "default")]
        namespace: String,
    },
    /// Delete a pod: the node daemon's (it gets its termination sequence),
    /// or one running in another `wasipod run` (which then stops it and
    /// cleans up).
    #[command(
        visible_alias = "delete",
        after_help = "Examples:\n  wasipod stop demo\n  wasipod delete web --grace-period 5"
    )]
    Stop {
        /// The pod's name.
        pod: String,
        /// Seconds the pod has to stop before it is killed (the daemon's
        /// pods; default: the pod's terminationGracePeriodSeconds).
        #[arg(long, value_name = "SECONDS")]
        grace_period: Option<u64>,
        /// The pod's namespace.
        #[arg(short, long, default_value = "default")]
        namespace: String,
    },
    /// Run the container's program again with ARGV in a running pod of the
    /// node daemon (as `kubectl exec` does), and exit with its exit code.
    #[command(
        after_help = "Examples:\n  wasipod exec web -- toolbox ls /data\n  wasipod exec -i web -c app -- toolbox cat-stdin < file"
    )]
    Exec {
        /// The pod's name.
        pod: String,
        /// The container (required when the pod has several).
        #[arg(short, long)]
        container: Option<String>,
        /// Pass this process's stdin to the program (its end is the
        /// program's EOF).
        #[arg(short = 'i', long)]
        stdin: bool,
        /// The pod's namespace.
        #[arg(short, long, default_value = "default")]
        namespace: String,
        /// The program's arguments (the first is its name).
        #[arg(last = true, required = true)]
        argv: Vec<String>,
    },
    /// Remove finished pods: their records (logs, status), or the node
    /// daemon's finished pods.
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

/// How `wasipod get` prints.
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum GetFormat {
    Yaml,
    Json,
    Wide,
}

/// How a Pod document or a report is printed.
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum Format {
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
    let kubeconfig = cli
        .kubeconfig
        .clone()
        .unwrap_or_else(|| state_dir.join("daemon").join("kubeconfig"));
    let pods = || cmd::Pods::open(&state_dir, &kubeconfig);
    let result = match cli.command {
        Command::Run(args) => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            rt.block_on(cmd::run::run(args, state_dir))
        }
        Command::Validate { manifest } => cmd::validate::validate(&manifest),
        Command::Bench(args) => (|| {
            let output = args.output;
            let report = cmd::bench::bench(args)?;
            let text = match output {
                Some(Format::Json) => serde_json::to_string_pretty(&report)? + "\n",
                Some(Format::Yaml) => serde_yaml_ng::to_string(&report)?,
                None => cmd::bench::render(&report),
            };
            cmd::print_out(&text)?;
            Ok(ExitCode::SUCCESS)
        })(),
        Command::Logs {
            pod,
            container,
            previous,
            tail,
            limit_bytes,
            timestamps,
            namespace,
        } => pods().and_then(|pods| {
            cmd::logs::logs(
                &pods,
                &namespace,
                &pod,
                wasipod::LogOptions {
                    container: container.unwrap_or_default(),
                    previous,
                    tail_lines: tail,
                    limit_bytes,
                    timestamps,
                    ..wasipod::LogOptions::default()
                },
            )
        }),
        Command::Get {
            pod,
            output,
            namespace,
        } => pods().and_then(|pods| cmd::get::get(&pods, &namespace, pod.as_deref(), output)),
        Command::Stop {
            pod,
            grace_period,
            namespace,
        } => pods().and_then(|pods| cmd::stop::stop(&pods, &namespace, &pod, grace_period)),
        Command::Exec {
            pod,
            container,
            stdin,
            namespace,
            argv,
        } => pods().and_then(|pods| {
            let Some(daemon) = &pods.daemon else {
                anyhow::bail!(
                    "exec needs the node daemon (wasipodd) running the pod; no daemon answers at {}",
                    kubeconfig.display()
                );
            };
            let code = daemon.exec(&namespace, &pod, container.as_deref(), &argv, stdin)?;
            Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
        }),
        Command::Rm {
            pod,
            all,
            namespace,
        } => pods().and_then(|pods| cmd::rm::rm(&pods, &namespace, pod.as_deref(), all)),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit_code(&e))
        }
    }
}

/// The exit status of a failed command, from the library's error kind (the
/// one place the CLI maps kinds): 2 for what the user can fix (a bad
/// manifest or argument, a pod that does not exist or is not in that
/// state), 3 when the machine is out of something (a port, an address, a
/// memory slot), 4 for a failure of wasipod or the host.
fn exit_code(e: &anyhow::Error) -> u8 {
    use wasipod::ErrorKind;
    // The daemon's answer: the server's failures are wasipod's.
    if let Some(api) = e.downcast_ref::<daemon::ApiError>() {
        return if api.code >= 500 { 4 } else { 2 };
    }
    let kind = e
        .downcast_ref::<wasipod::RuntimeError>()
        .map(wasipod::RuntimeError::kind)
        .or_else(|| {
            e.downcast_ref::<wasipod::ManifestError>()
                .map(wasipod::ManifestError::kind)
        });
    match kind {
        None
        | Some(
            ErrorKind::InvalidArgument
            | ErrorKind::NotFound
            | ErrorKind::AlreadyExists
            | ErrorKind::FailedPrecondition,
        ) => 2,
        Some(ErrorKind::ResourceExhausted) => 3,
        Some(ErrorKind::Internal) => 4,
    }
}
