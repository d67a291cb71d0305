//! `pmx serve`: PM2's static file server as an app, from the command line and from an
//! ecosystem file's `static` section; the homepage, single-page apps, a custom 404 page,
//! basic auth, nothing outside the directory, and `stop` that takes it down.

use std::time::Duration;

use pmx_tests::{Answer, Home, free_port, http, wait_for};

fn site(home: &Home) -> String {
    let dir = home.file("site");
    std::fs::create_dir_all(format!("{dir}/css")).unwrap();
    std::fs::write(format!("{dir}/index.html"), "<h1>home page</h1>").unwrap();
    std::fs::write(format!("{dir}/other.html"), "other page").unwrap();
    std::fs::write(format!("{dir}/404.html"), "custom missing page").unwrap();
    std::fs::write(format!("{dir}/css/app.css"), "body{}").unwrap();
    std::fs::write(home.file("secret.txt"), "outside").unwrap();
    dir
}

fn get(port: u16, path: &str, headers: &[(&str, &str)]) -> Answer {
    wait_for("the server to answer", Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    });
    http(port, "GET", path, headers)
}

#[test]
fn serve_answers_files_as_pm2s_server_and_stops_with_the_app() {
    let home = Home::new();
    let dir = site(&home);
    let port = free_port();
    let out = home.ok(&["serve", &dir, &port.to_string(), "--name", "front"]);
    assert!(out.contains("front"), "{out}");
    home.wait_online("front");
    // Online means listening (the server says so), and it says its name as PM2's agent does.
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    let p = home.proc("front");
    assert_eq!(p["pm2_env"]["axm_options"]["module_name"], "front");
    let home_page = get(port, "/", &[]);
    assert_eq!(
        (home_page.status, home_page.body.as_str()),
        (200, "<h1>home page</h1>")
    );
    assert!(
        home_page
            .head
            .to_ascii_lowercase()
            .contains("content-type: text/html")
    );
    let css = get(port, "/css/app.css", &[]);
    assert!(
        css.head.to_ascii_lowercase().contains("text/css"),
        "{}",
        css.head
    );
    let missing = get(port, "/nope.html", &[]);
    assert_eq!(
        (missing.status, missing.body.as_str()),
        (404, "custom missing page")
    );
    assert_eq!(get(port, "/%2e%2e/secret.txt", &[]).status, 403);
    assert!(!get(port, "/../secret.txt", &[]).body.contains("outside"));
    home.ok(&["stop", "front"]);
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());

    // A port someone else holds: the server never listens, so it never counts as online.
    let taken = std::net::TcpListener::bind(("0.0.0.0", 0)).unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    home.run(&["serve", &dir, &port, "--name", "blocked"]);
    let p = home.proc("blocked");
    assert_ne!(p["pm2_env"]["status"], "online", "{p}");
    assert_eq!(p["pm2_env"]["axm_options"], serde_json::Value::Null, "{p}");
}

#[test]
fn spa_and_basic_auth_and_the_static_section_of_an_ecosystem_file() {
    let home = Home::new();
    let dir = site(&home);
    let port = free_port();
    home.ok(&[
        "serve",
        &dir,
        &port.to_string(),
        "--spa",
        "--basic-auth-username",
        "user",
        "--basic-auth-password",
        "pass",
    ]);
    let name = format!("static-page-server-{port}");
    home.wait_online(&name);
    let refused = get(port, "/", &[]);
    assert_eq!(refused.status, 401);
    assert!(
        refused
            .head
            .to_ascii_lowercase()
            .contains("www-authenticate: basic")
    );
    let wrong = get(port, "/", &[("Authorization", "Basic dXNlcjp3cm9uZw==")]);
    assert_eq!(wrong.status, 401);
    let auth = [("Authorization", "Basic dXNlcjpwYXNz")]; // user:pass
    assert_eq!(get(port, "/a/b/c", &auth).body, "<h1>home page</h1>");
    assert_eq!(get(port, "/a/b/other.html", &auth).body, "other page");
    home.ok(&["delete", "all"]);

    let port = free_port();
    let config = home.file("ecosystem.json");
    std::fs::write(
        &config,
        format!(r#"{{"static": [{{"path": "{dir}", "port": {port}, "spa": true}}]}}"#),
    )
    .unwrap();
    home.ok(&["start", &config]);
    home.wait_online(&format!("static-page-server-{port}"));
    assert_eq!(get(port, "/deep/route", &[]).body, "<h1>home page</h1>");
    let env = &home.proc(&format!("static-page-server-{port}"))["pm2_env"]["env"];
    assert_eq!(env["PM2_SERVE_PORT"], port, "{env}");
}
