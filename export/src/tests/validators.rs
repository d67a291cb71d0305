//! The exported files as the engines' own tools read them: `systemd-analyze verify` for the
//! units, `kubernetes-validate` (schemas of a pinned Kubernetes, offline) for the manifests,
//! `docker-compose config` for Compose, and the fields of Nomad's job specification for its
//! JSON. `.ci/run` installs the tools; without them these tests fail under CI (`PMX_CI`).
//! And a unit's `ExecStart=` and environment run as systemd would run them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::{GOLDEN_INPUTS, input_of, options, repo};
use crate::{Export, Options, Target, export};

/// The Kubernetes version the manifests are checked against.
const KUBERNETES: &str = "1.33.0";

/// The program on PATH, or `None` (and SKIPPED) outside CI; under CI a missing tool fails.
fn tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("PMX_CI").is_none(),
            "{name} is not on PATH (.ci/run installs it)"
        );
        eprintln!("SKIPPED: {name} is not on PATH (.ci/run installs it)");
    }
    found
}

/// Writes each example's export into its own directory; returns them.
fn written(
    target: Target,
    opts: impl Fn(&Path) -> Options,
) -> (tempfile::TempDir, Vec<(PathBuf, Export)>) {
    let root = tempfile::tempdir().expect("tempdir");
    let mut dirs = Vec::new();
    for rel in GOLDEN_INPUTS {
        let input = input_of(&repo().join(rel));
        let dir = root.path().join(&input.name);
        std::fs::create_dir_all(&dir).expect("dir");
        let out = export(&input, target, &opts(&dir));
        for f in &out.files {
            std::fs::write(dir.join(&f.name), &f.content).expect("write");
        }
        dirs.push((dir, out));
    }
    (root, dirs)
}

fn run(program: &Path, args: &[&str], dir: &Path) -> (bool, String) {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run validator");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn files(dir: &Path, keep: impl Fn(&str) -> bool) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| keep(n))
        .collect();
    names.sort();
    names
}

#[test]
fn systemd_analyze_verifies_every_unit() {
    let Some(verify) = tool("systemd-analyze") else {
        return;
    };
    let (_root, dirs) = written(Target::Systemd, |_| options());
    for (dir, _) in dirs {
        let units = files(&dir, |n| !n.ends_with(".env"));
        assert!(!units.is_empty());
        let mut args = vec!["verify", "--man=no"];
        args.extend(units.iter().map(String::as_str));
        let (ok, text) = run(&verify, &args, &dir);
        assert!(
            ok && text.trim().is_empty(),
            "{}: {units:?}\n{text}",
            dir.display()
        );
    }
    // The check itself can fail: a calendar event systemd cannot parse is refused.
    let bad = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        bad.path().join("x.timer"),
        "[Timer]\nOnCalendar=Mox *-*-* 4:00\nUnit=x.service\n",
    )
    .expect("write");
    let (ok, _) = run(&verify, &["verify", "--man=no", "x.timer"], bad.path());
    assert!(!ok, "systemd-analyze accepted a broken timer");
}

#[test]
fn kubernetes_validate_accepts_every_manifest() {
    let Some(validate) = tool("kubernetes-validate") else {
        return;
    };
    for image in [None, Some("registry.example/app:1.2".to_string())] {
        let (_root, dirs) = written(Target::Kubernetes, |_| Options {
            image: image.clone(),
            ..options()
        });
        for (dir, _) in dirs {
            let manifests = files(&dir, |n| n.ends_with(".yaml"));
            let mut args = vec!["--strict", "--quiet", "-k", KUBERNETES];
            args.extend(manifests.iter().map(String::as_str));
            let (ok, text) = run(&validate, &args, &dir);
            assert!(ok, "{}: {manifests:?}\n{text}", dir.display());
        }
    }
    let bad = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        bad.path().join("d.yaml"),
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {replicas: two}\n",
    )
    .expect("write");
    let (ok, _) = run(
        &validate,
        &["--strict", "--quiet", "-k", KUBERNETES, "d.yaml"],
        bad.path(),
    );
    assert!(!ok, "kubernetes-validate accepted a broken manifest");
}

#[test]
fn docker_compose_config_accepts_every_file() {
    let Some(compose) = tool("docker-compose") else {
        return;
    };
    let (_root, dirs) = written(Target::Compose, |dir| Options {
        out_dir: Some(dir.to_string_lossy().into_owned()),
        ..options()
    });
    for (dir, _) in dirs {
        let (ok, text) = run(&compose, &["-f", "compose.yaml", "config", "-q"], &dir);
        assert!(ok, "{}:\n{text}", dir.display());
    }
    let bad = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        bad.path().join("compose.yaml"),
        "services:\n  a:\n    image: x\n    restart: no\n",
    )
    .expect("write");
    let (ok, _) = run(
        &compose,
        &["-f", "compose.yaml", "config", "-q"],
        bad.path(),
    );
    assert!(!ok, "docker-compose accepted `restart: no` (a boolean)");
}

