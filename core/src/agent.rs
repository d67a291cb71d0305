//! What a Node app's agent reports: the figures PM2's agent (`@pm2/io`) sends through
//! `process.send` — `axm:monitor` (metrics: heap, event loop latency, the app's own
//! `io.metric(...)`) and `axm:option:configuration` — which pmx's shim also sends for every
//! Node app. Kept per run, bounded: an app cannot make the daemon hold more than `MAX_KEYS`
//! entries of `MAX_VALUE` bytes each.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Entries kept per map.
pub const MAX_KEYS: usize = 64;
/// Bytes of JSON one entry may take.
pub const MAX_VALUE: usize = 1024;

/// Messages taken from one process per second at most: PM2's agent sends its figures once a
/// second, and a process that sends them in a loop must not keep the daemon parsing.
pub const MAX_PER_SECOND: u32 = 10;

/// Counts one process's agent messages in the current second.
#[derive(Debug, Default)]
pub struct Pace {
    second: u64,
    taken: u32,
}

impl Pace {
    /// Whether a message that came at `now_ms` is taken (`MAX_PER_SECOND` per second).
    pub fn admit(&mut self, now_ms: u64) -> bool {
        let second = now_ms / 1000;
        if second != self.second {
            (self.second, self.taken) = (second, 0);
        }
        self.taken += 1;
        self.taken <= MAX_PER_SECOND
    }
}

/// PM2's `axm_monitor` and `axm_options` of one run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentReport {
    pub monitor: Map<String, Value>,
    pub options: Map<String, Value>,
}

/// One message of the agent.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentMessage {
    pub kind: AgentKind,
    pub data: Map<String, Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentKind {
    Monitor,
    Options,
}

impl AgentMessage {
    /// `{ type: "axm:monitor" | "axm:option:configuration", data: {...} }`, as the agent
    /// sends it; anything else is not one.
    pub fn of(message: &Value) -> Option<Self> {
        let kind = Self::kind_of(message)?;
        let data = message.get("data")?.as_object()?.clone();
        Some(AgentMessage { kind, data })
    }

    /// Which agent message `message` is, without reading its data.
    pub fn kind_of(message: &Value) -> Option<AgentKind> {
        match message.get("type")?.as_str()? {
            "axm:monitor" => Some(AgentKind::Monitor),
            "axm:option:configuration" => Some(AgentKind::Options),
            _ => None,
        }
    }
}

impl AgentReport {
    /// Merges a message in: entries are replaced by name; new names beyond `MAX_KEYS`, and
    /// entries larger than `MAX_VALUE`, are left out.
    pub fn take(&mut self, message: AgentMessage) {
        let map = match message.kind {
            AgentKind::Monitor => &mut self.monitor,
            AgentKind::Options => &mut self.options,
        };
        for (name, value) in message.data {
            let size = name.len() + serde_json::to_string(&value).map_or(usize::MAX, |t| t.len());
            if size > MAX_VALUE || (!map.contains_key(&name) && map.len() >= MAX_KEYS) {
                continue;
            }
            map.insert(name, value);
        }
    }

    /// The metrics as `name: value unit`, for people.
    pub fn metrics(&self) -> Vec<(String, String)> {
        self.monitor
            .iter()
            .map(|(name, m)| {
                let value = match m.get("value") {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Null) | None => "-".into(),
                    Some(other) => other.to_string(),
                };
                let unit = m.get("unit").and_then(Value::as_str).unwrap_or_default();
                (
                    name.clone(),
                    format!("{value} {unit}").trim_end().to_string(),
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_process_gets_so_many_messages_a_second_taken() {
        let mut pace = Pace::default();
        let taken = (0..100).filter(|_| pace.admit(5_000)).count();
        assert_eq!(taken, MAX_PER_SECOND as usize);
        assert!(!pace.admit(5_999));
        assert!(pace.admit(6_000), "a new second, a new count");
    }

    #[test]
    fn agent_messages_merge_by_name_within_bounds() {
        let mut report = AgentReport::default();
        let monitor =
            |data: Value| AgentMessage::of(&json!({ "type": "axm:monitor", "data": data }));
        report.take(monitor(json!({ "Heap Size": { "value": "6.98", "unit": "MiB" } })).unwrap());
        report.take(
            monitor(
                json!({ "users": { "value": 3 }, "Heap Size": { "value": "7.10", "unit": "MiB" } }),
            )
            .unwrap(),
        );
        assert_eq!(
            report.metrics(),
            [
                ("Heap Size".to_string(), "7.10 MiB".to_string()),
                ("users".into(), "3".into())
            ]
        );
        let options = AgentMessage::of(
            &json!({ "type": "axm:option:configuration", "data": { "module_name": "api" } }),
        );
        report.take(options.unwrap());
        assert_eq!(report.options["module_name"], "api");
        assert_eq!(
            AgentMessage::of(&json!({ "type": "other", "data": {} })),
            None
        );
        assert_eq!(AgentMessage::of(&json!("ready")), None);

        let big = "x".repeat(MAX_VALUE);
        report.take(monitor(json!({ "big": { "value": big } })).unwrap());
        assert!(!report.monitor.contains_key("big"));
        let many: Map<String, Value> = (0..MAX_KEYS * 2)
            .map(|i| (format!("m{i}"), json!(i)))
            .collect();
        report.take(monitor(Value::Object(many)).unwrap());
        assert_eq!(report.monitor.len(), MAX_KEYS);
    }
}
