//! Wall-clock time in the system's unit.

use std::time::{SystemTime, UNIX_EPOCH};

use pmx_core::Millis;

pub fn now_ms() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as Millis)
        .unwrap_or(0)
}
