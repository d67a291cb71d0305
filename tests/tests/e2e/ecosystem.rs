//! PM2 ecosystem files (JSON, YAML, TOML, JS) give the same plan as the Rhai config; `convert`
//! writes that Rhai config; `stop|restart|delete FILE` act on the apps a file declares;
//! `ecosystem` writes a starter.

use pmx_tests::Within;
use pmx_tests::{Home, alive, fixture};

fn write(home: &Home, name: &str, text: &str) -> String {
    let path = home.file(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn forms(forever: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            "policies.rhai",
            format!(
                r#"app(#{{ name: "api", script: "{forever}", instances: 2, env: #{{ PORT: 3000 }},
                         max_memory_restart: "300M" }});
                   app(#{{ name: "worker", script: "{forever}", autorestart: false }});"#
            ),
        ),
        (
            "ecosystem.json",
            format!(
                r#"{{"apps": [{{"name": "api", "script": "{forever}", "instances": 2,
                               "env": {{"PORT": 3000}}, "max_memory_restart": "300M"}},
                             {{"name": "worker", "script": "{forever}", "autorestart": false}}]}}"#
            ),
        ),
        (
            "ecosystem.yml",
            format!(
                "apps:\n  - name: api\n    script: {forever}\n    instances: 2\n    env:\n      PORT: 3000\n    max_memory_restart: 300M\n  - name: worker\n    script: {forever}\n    autorestart: false\n"
            ),
        ),
        (
            "ecosystem.toml",
            format!(
                "[[apps]]\nname = \"api\"\nscript = \"{forever}\"\ninstances = 2\nenv = {{ PORT = 3000 }}\nmax_memory_restart = \"300M\"\n\n[[apps]]\nname = \"worker\"\nscript = \"{forever}\"\nautorestart = false\n"
            ),
        ),
        (
            "ecosystem.config.js",
            format!(
                "const script = '{forever}';\nmodule.exports = {{ apps: [\n  {{ name: 'api', script, instances: 2, env: {{ PORT: 3000 }}, max_memory_restart: '300M' }},\n  {{ name: 'worker', script, autorestart: false }},\n] }};\n"
            ),
        ),
    ]
}

#[test]
fn every_ecosystem_form_gives_the_plan_of_the_rhai_config() {
    let home = Home::new();
    let forever = fixture("forever.sh");
    let forms = forms(&forever);
    let js = write(&home, forms[4].0, &forms[4].1);
    let first = home.ok(&["start", &js]);
    assert!(
        first.contains("+ api (2 instances)") && first.contains("+ worker"),
        "{first}"
    );
    let api = home.wait_online("api");
    for (name, text) in &forms {
        let file = write(&home, name, text);
        let plan = home.ok(&["up", &file, "--dry-run"]);
        assert_eq!(
            plan, "= api\n= worker\n[PMX] dry run: nothing was changed\n",
            "{name}"
        );
    }
    let converted = home.ok(&["convert", &js]);
    let rhai = write(&home, "converted.rhai", &converted);
    assert_eq!(
        home.ok(&["up", &rhai]),
        "= api\n= worker\n[PMX] config revision 2 applied\n"
    );
    assert_eq!(home.pid("api"), api, "nothing restarted");

    let yml = home.file("ecosystem.yml");
    home.ok(&["stop", &yml]);
    assert!(!alive(api));
    assert_eq!(home.status("worker"), "stopped");
    home.ok(&["restart", &home.file("ecosystem.toml")]);
    home.wait_online("api");
    home.wait_online("worker");
    home.ok(&["delete", &home.file("ecosystem.json")]);
    assert!(
        home.jlist().is_empty(),
        "delete FILE deleted the file's apps"
    );
}

#[test]
fn broken_ecosystem_files_say_where_and_change_nothing() {
    let home = Home::new();
    let broken = write(
        &home,
        "ecosystem.json",
        "{\"apps\": [\n  {\"name\": \"api\",\n   \"script\": \"missing.js\",\n   \"instances\": \"four\"}\n]}",
    );
    let stderr = home.fails(2, &["up", &broken]);
    assert!(
        stderr.contains("ecosystem.json:4:5: app `api`: instances: expected an integer"),
        "{stderr}"
    );
    assert!(
        stderr.contains("ecosystem.json:3:5: app `api`: script: "),
        "{stderr}"
    );
    let js = write(&home, "bad.config.js", "module.exports = {apps: [");
    let stderr = home.fails(2, &["up", &js]);
    assert!(stderr.contains("node could not load the file"), "{stderr}");
    // Conversion prints the script, and says why pmx would refuse it.
    let out = home.command(&["convert", &broken]).output_within();
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("instances: \"four\","), "{text}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("would refuse it"));
    assert!(home.jlist().is_empty());
}

#[test]
fn ecosystem_writes_a_starter_and_keeps_an_existing_file() {
    let home = Home::new();
    let file = home.file("policies.rhai");
    let out = home.ok(&["ecosystem", &file]);
    assert!(out.contains("pmx up"), "{out}");
    let starter = std::fs::read_to_string(&file).unwrap();
    assert!(starter.contains("app(#{"), "{starter}");
    std::fs::write(&file, "mine").unwrap();
    let stderr = home.fails(2, &["ecosystem", &file]);
    assert!(stderr.contains("--force"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "mine");
}
