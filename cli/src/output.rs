//! Writing to stdout where a closed pipe (`pmx jlist | head`) ends the program quietly with 0.

use std::io::Write;

pub fn print(text: &str) {
    print_bytes(text.as_bytes());
}

pub fn print_bytes(bytes: &[u8]) {
    let mut out = std::io::stdout().lock();
    if out.write_all(bytes).and_then(|_| out.flush()).is_err() {
        std::process::exit(0);
    }
}

pub fn println(text: &str) {
    print(&format!("{text}\n"));
}
