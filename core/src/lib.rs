//! pmx-core: the language of the system. What a user can say about an app (`spec`), the pure
//! instance state machine (`state`), what the journal records (`event`), what travels over the
//! socket (`protocol`, `frame`), what `list`/`describe`/`jlist` show (`view`), and where files
//! live (`paths`). No I/O and no async here: everything is data and pure functions.

pub mod agent;
pub mod conf;
pub mod describe;
pub mod event;
pub mod fingerprint;
pub mod frame;
pub mod handoff;
pub mod instances;
pub mod listen;
pub mod log_tail;
pub mod logs;
pub mod metrics;
pub mod order;
pub mod paths;
pub mod plan;
pub mod pm2_env;
pub mod private;
pub mod protocol;
pub mod record;
pub mod signal;
pub mod spec;
pub mod state;
pub mod time;
pub mod units;
pub mod versioning;
pub mod view;

/// Milliseconds since the Unix epoch: the one clock unit across the system.
pub type Millis = u64;
