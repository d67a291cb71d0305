//! Writing to stdout where a closed pipe (`pmx jlist | head`) ends the program quietly with 0.

use std::io::Write;

pub fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    if out
        .write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .is_err()
    {
        std::process::exit(0);
    }
}

pub fn println(text: &str) {
    print(&format!("{text}\n"));
}
