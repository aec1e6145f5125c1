//! Kubernetes durations in a runtime's time (`RuntimeConfig::time_scale`),
//! saturating so that any duration from a manifest or a caller is safe, and
//! printed as the kubelet prints them.

use std::time::Duration;

/// Longer than any wait a pod can mean (a grace period of `i64::MAX`
/// seconds waits this long): every deadline saturates here instead of
/// overflowing.
pub(crate) const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// `d × factor`, saturating at [`FOREVER`] (never panics).
pub(crate) fn scale(d: Duration, factor: f64) -> Duration {
    let secs = d.as_secs_f64() * factor;
    if secs.is_nan() || secs <= 0.0 {
        Duration::ZERO
    } else if secs >= FOREVER.as_secs_f64() {
        FOREVER
    } else {
        Duration::from_secs_f64(secs)
    }
}

/// An elapsed wall time back in Kubernetes time (undoes `factor`).
pub(crate) fn unscale(d: Duration, factor: f64) -> Duration {
    if factor > 0.0 {
        scale(d, 1.0 / factor)
    } else {
        FOREVER
    }
}

/// The instant `d` from now, saturating at [`FOREVER`].
pub(crate) fn after(d: Duration) -> tokio::time::Instant {
    tokio::time::Instant::now() + d.min(FOREVER)
}

/// `10s`, `1m20s`, `5m0s`, as the kubelet prints durations.
pub(crate) fn human(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let s = d.as_secs();
    if s < 60 {
        // Two decimals at most, trailing zeros dropped: `1.88s`, `1.5s`, `10s`.
        let centis = (d.as_millis() + 5) / 10;
        let text = format!("{}.{:02}", centis / 100, centis % 100);
        return format!("{}s", text.trim_end_matches('0').trim_end_matches('.'));
    }
    if s < 3600 {
        return format!("{}m{}s", s / 60, s % 60);
    }
    format!("{}h{}m{}s", s / 3600, s % 3600 / 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_like_the_kubelet() {
        assert_eq!(human(Duration::from_secs(10)), "10s");
        assert_eq!(human(Duration::from_secs(300)), "5m0s");
        assert_eq!(human(Duration::from_secs(80)), "1m20s");
        assert_eq!(human(Duration::from_millis(1_882_776)), "31m22s");
        assert_eq!(human(Duration::from_nanos(1_882_776_092)), "1.88s");
        assert_eq!(human(Duration::from_millis(1500)), "1.5s");
        assert_eq!(human(Duration::from_millis(999)), "999ms");
        assert_eq!(human(Duration::from_secs(7380)), "2h3m0s");
    }

    #[test]
    fn scaling_saturates() {
        assert_eq!(scale(Duration::MAX, 1.0), FOREVER);
        assert_eq!(scale(Duration::from_secs(10), 0.5), Duration::from_secs(5));
        assert_eq!(
            unscale(Duration::from_secs(5), 0.5),
            Duration::from_secs(10)
        );
        assert_eq!(unscale(Duration::from_secs(5), 0.0), FOREVER);
    }
}