/// The fields Nomad's job specification documents for each object of the API's JSON
/// (developer.hashicorp.com/nomad/api-docs/json-jobs), for what the export writes.
fn nomad_fields() -> BTreeMap<&'static str, &'static [&'static str]> {
    BTreeMap::from([
        (
            "Job",
            &["ID", "Name", "Type", "Datacenters", "TaskGroups", "Meta"][..],
        ),
        (
            "TaskGroup",
            &[
                "Name",
                "Count",
                "RestartPolicy",
                "ReschedulePolicy",
                "Networks",
                "Tasks",
            ][..],
        ),
        (
            "RestartPolicy",
            &["Attempts", "Interval", "Delay", "Mode"][..],
        ),
        (
            "ReschedulePolicy",
            &[
                "Attempts",
                "Interval",
                "Delay",
                "DelayFunction",
                "MaxDelay",
                "Unlimited",
            ][..],
        ),
        ("Network", &["Mode", "ReservedPorts", "DynamicPorts"][..]),
        ("Port", &["Label", "Value", "To"][..]),
        (
            "Task",
            &[
                "Name",
                "Driver",
                "Config",
                "Env",
                "KillSignal",
                "KillTimeout",
                "Templates",
                "Resources",
                "Services",
            ][..],
        ),
        (
            "Template",
            &["EmbeddedTmpl", "DestPath", "Envvars", "ChangeMode"][..],
        ),
        ("Resources", &["CPU", "MemoryMB", "MemoryMaxMB"][..]),
        (
            "Service",
            &["Name", "Provider", "PortLabel", "Checks", "Tags"][..],
        ),
        (
            "Check",
            &["Type", "Path", "PortLabel", "Interval", "Timeout", "Name"][..],
        ),
    ])
}

fn check_object(kind: &str, value: &Value, problems: &mut Vec<String>) {
    let fields = nomad_fields();
    let Some(object) = value.as_object() else {
        problems.push(format!("{kind}: not an object"));
        return;
    };
    for (key, v) in object {
        if !fields[kind].contains(&key.as_str()) {
            problems.push(format!("{kind}.{key}: not a documented field"));
        }
        let child = match key.as_str() {
            "TaskGroups" => "TaskGroup",
            "Networks" => "Network",
            "ReservedPorts" | "DynamicPorts" => "Port",
            "Tasks" => "Task",
            "Templates" => "Template",
            "Services" => "Service",
            "Checks" => "Check",
            "RestartPolicy" | "ReschedulePolicy" | "Resources" => key,
            "Interval" | "Delay" | "KillTimeout" | "Timeout" | "Count" | "Attempts" => {
                if !v.is_u64() {
                    problems.push(format!(
                        "{kind}.{key}: {v} is not a whole number (durations are nanoseconds)"
                    ));
                }
                continue;
            }
            "Config" => {
                let command = v.get("command").and_then(Value::as_str);
                let args = v.get("args").and_then(Value::as_array);
                if command.is_none()
                    || args.is_none()
                    || v.as_object().is_some_and(|o| o.len() != 2)
                {
                    problems.push(format!(
                        "{kind}.Config: raw_exec takes command and args: {v}"
                    ));
                }
                continue;
            }
            _ => continue,
        };
        match v {
            Value::Array(items) => items.iter().for_each(|i| check_object(child, i, problems)),
            other => check_object(child, other, problems),
        }
    }
    if kind == "RestartPolicy"
        && !matches!(
            object.get("Mode").and_then(Value::as_str),
            Some("fail" | "delay")
        )
    {
        problems.push("RestartPolicy.Mode: fail or delay".into());
    }
}

#[test]
fn the_nomad_json_has_only_the_job_specifications_fields() {
    let (_root, dirs) = written(Target::Nomad, |_| Options {
        json: true,
        ..options()
    });
    for (_, out) in dirs {
        let file = out
            .files
            .iter()
            .find(|f| f.name.ends_with(".nomad.json"))
            .expect("job");
        let doc: Value = serde_json::from_str(&file.content).expect("JSON");
        let mut problems = Vec::new();
        check_object("Job", &doc["Job"], &mut problems);
        assert!(problems.is_empty(), "{}: {problems:?}", file.name);
    }
    let mut problems = Vec::new();
    check_object(
        "Job",
        &serde_json::json!({ "ID": "j", "Groups": [] }),
        &mut problems,
    );
    assert!(!problems.is_empty(), "an unknown field passed");
}

