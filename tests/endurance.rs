//! The endurance tests, linked as a binary of their own: they count the file descriptors of
//! the whole test process before and after the server runs, which only means something when
//! no other test shares the process. Everything else is in `tests/tests.rs`.

#![allow(clippy::unwrap_used)] // Tests fail loudly by design.

mod common;

mod follow_endurance;
