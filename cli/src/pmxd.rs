//! `pmxd`: the daemon alone, without the CLI's code (argument parsing, rendering, monit), so
//! the pages it maps are the daemon's. `pmx daemon` resolves the settings (flags, environment,
//! daemon.toml) and replaces itself with `pmxd --settings JSON`, `PMX_HOME` set; `pmx update`
//! asks it `--handoff-check` first, then executes it the same way in the daemon's process.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    pmx_actors::daemon_main(&args).unwrap_or_else(|| {
        eprintln!("pmxd: run by `pmx daemon` (PMX_HOME set, --settings JSON)");
        ExitCode::from(2)
    })
}
