//! # wasipodd
//!
//! The wasipod node daemon: one [`wasipod::Runtime`] behind a
//! Kubernetes-compatible API that real `kubectl` drives, on one machine,
//! with no cluster. It serves HTTPS only, with a CA, server certificate and
//! bearer token it makes on first start, and writes a kubeconfig naming
//! them.
//!
//! ```text
//! $ wasipodd                       # https://127.0.0.1:6443
//! wasipodd: serving https://127.0.0.1:6443
//! wasipodd: export KUBECONFIG=/root/.local/state/wasipod/daemon/kubeconfig
//! $ export KUBECONFIG=/root/.local/state/wasipod/daemon/kubeconfig
//! $ kubectl create -f pod.yaml && kubectl get pods
//! ```
//!
//! ## Layout
//!
//! | module | concept |
//! |---|---|
//! | `main.rs` | arguments, start, graceful stop (SIGTERM, Ctrl-C) |
//! | `pki` | the CA, server certificate, token and kubeconfig |
//! | `server` | the TLS accept loop and the bearer-token check |
//! | `api` | discovery, namespaces, pods, events in the API server's shapes |
//! | `changes` | resource versions, the watch history, label and field selectors |
//! | `watch` | watches of any resource, as the API server streams them |
//! | `objects` | ConfigMaps and Secrets |
//! | `exec` | `kubectl exec` over WebSocket (the channel protocol) |
//! | `portforward`, `spdy` | `kubectl port-forward`: SPDY/3.1 in a WebSocket |
//! | `persist` | namespaces, ConfigMaps and Secrets on disk |
//! | `restore` | after a restart: the stored objects and recorded pods back |
//! | `static_pods` | `--manifests`: static pods and their mirror pods |
//! | `protobuf` | the protobuf bodies of kubectl's typed calls (`create namespace`) |

mod api;
mod changes;
mod exec;
mod objects;
mod persist;
mod pki;
mod portforward;
mod protobuf;
mod restore;
mod server;
mod spdy;
mod static_pods;
mod watch;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use tokio_util::sync::CancellationToken;

/// The wasipod node daemon: a Kubernetes-compatible API over HTTPS that
/// kubectl drives.
#[derive(Parser, Debug)]
#[command(
    version,
    after_help = "Examples:\n  wasipodd\n  wasipodd --listen 127.0.0.1:16443 --state-dir /tmp/wasipodd\n  export KUBECONFIG=$(wasipodd --print-kubeconfig-path)\n\nThen: kubectl create -f pod.yaml; kubectl get pods; kubectl logs POD; kubectl delete pod POD"
)]
struct Args {
    /// Address to serve HTTPS on.
    #[arg(long, default_value = "127.0.0.1:6443")]
    listen: SocketAddr,
    /// The daemon's folder: credentials, kubeconfig, pod state.
    #[arg(long, env = "WASIPOD_DAEMON_DIR")]
    state_dir: Option<PathBuf>,
    /// Where to write the kubeconfig (default: STATE_DIR/kubeconfig).
    #[arg(long)]
    kubeconfig_out: Option<PathBuf>,
    /// The node's name (`spec.nodeName` of every pod).
    #[arg(long)]
    node_name: Option<String>,
    /// The compile cache folder.
    #[arg(long, env = "WASIPOD_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Run every manifest in this folder as a static pod (the kubelet's
    /// staticPodPath): files added, changed and removed are followed.
    #[arg(long, value_name = "DIR")]
    manifests: Option<PathBuf>,
    /// How often the manifests folder is read, in milliseconds.
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    manifests_interval_ms: u64,
    /// Print the kubeconfig's path and exit.
    #[arg(long)]
    print_kubeconfig_path: bool,
}

fn default_dir() -> PathBuf {
    wasipod::RuntimeConfig::default_state_dir()
        .unwrap_or_else(|| PathBuf::from("/var/lib/wasipod"))
        .join("daemon")
}

fn node_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_lowercase())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "wasipod-node".into())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = args.state_dir.clone().unwrap_or_else(default_dir);
    let kubeconfig = args
        .kubeconfig_out
        .clone()
        .unwrap_or_else(|| dir.join("kubeconfig"));
    if args.print_kubeconfig_path {
        println!("{}", kubeconfig.display());
        return Ok(());
    }
    let credentials = pki::load_or_create(&dir.join("pki"), args.listen)?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let bound = listener.local_addr()?;
    let host = if bound.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        bound.ip().to_string()
    };
    let url = if bound.is_ipv6() {
        format!("https://[{host}]:{}", bound.port())
    } else {
        format!("https://{host}:{}", bound.port())
    };
    let node = args.node_name.clone().unwrap_or_else(node_name);
    pki::write_kubeconfig(&kubeconfig, &url, &credentials)?;
    let mut config = wasipod::RuntimeConfig::default().state_dir(dir.join("state"));
    if let Some(cache) = args
        .cache_dir
        .clone()
        .or_else(wasipod::RuntimeConfig::default_cache_dir)
    {
        config = config.cache_dir(cache);
    }
    // Pods outlive the daemon, as a kubelet's outlive a node restart.
    config.keep_records = true;
    config.node_name = node.clone();
    let runtime = wasipod::Runtime::new(config)?;
    let api = Arc::new(api::Api {
        runtime: runtime.clone(),
        node,
        base_dir: std::env::current_dir()?,
        changes: changes::Changes::default(),
        objects: objects::Objects::default(),
        namespaces: std::sync::Mutex::new(
            api::BUILT_IN_NAMESPACES
                .iter()
                .map(|n| n.to_string())
                .collect(),
        ),
        mirrors: Default::default(),
        disk: persist::Disk::open(&dir.join("objects"))?,
        static_errors: Default::default(),
    });
    api::follow_pods(&api);
    api::follow_events(&api);
    restore::run(&api, args.manifests.as_deref()).await;
    let token: Arc<str> = credentials.token.clone().into();
    let app = api::router(api.clone()).layer(axum::middleware::from_fn(move |req, next| {
        server::authenticate(token.clone(), req, next)
    }));
    let stop = CancellationToken::new();
    println!("wasipodd: serving {url}");
    println!("wasipodd: export KUBECONFIG={}", kubeconfig.display());
    let serving = tokio::spawn(server::serve(listener, credentials.tls, app, stop.clone()));
    if let Some(dir) = args.manifests.clone() {
        tokio::spawn(static_pods::run(
            api.clone(),
            dir,
            std::time::Duration::from_millis(args.manifests_interval_ms.max(10)),
            stop.clone(),
        ));
    }
    shutdown_signal().await;
    println!("wasipodd: stopping: every pod gets its termination sequence (records kept)");
    stop.cancel();
    let _ = serving.await;
    runtime.stop(None).await;
    Ok(())
}

/// A mutex's guard, whether or not a holder panicked.
pub fn sync_lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
