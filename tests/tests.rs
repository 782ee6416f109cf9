//! cometail's integration tests, linked as one binary (ripgrep's layout: `autotests = false`
//! and one `[[test]]`), so the suite links once instead of once per file. Each module starts
//! the real server (in-process or the real binary) on port 0 and drives real files and sockets.

#![allow(clippy::unwrap_used)] // Tests fail loudly by design.

mod common;

mod answers;
mod api;
mod browser;
mod follow_differential;
mod follow_edge;
mod follow_endurance;
mod follow_model;
mod follow_resources;
mod history;
mod protocol;
mod security;
mod understand;
