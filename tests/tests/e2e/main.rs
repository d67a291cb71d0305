//! End-to-end tests: each test starts its own daemon in a temporary `PMX_HOME` and asserts
//! what the OS shows.

mod bad_input;
mod browser;
mod cluster;
mod daemon_binary;
mod dashboard;
mod depends;
mod ecosystem;
mod export;
mod faults;
mod figures;
mod history;
mod journal;
mod lifecycle;
mod logs;
mod monit;
mod pm2_habits;
mod policies;
mod restart_policy;
mod revisions;
mod serve;
mod socket;
mod startup;
mod stopping;
mod takeover;
mod targets;
mod up;
mod update;
