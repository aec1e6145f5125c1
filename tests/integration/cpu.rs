//! CPU: `limits.cpu` is a quota per 100 ms period (the guest is throttled,
//! never killed), `requests.cpu` weighs a contended thread. The guests
//! here share one thread (a current-thread runtime), so the ratios hold
//! however busy the machine is.

use crate::support::*;

/// How many rounds of work each container did in `ms` of wall time, run
/// side by side in one pod.
async fn rounds(f: &Fixture, name: &str, containers: &[(&str, &str)], ms: u64) -> Vec<u64> {
    let list: String = containers
        .iter()
        .map(|(c, resources)| {
            format!("  - {{name: {c}, image: toolbox-p1.wasm, args: [work, '{ms}'], resources: {resources}}}\n")
        })
        .collect();
    let (w, status) = f
        .run(&format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  restartPolicy: Never\n  containers:\n{list}"
        ))
        .await;
    assert_eq!(status.phase, wasipod::PodPhase::Succeeded, "{status:?}");
    containers
        .iter()
        .map(|(c, _)| {
            let log = w.log(c);
            log.trim()
                .strip_prefix("work: ")
                .and_then(|r| r.strip_suffix(" rounds"))
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("{c}: {log}"))
        })
        .collect()
}

#[tokio::test(flavor = "current_thread")]
async fn a_cpu_limit_throttles_and_a_cpu_request_weighs() {
    let f = Fixture::new();
    let got = rounds(
        &f,
        "quota",
        &[("limited", "{limits: {cpu: 250m}}"), ("free", "{}")],
        1000,
    )
    .await;
    let (limited, free) = (got[0] as f64, got[1] as f64);
    eprintln!(
        "250m: {limited} rounds, unlimited: {free} rounds ({:.2})",
        limited / free
    );
    assert!(
        limited > 0.0 && limited < free / 2.0,
        "a guest limited to 250m makes less than half the progress of an unlimited one: {got:?}"
    );
    let got = rounds(
        &f,
        "shares",
        &[("heavy", "{requests: {cpu: '1'}}"), ("light", "{}")],
        600,
    )
    .await;
    let (heavy, light) = (got[0] as f64, got[1] as f64);
    eprintln!(
        "request 1: {heavy} rounds, none: {light} rounds ({:.2})",
        heavy / light
    );
    assert!(
        heavy > 1.5 * light,
        "a guest requesting 1 CPU outweighs one requesting none: {got:?}"
    );
}
