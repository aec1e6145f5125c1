//! Kubernetes resource quantities (`128Mi`, `1G`, `0.5Gi`, `1e9`, `250m`).

/// Parses a quantity into its value (bytes for memory, cores for CPU).
///
/// Accepts Kubernetes' forms: a decimal number with an optional exponent
/// (`1e9`, `1.5E3`), or followed by a binary suffix (`Ki Mi Gi Ti Pi Ei`) or
/// a decimal one (`n u m k M G T P E`).
pub fn parse_quantity(text: &str) -> Result<f64, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'".into());
    }
    let digits_end = s
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_digit() || *c == '.' || *c == '+' || *c == '-'))
        .map(|(i, _)| i)
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(digits_end);
    let bad = || {
        format!(
            "{text:?}: quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
        )
    };
    if number.is_empty() || number.matches('.').count() > 1 || number[1..].contains(['+', '-']) {
        return Err(bad());
    }
    let value: f64 = number.parse().map_err(|_| bad())?;
    let multiplier = match suffix {
        "" => 1.0,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        exp if exp.starts_with(['e', 'E']) => {
            let e: i32 = exp[1..].parse().map_err(|_| bad())?;
            10f64.powi(e)
        }
        _ => return Err(bad()),
    };
    let v = value * multiplier;
    if v < 0.0 || !v.is_finite() {
        return Err(format!("{text:?}: must be greater than or equal to 0"));
    }
    Ok(v)
}

/// Parses a memory quantity into whole bytes (rounded up, as Kubernetes does).
pub fn parse_memory(text: &str) -> Result<u64, String> {
    let v = parse_quantity(text)?;
    if v > u64::MAX as f64 {
        return Err(format!("{text:?}: too large"));
    }
    Ok(v.ceil() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_forms() {
        assert_eq!(parse_memory("128Mi").unwrap(), 128 << 20);
        assert_eq!(parse_memory("1Gi").unwrap(), 1 << 30);
        assert_eq!(parse_memory("0.5Gi").unwrap(), 1 << 29);
        assert_eq!(parse_memory("500M").unwrap(), 500_000_000);
        assert_eq!(parse_memory("1e9").unwrap(), 1_000_000_000);
        assert_eq!(parse_memory("1048576").unwrap(), 1 << 20);
        assert_eq!(parse_memory("1k").unwrap(), 1000);
        assert_eq!(parse_memory("1Ki").unwrap(), 1024);
        assert!(parse_memory("12XB").is_err());
        assert!(parse_memory("").is_err());
        assert!(parse_memory("-1Mi").is_err());
        assert!(parse_memory("1.2.3").is_err());
        assert_eq!(parse_quantity("250m").unwrap(), 0.25);
    }
}
