//! Issue 11's time engine over a real server: multi-line records, live and from history.

mod download;
mod merge;
mod pages;
mod records;
mod restart;
mod seek;
mod ties;
