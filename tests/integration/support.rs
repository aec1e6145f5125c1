//! Test fixture: a runtime with Kubernetes durations scaled down, manifests
//! whose images resolve against the built sample guests, and a guard that
//! prints the pod's events and every container's output when a test fails.

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::watch;
use wasipod::{Pod, PodSpec, PodStatus, Runtime, RuntimeConfig};

/// Generous bound so that a broken test fails instead of hanging; never a
/// statement about speed.
pub const PATIENCE: Duration = Duration::from_secs(120);

pub struct Fixture {
    pub runtime: Runtime,
    // Owned so that the folders live as long as the runtime.
    _state: tempfile::TempDir,
    _cache: tempfile::TempDir,
}

impl Fixture {
    /// Kubernetes durations run 1000x faster (10 s back-off = 10 ms).
    pub fn new() -> Self {
        Self::with(|c| c)
    }

    pub fn with(f: impl FnOnce(RuntimeConfig) -> RuntimeConfig) -> Self {
        let state = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        let mut config = RuntimeConfig::default()
            .state_dir(state.path())
            .cache_dir(cache.path())
            .time_scale(0.001);
        // Tests read logs after deleting their pods.
        config.retain_deleted_pods = true;
        let config = f(config);
        Self {
            runtime: Runtime::new(config).unwrap(),
            _state: state,
            _cache: cache,
        }
    }

    /// Validates a manifest; images are names in the sample images folder.
    pub fn spec(&self, yaml: &str) -> PodSpec {
        PodSpec::from_yaml(yaml, images()).unwrap_or_else(|e| panic!("manifest rejected:\n{e}"))
    }

    pub async fn start(&self, yaml: &str) -> Watched {
        let pod = self
            .runtime
            .create_pod(self.spec(yaml))
            .await
            .unwrap_or_else(|e| panic!("create_pod: {e}"));
        Watched::new(pod)
    }

    /// Creates the pod and waits until it has finished.
    pub async fn run(&self, yaml: &str) -> (Watched, PodStatus) {
        let w = self.start(yaml).await;
        let status = w.wait().await;
        (w, status)
    }
}

/// Polls `f` until it holds (for facts no status change announces, such as
/// a line in a log).
pub async fn eventually(what: &str, f: impl Fn() -> bool) {
    let result = tokio::time::timeout(PATIENCE, async {
        while !f() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(result.is_ok(), "never happened: {what}");
}

pub fn images() -> PathBuf {
    wasipod_samples::images_dir()
}

/// A pod under test. When the test panics, its events and logs are printed.
pub struct Watched {
    pub pod: Pod,
}

impl Watched {
    pub fn new(pod: Pod) -> Self {
        Self { pod }
    }

    pub async fn wait(&self) -> PodStatus {
        tokio::time::timeout(PATIENCE, self.pod.wait())
            .await
            .expect("the pod did not finish")
    }

    /// Waits until the status satisfies `f`.
    pub async fn until(&self, what: &str, f: impl Fn(&PodStatus) -> bool) -> PodStatus {
        let mut rx: watch::Receiver<PodStatus> = self.pod.watch();
        let result = tokio::time::timeout(PATIENCE, rx.wait_for(|s| f(s))).await;
        match result {
            Ok(Ok(s)) => s.clone(),
            _ => panic!(
                "status never reached: {what}\nlast status: {:#?}",
                self.pod.status()
            ),
        }
    }

    pub fn log(&self, container: &str) -> String {
        String::from_utf8_lossy(
            &self
                .pod
                .logs(&wasipod::LogOptions::container(container))
                .unwrap(),
        )
        .into_owned()
    }

    pub fn terminated(&self, container: &str) -> wasipod::status::StateTerminated {
        let status = self.pod.status();
        let c = status
            .container(container)
            .unwrap_or_else(|| panic!("no container {container}"));
        c.state
            .terminated()
            .cloned()
            .unwrap_or_else(|| panic!("{container} is not terminated: {:?}", c.state))
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        eprintln!("---- pod {} events ----", self.pod.name());
        for e in self.pod.events() {
            eprintln!("{:?} {} {}: {}", e.type_, e.reason, e.object, e.message);
        }
        let status = self.pod.status();
        for c in status
            .init_container_statuses
            .iter()
            .chain(&status.container_statuses)
        {
            let log = self
                .pod
                .logs(&wasipod::LogOptions::container(&c.name))
                .unwrap_or_default();
            eprintln!(
                "---- {} ({:?}) ----\n{}",
                c.name,
                c.state,
                String::from_utf8_lossy(&log)
            );
        }
    }
}
