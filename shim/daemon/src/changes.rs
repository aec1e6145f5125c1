//! Resource versions and watch events: every change of a served object gets
//! the next resource version, is kept in a bounded history (so that a
//! watch from the version a list returned misses nothing), and is sent to
//! live watchers.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;
use tokio::sync::broadcast;

/// How many changes a watch can start behind the newest.
const HISTORY: usize = 4096;

/// One change, as a watch event carries it.
#[derive(Debug, Clone)]
pub struct Change {
    /// Its resource version.
    pub rv: u64,
    /// The resource (`pods`, ...).
    pub resource: &'static str,
    /// `ADDED`, `MODIFIED` or `DELETED`.
    pub kind: &'static str,
    /// The object after the change (its `metadata.resourceVersion` set).
    pub object: Value,
}

/// A watch asked to start at a version the history no longer holds: the
/// API server's `410 Gone` (`Expired`).
#[derive(Debug)]
pub struct Expired;

/// The changes of every served object.
pub struct Changes {
    rv: AtomicU64,
    /// The version this process started at: a watch from an older one (a
    /// version an earlier run of the daemon gave) is `Expired`, so that
    /// the client lists again.
    first: u64,
    history: Mutex<VecDeque<Change>>,
    /// The version of each object's last change, by (resource, namespace,
    /// name).
    versions: Mutex<HashMap<(&'static str, String, String), u64>>,
    live: broadcast::Sender<Change>,
}

use crate::sync_lock as lock;

impl Default for Changes {
    /// Versions start at the time in microseconds: above any version an
    /// earlier run of the daemon gave.
    fn default() -> Self {
        let first = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_micros() as u64);
        Self {
            rv: AtomicU64::new(first),
            first,
            history: Mutex::new(VecDeque::new()),
            versions: Mutex::new(HashMap::new()),
            live: broadcast::channel(HISTORY).0,
        }
    }
}

impl Changes {
    /// The newest resource version (what a list reports).
    pub fn current(&self) -> u64 {
        self.rv.load(Ordering::SeqCst)
    }

    /// The version of an object's last change.
    pub fn version_of(&self, resource: &'static str, namespace: &str, name: &str) -> Option<u64> {
        lock(&self.versions)
            .get(&(resource, namespace.to_string(), name.to_string()))
            .copied()
    }

    /// Records a change of `object` and tells the watchers; returns its
    /// version.
    pub fn record(&self, resource: &'static str, kind: &'static str, mut object: Value) -> u64 {
        let namespace = object["metadata"]["namespace"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or("")
            .to_string();
        // One lock orders versions and history alike.
        let mut history = lock(&self.history);
        let rv = self.rv.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
        }
        {
            let mut versions = lock(&self.versions);
            if kind == "DELETED" {
                versions.remove(&(resource, namespace, name));
            } else {
                versions.insert((resource, namespace, name), rv);
            }
        }
        let change = Change {
            rv,
            resource,
            kind,
            object,
        };
        history.push_back(change.clone());
        while history.len() > HISTORY {
            history.pop_front();
        }
        let _ = self.live.send(change);
        rv
    }

    /// Live changes from now on, and the changes after `rv` already made
    /// (subscribed first, so that nothing falls between the two).
    pub fn watch_from(
        &self,
        rv: u64,
    ) -> Result<(Vec<Change>, broadcast::Receiver<Change>), Expired> {
        let history = lock(&self.history);
        let live = self.live.subscribe();
        let forgotten = history
            .front()
            .is_some_and(|oldest| oldest.rv > rv + 1 && history.len() >= HISTORY);
        if forgotten || rv < self.first {
            return Err(Expired);
        }
        let backlog = history.iter().filter(|c| c.rv > rv).cloned().collect();
        Ok((backlog, live))
    }
}

/// A label or field selector: comma-separated `key=value`, `key==value`,
/// `key!=value`, `key` (exists) and `!key` (absent) terms, all of which
/// must hold.
#[derive(Debug, Default, Clone)]
pub struct Selector {
    terms: Vec<(String, Op)>,
}

#[derive(Debug, Clone)]
enum Op {
    Equals(String),
    NotEquals(String),
    Exists,
    Absent,
}

impl Selector {
    /// Parses a selector (empty: matches everything).
    pub fn parse(text: Option<&str>) -> Result<Self, String> {
        let mut terms = Vec::new();
        for term in text
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            let parsed = if let Some((k, v)) = term.split_once("!=") {
                (k.trim().to_string(), Op::NotEquals(v.trim().to_string()))
            } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                (k.trim().to_string(), Op::Equals(v.trim().to_string()))
            } else if let Some(k) = term.strip_prefix('!') {
                (k.trim().to_string(), Op::Absent)
            } else if term.contains([' ', '(', ')']) {
                return Err(format!(
                    "unable to parse requirement: {term:?} (set-based selectors are not served)"
                ));
            } else {
                (term.to_string(), Op::Exists)
            };
            terms.push(parsed);
        }
        Ok(Self { terms })
    }

    /// Whether the values `get` gives for the keys satisfy every term.
    pub fn matches(&self, get: impl Fn(&str) -> Option<String>) -> bool {
        self.terms.iter().all(|(key, op)| {
            let value = get(key);
            match op {
                Op::Equals(v) => value.as_deref() == Some(v.as_str()),
                Op::NotEquals(v) => value.as_deref() != Some(v.as_str()),
                Op::Exists => value.is_some(),
                Op::Absent => value.is_none(),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_watch_starts_where_a_list_stopped() {
        let c = Changes::default();
        let pod =
            |name: &str| serde_json::json!({"metadata": {"name": name, "namespace": "default"}});
        c.record("pods", "ADDED", pod("a"));
        let listed = c.current();
        c.record("pods", "MODIFIED", pod("a"));
        let (backlog, _live) = c.watch_from(listed).unwrap();
        assert_eq!(backlog.len(), 1);
        assert_eq!(backlog[0].kind, "MODIFIED");
        assert_eq!(
            backlog[0].object["metadata"]["resourceVersion"],
            (listed + 1).to_string()
        );
        assert_eq!(c.version_of("pods", "default", "a"), Some(listed + 1));
        c.record("pods", "DELETED", pod("a"));
        assert_eq!(c.version_of("pods", "default", "a"), None);
    }

    #[test]
    fn selectors_hold_all_their_terms() {
        let labels = |k: &str| match k {
            "app" => Some("web".to_string()),
            "tier" => Some("front".to_string()),
            _ => None,
        };
        assert!(Selector::parse(None).unwrap().matches(labels));
        assert!(
            Selector::parse(Some("app=web,tier!=back"))
                .unwrap()
                .matches(labels)
        );
        assert!(
            Selector::parse(Some("app==web,!canary"))
                .unwrap()
                .matches(labels)
        );
        assert!(
            !Selector::parse(Some("app=web,canary"))
                .unwrap()
                .matches(labels)
        );
        assert!(!Selector::parse(Some("tier=back")).unwrap().matches(labels));
        assert!(Selector::parse(Some("env in (a,b)")).is_err());
    }
}
