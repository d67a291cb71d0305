//! `pmx export`: from a config or from the apps the daemon runs, files written with their
//! modes (environment values 0600, never printed), the report on stderr and in `--report`,
//! exit 0 / 3 / 2 as the export mapped all, reported some, or met a bad config.

use std::os::unix::fs::PermissionsExt;

use pmx_tests::{Home, fixture};

fn mode(path: &str) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn the_running_apps_export_with_their_environment_kept_private() {
    let home = Home::new();
    let forever = fixture("forever.sh");
    home.ok(&[
        "start",
        &forever,
        "--name",
        "api",
        "-i",
        "2",
        "--env",
        "TOKEN=hunter2",
    ]);
    home.ok(&["start", &forever, "--name", "plain"]);
    let out = home.file("units");
    // Everything of these two apps maps onto systemd exactly: nothing reported, exit 0.
    let written = home.ok(&["export", "--to", "systemd", "--out", &out]);
    for name in ["api@.service", "api.target", "api.env", "plain.service"] {
        assert!(written.contains(name), "{name} not written: {written}");
    }
    let env = format!("{out}/api.env");
    assert_eq!(mode(&env), 0o600);
    assert!(
        std::fs::read_to_string(&env)
            .unwrap()
            .contains("TOKEN=\"hunter2\"")
    );
    assert_eq!(mode(&format!("{out}/api@.service")), 0o644);
    let unit = std::fs::read_to_string(format!("{out}/api@.service")).unwrap();
    assert!(
        unit.contains(&format!("ExecStart=bash {forever}")),
        "{unit}"
    );
    assert!(!unit.contains("hunter2"));
    // On standard output the file with values is left out, and said so.
    let printed = home.run(&["export", "--to", "kubernetes", "--only", "api"]);
    let stdout = String::from_utf8_lossy(&printed.stdout);
    let stderr = String::from_utf8_lossy(&printed.stderr);
    assert!(
        stdout.contains("kind: Deployment") && !stdout.contains("plain"),
        "{stdout}"
    );
    assert!(!stdout.contains("hunter2"), "{stdout}");
    assert!(stderr.contains("api-env-secret.yaml"), "{stderr}");
    // Only manifests: `kubectl apply -f -` reads the stream as it is.
    assert!(!stdout.contains("FROM "), "{stdout}");
    assert!(
        stderr.contains("not printed: api.Containerfile"),
        "{stderr}"
    );
    // Two replicas cannot each know their number: reported, exit 3.
    assert_eq!(printed.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("api: NODE_APP_INSTANCE: every replica reads 0"),
        "{stderr}"
    );
}

#[test]
fn a_config_exports_with_its_report_and_a_bad_one_says_where() {
    let home = Home::new();
    let forever = fixture("forever.sh");
    let config = home.file("apps.rhai");
    std::fs::write(
        &config,
        format!(
            "app(#{{ name: \"api\", script: \"{forever}\", max_memory_restart: \"300M\" }});\n\
             rule(\"night\", #{{ cron: \"0 1 * * *\" }}, |ctx| {{ ctx.note(\"hi\"); }});\n"
        ),
    )
    .unwrap();
    let report = home.file("report.txt");
    let stderr = home.fails(
        3,
        &[
            "export",
            "--to",
            "compose",
            &config,
            "--report",
            &report,
            "--out",
            &home.file("c"),
        ],
    );
    let lines = std::fs::read_to_string(&report).unwrap();
    assert!(
        lines.contains("api: max_memory_restart 300.0mb → memory limit 300m"),
        "{lines}"
    );
    assert!(
        lines
            .contains("rule \"night\" (cron 0 1 * * *, custom logic) has no equivalent in Compose"),
        "{lines}"
    );
    assert!(stderr.contains("rule \"night\""), "{stderr}");
    // The daemon was never needed.
    assert!(home.daemon_pid().is_none());

    std::fs::write(&config, "app(#{ name: \"api\", scrip: \"x\" });\n").unwrap();
    let stderr = home.fails(2, &["export", "--to", "nomad", &config]);
    assert!(stderr.contains(&format!("{config}:1:")), "{stderr}");
    // Without a file and without a daemon there is nothing to export, and no daemon starts.
    let stderr = home.fails(2, &["export", "--to", "systemd"]);
    assert!(stderr.contains("no pmx daemon runs"), "{stderr}");
    assert!(home.daemon_pid().is_none());
    // `--only` names apps of the file; `--format json` is Nomad's.
    std::fs::write(
        &config,
        format!("app(#{{ name: \"api\", script: \"{forever}\" }});\n"),
    )
    .unwrap();
    let stderr = home.fails(2, &["export", "--to", "nomad", &config, "--only", "web"]);
    assert!(stderr.contains("--only: no app `web`"), "{stderr}");
    let stderr = home.fails(
        2,
        &["export", "--to", "compose", &config, "--format", "json"],
    );
    assert!(stderr.contains("only for --to nomad"), "{stderr}");
    let json = home.ok(&["export", "--to", "nomad", &config, "--format", "json"]);
    assert!(json.contains("\"TaskGroups\""), "{json}");
    std::fs::write(&config, "app(#{ name: \"api\", scrip: \"x\" });\n").unwrap();
    let stderr = home.fails(2, &["export", "--to", "swarm", &config]);
    assert!(
        stderr.contains("one of systemd, kubernetes, nomad, compose"),
        "{stderr}"
    );
}
