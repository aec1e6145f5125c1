//! `resources.limits` and `resources.requests`: quantities checked, requests
//! defaulted from limits and kept at or below them, as the API server does.

use std::collections::BTreeMap;

use serde_yaml_ng::Value;

use super::*;
use crate::api::quantity::parse_quantity;
use crate::spec::resources::{ResourceList, Resources};

impl Validator<'_> {
    /// Steps: parse each list (unknown resource names are refused); default
    /// each missing request from its limit; refuse a request above its
    /// limit.
    pub(super) fn resources(&mut self, r: &manifest::Resources, field: &str) -> Resources {
        let limits = self.resource_list(&r.limits, &format!("{field}.resources.limits"));
        let explicit = self.resource_list(&r.requests, &format!("{field}.resources.requests"));
        let pairs = [
            ("cpu", explicit.cpu_millis, limits.cpu_millis),
            ("memory", explicit.memory, limits.memory),
            (
                "ephemeral-storage",
                explicit.ephemeral_storage,
                limits.ephemeral_storage,
            ),
        ];
        for (name, request, limit) in pairs {
            if let (Some(req), Some(lim)) = (request, limit)
                && req > lim
            {
                let text = |m: &BTreeMap<String, Value>| m.get(name).map(value_text);
                self.err(
                    format!("{field}.resources.requests[{name}]"),
                    format!(
                        "Invalid value: {:?}: must be less than or equal to {name} limit of {}",
                        text(&r.requests).unwrap_or_default(),
                        text(&r.limits).unwrap_or_default()
                    ),
                );
            }
        }
        Resources {
            requests: explicit.or(limits),
            limits,
        }
    }

    fn resource_list(&mut self, list: &BTreeMap<String, Value>, field: &str) -> ResourceList {
        let mut out = ResourceList::default();
        for (k, v) in list {
            let f = format!("{field}[{k}]");
            let text = value_text(v);
            let value = match parse_quantity(&text) {
                Ok(v) => v,
                Err(e) => {
                    self.err(f, format!("Invalid value: {e}"));
                    continue;
                }
            };
            match k.as_str() {
                // Kubernetes keeps CPU to the millicore, rounding up.
                "cpu" => out.cpu_millis = Some((value * 1000.0).ceil().min(u64::MAX as f64) as u64),
                "memory" => out.memory = Some(value.ceil().min(u64::MAX as f64) as u64),
                "ephemeral-storage" => {
                    out.ephemeral_storage = Some(value.ceil().min(u64::MAX as f64) as u64)
                }
                other => self.err(
                    f,
                    format!("Unsupported value: {other:?}: supported values: \"cpu\", \"memory\", \"ephemeral-storage\""),
                ),
            }
        }
        out
    }
}
