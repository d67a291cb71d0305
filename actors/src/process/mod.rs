//! Everything that touches OS processes: resolving a spec into a command line and spawning it
//! (`spawn`, run on the `spawner` thread), reading a process and its descendants from /proc
//! (`tree`), finding and signalling everything an instance started (`family`), reaping
//! orphaned descendants (`reaper`), telling a process from a reused pid (`identity`), and
//! passing sockets to it (`activation`).

pub mod activation;
pub mod family;
pub mod identity;
pub mod reaper;
pub mod spawn;
pub mod spawner;
pub mod tree;
