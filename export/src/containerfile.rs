//! A Containerfile per app for the targets that run containers, when no `--image` is given:
//! a base image chosen by the interpreter and its version here, the app's directory copied
//! to `/app`, the same command, and the stop signal.

use pmx_core::spec::AppSpec;

use crate::app::{self, CONTAINER_DIR};
use crate::report::Report;
use crate::{Export, Options};

/// The image the manifests name for an app built from its Containerfile.
pub fn image_of(spec: &AppSpec) -> String {
    format!("{}:pmx", app::dns_name(&spec.name))
}

/// The Containerfile's name in the export.
pub fn file_of(spec: &AppSpec) -> String {
    format!("{}.Containerfile", app::dns_name(&spec.name))
}

/// The base image for the app's interpreter, at the version this machine runs (`versions`:
/// interpreter name → version, as `node --version` printed it).
fn base_image(spec: &AppSpec, options: &Options, report: &mut Report) -> String {
    let program = app::interpreter(spec);
    let name = program
        .as_deref()
        .and_then(|p| p.rsplit('/').next())
        .unwrap_or("");
    let version = options
        .versions
        .get(name)
        .map(|v| v.trim_start_matches('v'));
    let major = |n: usize| -> Option<String> {
        let parts: Vec<&str> = version?.split('.').take(n).collect();
        (parts.len() == n).then(|| parts.join("."))
    };
    match name {
        "node" => format!("node:{}-slim", major(1).unwrap_or_else(|| "lts".into())),
        "python3" | "python" => {
            format!("python:{}-slim", major(2).unwrap_or_else(|| "3".into()))
        }
        "ruby" => format!("ruby:{}-slim", major(2).unwrap_or_else(|| "3".into())),
        "php" => format!("php:{}-cli", major(2).unwrap_or_else(|| "8".into())),
        "perl" => "perl:5-slim".into(),
        "/bin/sh" | "sh" | "bash" => "debian:bookworm-slim".into(),
        "" => {
            report.app(
                &spec.name,
                "Containerfile: a program run directly: the image must hold it and the libraries it needs (debian:bookworm-slim as a start)",
            );
            "debian:bookworm-slim".into()
        }
        other => {
            report.app(
                &spec.name,
                format!("Containerfile: no base image known for `{other}`: debian:bookworm-slim, install it there"),
            );
            "debian:bookworm-slim".into()
        }
    }
}

/// Reports a script the container cannot find under `/app` (a Containerfile copies the
/// app's directory there; an `--image` is expected to hold it there too).
pub fn check_script(spec: &AppSpec, report: &mut Report) {
    if app::script_outside_cwd(spec) {
        let script = app::script_path(spec);
        report.app(
            &spec.name,
            format!(
                "the script {script} lies outside the app's directory {} (the container's {CONTAINER_DIR}): the image must hold it at {script}",
                spec.cwd
            ),
        );
    }
}

/// Adds the app's Containerfile to the export.
pub fn add(spec: &AppSpec, options: &Options, out: &mut Export) {
    let base = base_image(spec, options, &mut out.report);
    let argv = serde_json::to_string(&app::container_argv(spec)).unwrap_or_default();
    let text = format!(
        "# The image of {name} (exported by pmx), built from its directory:\n\
         #   docker build -t {image} -f {file} {cwd}\n\
         FROM {base}\n\
         WORKDIR {CONTAINER_DIR}\n\
         COPY . {CONTAINER_DIR}\n\
         STOPSIGNAL {signal}\n\
         CMD {argv}\n",
        name = spec.name,
        image = image_of(spec),
        file = file_of(spec),
        cwd = spec.cwd,
        signal = pmx_core::signal::signal_name(spec.kill_signal),
    );
    out.add(file_of(spec), text);
}
