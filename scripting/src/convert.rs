//! `pmx convert`: a PM2 ecosystem file written out as the equivalent Rhai config, option for
//! option and value for value, so `pmx up` on the result gives the same plan.

use std::fmt::Write;
use std::path::Path;

use serde_json::Value;

use crate::ecosystem::{self, Format};
use crate::{ConfigError, Diagnostic};

/// Words Rhai reserves: such a key is written quoted.
const RESERVED: &[&str] = &[
    "true",
    "false",
    "let",
    "const",
    "if",
    "else",
    "switch",
    "do",
    "while",
    "until",
    "loop",
    "for",
    "in",
    "continue",
    "break",
    "return",
    "throw",
    "try",
    "catch",
    "fn",
    "private",
    "import",
    "export",
    "as",
    "global",
    "this",
    "is",
    "Fn",
    "call",
    "curry",
    "type_of",
    "print",
    "debug",
    "eval",
    "var",
    "static",
    "shared",
    "sync",
    "async",
    "await",
    "yield",
    "go",
    "spawn",
    "thread",
    "new",
    "use",
    "with",
    "module",
    "package",
    "super",
    "public",
    "protected",
    "exit",
    "default",
    "case",
    "match",
    "void",
    "null",
    "nil",
];

/// The Rhai text of an ecosystem file's apps.
pub fn to_rhai(file: &Path, source: &str) -> Result<String, ConfigError> {
    let fail = |message: String| ConfigError {
        file: file.display().to_string(),
        source: source.to_string(),
        diagnostics: vec![Diagnostic {
            line: 0,
            column: 0,
            message,
        }],
    };
    let format = match Format::of(file) {
        Some(Format::Rhai) => return Err(fail("already a Rhai config".into())),
        Some(format) => format,
        None => {
            return Err(fail(
                "not an ecosystem file: expected .js, .cjs, .mjs, .json, .yml, .yaml or .toml"
                    .into(),
            ));
        }
    };
    let value = ecosystem::parse(file, source, format).map_err(|diagnostics| ConfigError {
        file: file.display().to_string(),
        source: source.to_string(),
        diagnostics,
    })?;
    let apps = ecosystem::apps_of(value, None).map_err(fail)?;
    let name = file.file_name().map_or_else(
        || file.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let mut out = format!(
        "// Converted from {name} by `pmx convert`. Relative paths (script, cwd, env_file,\n\
         // logs) start at this file's directory, as they did at {name}'s: keep it there.\n\
         // Apply it with `pmx up FILE` (`--env NAME` merges env_NAME over env).\n"
    );
    for app in &apps {
        // Who it is first, then the options in alphabetical order.
        let first = ["name", "script", "args"];
        out.push_str("\napp(");
        write_object(&mut out, app, &first, 0);
        out.push_str(");\n");
    }
    Ok(out)
}

fn write_value(out: &mut String, value: &Value, depth: usize) {
    match value {
        Value::Null => out.push_str("()"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(out, item, depth + 1);
            }
            out.push(']');
        }
        Value::Object(map) => write_object(out, map, &[], depth),
    }
}

/// A map literal, the `first` keys (when present) before the others.
fn write_object(
    out: &mut String,
    map: &serde_json::Map<String, Value>,
    first: &[&str],
    depth: usize,
) {
    if map.is_empty() {
        out.push_str("#{}");
        return;
    }
    let indent = "    ".repeat(depth + 1);
    let leading = first.iter().filter_map(|k| map.get_key_value(*k));
    let rest = map.iter().filter(|(k, _)| !first.contains(&k.as_str()));
    out.push_str("#{\n");
    for (key, item) in leading.chain(rest) {
        out.push_str(&indent);
        write_key(out, key);
        out.push_str(": ");
        write_value(out, item, depth + 1);
        out.push_str(",\n");
    }
    out.push_str(&"    ".repeat(depth));
    out.push('}');
}

fn write_key(out: &mut String, key: &str) {
    let plain = key
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !RESERVED.contains(&key);
    if plain {
        out.push_str(key);
    } else {
        write_string(out, key);
    }
}

/// A double-quoted Rhai string (which does not interpolate).
fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}
