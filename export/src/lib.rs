//! `pmx export`: the apps of a config (or of the daemon) written as the files of an engine
//! that runs many machines (systemd units, Kubernetes manifests, a Nomad job, a Compose
//! file), and a report of every option that does not carry over exactly. Pure: specs in,
//! file contents and report lines out; the CLI reads the config and writes the files.

mod app;
mod compose;
mod containerfile;
mod kubernetes;
mod nomad;
mod report;
mod systemd;
mod yaml;

use pmx_core::protocol::StandardRule;
use pmx_core::spec::AppSpec;

pub use app::interpreter as interpreter_of;
pub use report::Report;

/// The engine to write files for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Systemd,
    Kubernetes,
    Nomad,
    Compose,
}

impl Target {
    pub const NAMES: [&'static str; 4] = ["systemd", "kubernetes", "nomad", "compose"];

    pub fn parse(text: &str) -> Option<Target> {
        Some(match text {
            "systemd" => Target::Systemd,
            "kubernetes" | "k8s" => Target::Kubernetes,
            "nomad" => Target::Nomad,
            "compose" | "docker-compose" => Target::Compose,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Target::Systemd => "systemd",
            Target::Kubernetes => "Kubernetes",
            Target::Nomad => "Nomad",
            Target::Compose => "Compose",
        }
    }
}

/// A rule of the config: what the export can know of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub name: String,
    /// `every 15s`, `cron 0 3 * * *`, `on exit`.
    pub trigger: String,
    /// Set when a function of the standard library declared it.
    pub standard: Option<StandardRule>,
}

/// What is exported.
#[derive(Debug, Clone, Default)]
pub struct Input {
    /// A name for the whole (the config's file stem): the Nomad job, the Compose project.
    pub name: String,
    pub apps: Vec<AppSpec>,
    pub rules: Vec<Rule>,
}

impl Input {
    /// What a config file declares (`file` names the whole: `policies.rhai` → `policies`).
    pub fn from_config(file: &str, config: pmx_scripting::Config) -> Input {
        let stem = std::path::Path::new(file)
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.split('.').next())
            .filter(|n| !n.is_empty() && *n != "-")
            .unwrap_or("pmx");
        Input {
            name: stem.to_string(),
            apps: config.apps,
            rules: config
                .rules
                .into_iter()
                .map(|r| Rule {
                    name: r.name,
                    trigger: r.trigger.to_string(),
                    standard: r.standard,
                })
                .collect(),
        }
    }
}

/// How it is exported.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The image every container runs (Kubernetes, Compose); without it, each app gets a
    /// Containerfile and the manifests name the image it builds.
    pub image: Option<String>,
    /// Nomad: the job as JSON (the HTTP API's form) instead of HCL.
    pub json: bool,
    /// Where the files will be written, when they are (Compose names its Containerfiles by
    /// path); `None` for standard output.
    pub out_dir: Option<String>,
    /// The version of each interpreter on this machine (`node` → `v20.11.1`), for the base
    /// images of Containerfiles.
    pub versions: std::collections::BTreeMap<String, String>,
    /// The user the apps run as when the exporter is not root (systemd's `User=`): pmx runs
    /// apps as its daemon's user, a system unit as root unless told.
    pub user: Option<String>,
}

/// One file to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    pub name: String,
    pub content: String,
    /// Holds environment values: written 0600, never printed.
    pub secret: bool,
}

/// The files of an export and what did not carry over.
#[derive(Debug, Default)]
pub struct Export {
    pub files: Vec<File>,
    pub report: Report,
}

impl Export {
    fn add(&mut self, name: impl Into<String>, content: String) {
        self.files.push(File {
            name: name.into(),
            content,
            secret: false,
        });
    }

    fn add_secret(&mut self, name: impl Into<String>, content: String) {
        self.files.push(File {
            name: name.into(),
            content,
            secret: true,
        });
    }
}

/// Writes `input` as `target`'s files.
pub fn export(input: &Input, target: Target, options: &Options) -> Export {
    let mut out = Export::default();
    match target {
        Target::Systemd => systemd::export(input, options, &mut out),
        Target::Kubernetes => kubernetes::export(input, options, &mut out),
        Target::Nomad => nomad::export(input, options, &mut out),
        Target::Compose => compose::export(input, options, &mut out),
    }
    report::rules(input, target, &mut out.report);
    out
}

#[cfg(test)]
mod tests;
