//! Environment values and Kubernetes' `$(VAR)` expansion.

use super::ContainerSpec;

/// Where an environment variable's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvValue {
    /// `value:`, in which `$(VAR)` refers to earlier variables.
    Text(String),
    /// A value taken as it is (a pod field, a ConfigMap or Secret key).
    Fixed(String),
    /// `fieldRef: status.podIP` / `status.podIPs`: known once the pod has
    /// its address.
    PodIp,
}

/// The most bytes a container's argv and environment may take once
/// `$(VAR)` is expanded (Linux's whole `ARG_MAX` is 2 MiB): a manifest of a
/// few KiB whose variables each double the previous one is refused instead
/// of allocating gigabytes.
pub const MAX_EXPANDED_BYTES: usize = 1 << 20;

/// A guest's environment: names and values, in order.
pub type Environment = Vec<(String, String)>;

/// argv and environment exceed [`MAX_EXPANDED_BYTES`] once expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpansionTooLarge {
    /// `env` or `args`.
    pub field: &'static str,
    /// The variable (or argument) whose expansion crossed the bound.
    pub item: String,
}

impl std::fmt::Display for ExpansionTooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: Invalid value: {:?}: argv and environment expand to more than {MAX_EXPANDED_BYTES} bytes",
            self.field, self.item
        )
    }
}

impl std::error::Error for ExpansionTooLarge {}

impl ContainerSpec {
    /// argv and environment for a run in a pod with address `pod_ip`, with
    /// the `$(VAR)` expansion of Kubernetes applied, at most
    /// [`MAX_EXPANDED_BYTES`] in all.
    pub fn resolve(&self, pod_ip: &str) -> Result<(Vec<String>, Environment), ExpansionTooLarge> {
        let mut budget = MAX_EXPANDED_BYTES;
        let too_large = |field: &'static str, item: &str| ExpansionTooLarge {
            field,
            item: item.to_string(),
        };
        let mut env: Vec<(String, String)> = Vec::with_capacity(self.env.len());
        for (name, value) in &self.env {
            let value = match value {
                EnvValue::Text(t) => expand(
                    t,
                    |n| env.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str()),
                    budget,
                )
                .ok_or_else(|| too_large("env", name))?,
                EnvValue::Fixed(v) => v.clone(),
                EnvValue::PodIp => pod_ip.to_string(),
            };
            budget = budget
                .checked_sub(name.len() + value.len() + 2)
                .ok_or_else(|| too_large("env", name))?;
            match env.iter_mut().find(|(k, _)| k == name) {
                Some(slot) => slot.1 = value,
                None => env.push((name.clone(), value)),
            }
        }
        let lookup = |n: &str| env.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
        let mut argv = Vec::with_capacity(self.args.len());
        for a in &self.args {
            let value = expand(a, lookup, budget).ok_or_else(|| too_large("args", a))?;
            budget = budget
                .checked_sub(value.len() + 1)
                .ok_or_else(|| too_large("args", a))?;
            argv.push(value);
        }
        Ok((argv, env))
    }
}

/// Kubernetes' `$(VAR)` expansion: `$(NAME)` becomes the variable's value when
/// defined, `$$` is an escaped `$`, anything else is left as written.
/// `None` when the result would be longer than `limit` bytes.
pub(crate) fn expand<'v>(
    text: &str,
    lookup: impl Fn(&str) -> Option<&'v str>,
    limit: usize,
) -> Option<String> {
    let mut out = String::with_capacity(text.len().min(limit));
    let mut rest = text;
    let push = |out: &mut String, s: &str| -> Option<()> {
        (out.len() + s.len() <= limit).then(|| out.push_str(s))
    };
    while let Some(i) = rest.find('$') {
        push(&mut out, &rest[..i])?;
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            push(&mut out, "$")?;
            rest = tail;
        } else if let Some(body) = after.strip_prefix('(') {
            match body.find(')') {
                Some(end) => {
                    match lookup(&body[..end]) {
                        Some(value) => push(&mut out, value)?,
                        // Left as written: `$(NAME)`.
                        None => push(&mut out, &rest[i..i + end + 3])?,
                    }
                    rest = &body[end + 1..];
                }
                None => {
                    push(&mut out, "$(")?;
                    rest = body;
                }
            }
        } else {
            push(&mut out, "$")?;
            rest = after;
        }
    }
    push(&mut out, rest)?;
    Some(out)
}