/// `ExecStart=` split as systemd splits it: words, double quotes with C escapes, `%%` and
/// `%i` specifiers, then variables: `${NAME}` anywhere, `$NAME` as a whole word, `$$` for a
/// dollar.
fn exec_words(line: &str, instance: &str, env: &BTreeMap<String, String>) -> Vec<String> {
    let line = line
        .replace("%%", "\u{1}")
        .replace("%i", instance)
        .replace('\u{1}', "%");
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c == ' ' {
            chars.next();
            continue;
        }
        let mut word = String::new();
        if c == '"' {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => match chars.next() {
                        Some('n') => word.push('\n'),
                        Some(other) => word.push(other),
                        None => {}
                    },
                    c => word.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ' ' {
                    break;
                }
                word.push(c);
                chars.next();
            }
        }
        words.push(expand(&word, env));
    }
    words
}

fn expand(word: &str, env: &BTreeMap<String, String>) -> String {
    let value = |name: &str| env.get(name).cloned().unwrap_or_default();
    if let Some(name) = word.strip_prefix('$')
        && !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return value(name);
    }
    let mut out = String::new();
    let mut rest = word;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        rest = &rest[at + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            out.push('$');
            rest = after;
        } else if let Some((name, after)) = rest.strip_prefix('{').and_then(|r| r.split_once('}')) {
            out.push_str(&value(name));
            rest = after;
        } else {
            out.push('$');
        }
    }
    out.push_str(rest);
    out
}

/// `KEY="value"` lines as systemd reads an `EnvironmentFile`.
fn environment_file(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && l.contains('='))
        .filter_map(|l| {
            let (key, value) = l.split_once('=')?;
            let inner = value.strip_prefix('"')?.strip_suffix('"')?;
            let mut out = String::new();
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                match (c, c == '\\') {
                    (_, true) => match chars.next() {
                        Some('n') => out.push('\n'),
                        Some(o) => out.push(o),
                        None => {}
                    },
                    (c, false) => out.push(c),
                }
            }
            Some((key.to_string(), out))
        })
        .collect()
}

#[test]
fn a_units_command_and_environment_run_as_systemd_would_run_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cwd = dir.path().to_string_lossy().into_owned();
    let secret = "s3cr3t with \"quotes\", $dollars, 100% and a \\ backslash";
    let mut spec = pmx_core::spec::AppSpec {
        name: "probe".into(),
        // pmx passes args after the command line ("$@"): printf's fourth value.
        script: "printf '%s|%s|%s|%s' \"${TOKEN}\" \"$NODE_APP_INSTANCE\" \"$PWD\"".into(),
        args: vec!["an arg with spaces".into()],
        cwd: cwd.clone(),
        instances: 2,
        ..Default::default()
    };
    spec.env.insert("TOKEN".into(), secret.into());
    let input = crate::Input {
        name: "t".into(),
        apps: vec![spec],
        rules: Vec::new(),
    };
    let out = export(&input, Target::Systemd, &options());
    let unit = &out
        .files
        .iter()
        .find(|f| f.name == "probe@.service")
        .expect("unit")
        .content;
    let env_file = &out
        .files
        .iter()
        .find(|f| f.name == "probe.env")
        .expect("env")
        .content;
    assert!(!unit.contains("s3cr3t"), "the value is in the unit");
    let value = |key: &str| {
        unit.lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key} in\n{unit}"))
            .to_string()
    };
    let mut env: BTreeMap<String, String> = environment_file(env_file).into_iter().collect();
    let (k, v) = value("Environment=")
        .replace("%i", "1")
        .split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .expect("K=V");
    env.insert(k, v);
    env.insert("PATH".into(), "/usr/bin:/bin".into());
    env.insert("PWD".into(), value("WorkingDirectory="));
    let argv = exec_words(&value("ExecStart="), "1", &env);
    let mut command = Command::new(&argv[0]);
    command
        .args(&argv[1..])
        .current_dir(value("WorkingDirectory="))
        .env_clear()
        .envs(&env);
    let ran = command.output().expect("run");
    assert!(ran.status.success(), "{ran:?}");
    let seen = String::from_utf8_lossy(&ran.stdout);
    assert_eq!(seen, format!("{secret}|1|{cwd}|an arg with spaces"));
}
