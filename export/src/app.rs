//! What every target needs of an app: its command line on this machine and in a container,
//! names each engine accepts, and its explicit environment.

use std::path::Path;

use pmx_core::spec::{AppSpec, Interpreter};

/// Where a container holds the app's directory.
pub const CONTAINER_DIR: &str = "/app";

/// The program that runs the script, if any (`node`, `python3`, or the user's own).
pub fn interpreter(spec: &AppSpec) -> Option<String> {
    if spec.is_shell_command() {
        return Some("/bin/sh".into());
    }
    match &spec.interpreter {
        Interpreter::None => None,
        Interpreter::Program(p) => Some(p.clone()),
        Interpreter::Auto => Interpreter::for_extension(&spec.script).map(String::from),
    }
}

/// The script's path on this machine, without `.` and `..` (`/srv/cfg/../app.js` →
/// `/srv/app.js`).
pub fn script_path(spec: &AppSpec) -> String {
    let path = Path::new(&spec.cwd).join(spec.script.trim());
    let mut clean = std::path::PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                clean.pop();
            }
            std::path::Component::CurDir => {}
            other => clean.push(other),
        }
    }
    clean.to_string_lossy().into_owned()
}

/// The script's path in a container where the app's directory is `/app`, or `None` when it
/// lies outside that directory.
fn container_script(spec: &AppSpec) -> Option<String> {
    let path = script_path(spec);
    let rest = Path::new(&path).strip_prefix(&spec.cwd).ok()?;
    Some(
        Path::new(CONTAINER_DIR)
            .join(rest)
            .to_string_lossy()
            .into_owned(),
    )
}

/// Whether the script lies outside the app's directory (a container built from that
/// directory does not hold it).
pub fn script_outside_cwd(spec: &AppSpec) -> bool {
    !spec.is_shell_command() && container_script(spec).is_none()
}

/// The command line as pmx runs it (`sh -c` for a shell command line, the interpreter by
/// extension, node's source maps flag when asked for).
fn argv(spec: &AppSpec, script: String, program: Option<String>) -> Vec<String> {
    if spec.is_shell_command() {
        return spec.shell_argv();
    }
    let mut argv = Vec::new();
    if let Some(program) = program {
        let node = Path::new(&program).file_name().is_some_and(|n| n == "node");
        argv.push(program);
        argv.extend(spec.interpreter_args.iter().flatten().cloned());
        if node && spec.options.source_map_support == Some(true) {
            argv.push("--enable-source-maps".into());
        }
    }
    argv.push(script);
    argv.extend(spec.args.iter().cloned());
    argv
}

/// The command line on this machine.
pub fn host_argv(spec: &AppSpec) -> Vec<String> {
    argv(spec, script_path(spec), interpreter(spec))
}

/// The command line in the app's container: the script under `/app`, the interpreter by
/// name (the image puts it on PATH).
pub fn container_argv(spec: &AppSpec) -> Vec<String> {
    let program = interpreter(spec).map(|p| match Path::new(&p).file_name() {
        Some(name) if p != "/bin/sh" => name.to_string_lossy().into_owned(),
        _ => p,
    });
    let script = container_script(spec).unwrap_or_else(|| script_path(spec));
    argv(spec, script, program)
}

/// A name of lowercase letters, digits and `-`, starting with a letter, at most 63
/// characters: what Kubernetes (RFC 1035 labels), Compose and Nomad all accept.
pub fn dns_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    while out.contains("--") {
        out = out.replace("--", "-");
    }
    let mut out = out.trim_matches('-').to_string();
    if !out.starts_with(|c: char| c.is_ascii_lowercase()) {
        out.insert_str(0, "app-");
    }
    out.truncate(63);
    out.trim_end_matches('-').to_string()
}

/// A systemd unit name prefix: letters, digits, `:`, `_`, `.` and `-` (`@` introduces an
/// instance, so it is replaced).
pub fn unit_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ":_.-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Seconds for a duration in milliseconds, rounded up (engines count in seconds).
pub fn seconds(ms: u64) -> u64 {
    ms.div_ceil(1000)
}

/// Memory as Kubernetes writes it: `512Mi` when it divides, else bytes.
pub fn memory_quantity(bytes: u64) -> String {
    memory_in(bytes, ["Gi", "Mi", ""])
}

/// Memory as Compose writes it: `512m` when it divides, else bytes.
pub fn compose_memory(bytes: u64) -> String {
    memory_in(bytes, ["g", "m", "b"])
}

fn memory_in(bytes: u64, [gib, mib, unit]: [&str; 3]) -> String {
    if bytes.is_multiple_of(1 << 30) {
        format!("{}{gib}", bytes >> 30)
    } else if bytes.is_multiple_of(1 << 20) {
        format!("{}{mib}", bytes >> 20)
    } else {
        format!("{bytes}{unit}")
    }
}

/// The port and path of the app's health check URL (`http://127.0.0.1:3000/health`).
pub fn health_target(url: &str) -> Option<(u16, String)> {
    let parsed = pmx_core::listen::HttpUrl::parse(url).ok()?;
    let port = parsed.authority.rsplit_once(':')?.1.parse().ok()?;
    Some((port, parsed.path))
}

/// The TCP ports the app listens on (`listen`), in order.
pub fn tcp_ports(spec: &AppSpec) -> Vec<u16> {
    spec.listen_addrs()
        .iter()
        .filter_map(|a| a.port())
        .collect()
}

/// Shell quoting for a command shown in a comment or run through `sh -c`.
pub fn shell_quote(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}
