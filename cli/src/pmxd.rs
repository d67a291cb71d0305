//! `pmxd`: the daemon alone, without the CLI's code (argument parsing, rendering, monit), so
//! the pages it maps are the daemon's. `pmx daemon` resolves the settings (flags, environment,
//! daemon.toml) and replaces itself with `pmxd --settings JSON`, `PMX_HOME` set.

use std::process::ExitCode;

use pmx_core::paths::Paths;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let home = std::env::var_os("PMX_HOME").filter(|h| !h.is_empty());
    let (Some(home), [flag, json]) = (home, args.as_slice()) else {
        eprintln!("pmxd: run by `pmx daemon` (PMX_HOME set, --settings JSON)");
        return ExitCode::from(2);
    };
    if flag != "--settings" {
        eprintln!("pmxd: unknown argument {flag}; run by `pmx daemon`");
        return ExitCode::from(2);
    }
    let settings = match serde_json::from_str(json) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("pmxd: malformed settings: {e}");
            return ExitCode::from(2);
        }
    };
    match pmx_actors::serve(Paths::new(home), settings) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pmx: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
