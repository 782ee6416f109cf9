//! cometail's integration tests, linked as one binary (ripgrep's layout: `autotests = false`
//! and one `[[test]]`), so the suite links once instead of once per file. Each module starts
//! the real server (in-process or the real binary) on port 0 and drives real files and sockets.
//! The one exception is `tests/endurance.rs`, which counts the whole process's descriptors.

#![allow(clippy::unwrap_used)] // Tests fail loudly by design.

mod common;

mod activation;
mod answers;
mod api;
mod browser;
mod chain;
mod command;
mod compression;
mod config_file;
mod follow_differential;
mod follow_edge;
mod follow_limits;
mod follow_model;
mod follow_resources;
mod follow_scale;
mod history;
mod journal;
mod listen;
mod metrics;
mod metrics_load;
mod packaging;
mod probes;
mod protocol;
mod proxy;
mod q_chain;
mod q_history;
mod scale_out;
mod search;
mod search_edges;
mod security;
mod time;
mod understand;
mod unix_socket;
