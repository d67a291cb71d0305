//! Links the `pmx` CLI as a position-dependent executable: a PIE of this size has ~14,000
//! relocations the loader applies at every start, dirtying the pages they touch, which is
//! most of a short command's time above the cost of exec. `pmxd`, which runs for long and
//! may serve HTTP, stays a PIE (address space randomization).

fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bin=pmx=-no-pie");
    }
}
