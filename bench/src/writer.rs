//! The appender: writes benchmark lines to the followed file at a fixed rate, or as fast as
//! it can, on its own OS thread (blocking file I/O never shares the clients' runtime).
//!
//! Rate control is a 1 ms tick: at each tick it appends, in one `write`, every line due by
//! then (`rate x elapsed`), each stamped with the time just before that `write`. So high rates
//! are reached by batching, as a busy logger's buffered writes would, and the time stamp is
//! never later than the moment the bytes reach the file.

use std::fs::OpenOptions;
use std::io::{self, Write as _};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::client::now_ns;
use crate::marks::{LineFormat, format_line_as};

/// What to write.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// The followed file (appended to; created if missing).
    pub(crate) path: PathBuf,
    /// Lines per second; 0 means as fast as possible.
    pub(crate) rate: u64,
    /// Lines 1..=lines are written.
    pub(crate) lines: u64,
    /// Bytes per line including the newline.
    pub(crate) line_bytes: usize,
    /// How lines are laid out around their mark.
    pub(crate) format: LineFormat,
}

/// What was written.
#[derive(Debug, Clone)]
pub(crate) struct Report {
    /// Lines written.
    pub(crate) written: u64,
    /// From the first to the end of the last write.
    pub(crate) elapsed: Duration,
    /// `write` calls.
    pub(crate) writes: u64,
}

/// Lines per write when writing as fast as possible (~1 MiB of 100-byte lines).
const FAST_BATCH: u64 = 10_000;

/// Writes the plan; gives up (returning what it wrote) after `time_limit`.
///
/// # Errors
/// The file cannot be opened or written.
pub(crate) fn write(plan: &Plan, time_limit: Duration) -> io::Result<Report> {
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&plan.path)?;
    let mut buf = Vec::with_capacity(plan.line_bytes * FAST_BATCH as usize + 64);
    let start = Instant::now();
    let mut written = 0u64;
    let mut writes = 0u64;
    let mut tick = 0u64;
    while written < plan.lines && start.elapsed() < time_limit {
        let due = if plan.rate == 0 {
            (written + FAST_BATCH).min(plan.lines)
        } else {
            let el = start.elapsed().as_nanos();
            ((el * u128::from(plan.rate) / 1_000_000_000) as u64 + 1).min(plan.lines)
        };
        if due > written {
            buf.clear();
            let ts = now_ns();
            for seq in written + 1..=due {
                format_line_as(&mut buf, seq, ts, plan.line_bytes, plan.format);
            }
            file.write_all(&buf)?;
            writes += 1;
            written = due;
        }
        if plan.rate != 0 {
            tick += 1;
            let next = start + Duration::from_millis(tick);
            let now = Instant::now();
            if next > now {
                std::thread::sleep(next - now);
            } else {
                // Behind schedule: skip the missed ticks rather than spinning through them.
                tick = start.elapsed().as_millis() as u64;
            }
        }
    }
    Ok(Report {
        written,
        elapsed: start.elapsed(),
        writes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limited_writer_writes_every_line_on_time() {
        let dir =
            std::env::temp_dir().join(format!("cometail-bench-writer-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("w.log");
        let plan = Plan {
            path: path.clone(),
            rate: 2000,
            lines: 400,
            line_bytes: 64,
            format: LineFormat::Plain,
        };
        let r = write(&plan, Duration::from_secs(5)).expect("write");
        assert_eq!(r.written, 400);
        assert!(
            r.elapsed >= Duration::from_millis(190) && r.elapsed < Duration::from_secs(2),
            "{:?}",
            r.elapsed
        );
        let data = std::fs::read(&path).expect("read");
        assert_eq!(data.len(), 400 * 64);
        let mut seqs = Vec::new();
        crate::marks::for_each_mark(
            &data
                .split(|b| *b == b'\n')
                .flat_map(|l| [b"\"", l].concat())
                .collect::<Vec<u8>>(),
            |s, _| seqs.push(s),
        );
        assert_eq!(seqs, (1..=400).collect::<Vec<_>>());
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
