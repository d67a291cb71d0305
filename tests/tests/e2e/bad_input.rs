//! Bad input gets one clear line on stderr, a non-zero exit, nothing registered, and no
//! running app disturbed.

use pmx_tests::{Home, fixture};

#[test]
fn bad_input_is_refused_and_nothing_is_disturbed() {
    let home = Home::new();
    home.ok(&["start", &fixture("forever.sh"), "--name", "api"]);
    let pid = home.wait_online("api");
    let dir = env!("CARGO_MANIFEST_DIR");
    let cases: &[(i32, &[&str], &str)] = &[
        (2, &["start", "/no/such/script.js"], "script not found"),
        (2, &["start", dir], "is a directory"),
        (
            2,
            &[
                "start",
                &fixture("forever.sh"),
                "--interpreter",
                "no-such-interp",
            ],
            "unknown interpreter",
        ),
        (
            1,
            &["start", &fixture("forever.sh"), "--name", "api"],
            "already exists",
        ),
        (
            2,
            &["start", &fixture("forever.sh"), "--name", "all"],
            "invalid app name",
        ),
        (
            2,
            &[
                "start",
                &fixture("forever.sh"),
                "--name",
                "x",
                "--min-uptime",
                "soon",
            ],
            "invalid duration",
        ),
        (
            2,
            &[
                "start",
                &fixture("forever.sh"),
                "--name",
                "x",
                "--kill-signal",
                "SIGNOPE",
            ],
            "unknown signal",
        ),
        (
            2,
            &[
                "start",
                &fixture("forever.sh"),
                "--name",
                "x",
                "--env",
                "NOEQUALS",
            ],
            "expected K=V",
        ),
        (
            2,
            &["start", &fixture("forever.sh"), "--bogus-flag"],
            "unexpected argument",
        ),
        (
            1,
            &["stop", "nope"],
            "no app, id, namespace or script `nope`",
        ),
        (
            1,
            &["restart", "42"],
            "no app, id, namespace or script `42`",
        ),
        (
            1,
            &["stop", "api", "nope"],
            "no app, id, namespace or script `nope`",
        ),
        (
            1,
            &["stop", "apo"],
            "no app, id, namespace or script `apo`: did you mean `api`?",
        ),
        (2, &["sendSignal", "SIGNOPE", "api"], "unknown signal"),
        (1, &["describe", "ghost"], "no app, id"),
        (1, &["history", "ghost"], "no history"),
    ];
    for (code, args, message) in cases {
        let stderr = home.fails(*code, args);
        assert!(
            stderr.contains(message),
            "pmx {args:?}: expected `{message}` in {stderr}"
        );
        assert_eq!(
            stderr.trim().lines().count(),
            1,
            "one line for {args:?}: {stderr}"
        );
    }
    let apps = home.jlist();
    assert_eq!(apps.len(), 1, "nothing registered: {apps:?}");
    assert_eq!(home.pid("api"), pid, "the running app was not disturbed");
    assert_eq!(home.status("api"), "online");
}
