//! YAML documents from JSON values (Kubernetes and Compose read YAML; keys come out sorted,
//! which puts `apiVersion` and `kind` first).

use serde_json::Value;

/// Words a YAML 1.1 reader (PyYAML, so docker-compose 1.x) takes for booleans where we mean
/// strings (`restart: no`); the emitter writes them bare, as YAML 1.2 allows.
const YAML11_WORDS: [&str; 16] = [
    "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off",
    "OFF",
];

pub fn document(value: &Value) -> String {
    let text = yaml_serde::to_string(value).unwrap_or_else(|e| format!("# cannot render: {e}\n"));
    // The documents hold no booleans of their own (every value is built as a string or a
    // number), so a bare word of YAML 1.1 is always a string: quote it.
    text.lines()
        .map(|line| {
            let (head, word) = match line.rsplit_once(": ") {
                Some((head, word)) => (format!("{head}: "), word),
                None => match line.trim_start().strip_prefix("- ") {
                    Some(word) => (line[..line.len() - word.len()].to_string(), word),
                    None => return format!("{line}\n"),
                },
            };
            if YAML11_WORDS.contains(&word) {
                format!("{head}'{word}'\n")
            } else {
                format!("{line}\n")
            }
        })
        .collect()
}

/// Several documents in one file, separated as `kubectl apply -f` expects.
pub fn documents(values: &[Value]) -> String {
    values
        .iter()
        .map(document)
        .collect::<Vec<_>>()
        .join("---\n")
}
