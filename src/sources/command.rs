//! Command sources (`--cmd NAME=COMMAND`): a process the operator configured, whose output
//! is a stream like standard input's.
//!
//! Only the operator's command line or configuration file names a command; no request can
//! start or change one (see SECURITY.md). The command line is split like a shell's words
//! (`shlex`), but no shell runs it: `--cmd 'sh=sh -c "…"'` when a shell is wanted. The child
//! gets an empty environment but for `PATH`, no standard input, and its own process group
//! is not made: it is killed (SIGKILL) on shutdown.
//!
//! A supervisor thread copies the child's standard output into a spool (`spool.rs`, the same
//! bounded files as standard input's, followed by the stream's follower); standard error's
//! lines go into the same spool between whole output lines, marked `[stderr] `. When the child
//! exits, a line marked `[cometail] ` says how, and the command is started again after a
//! backoff (1 s, doubling up to 60 s; back to 1 s after a run of a minute or more), so a
//! command that cannot start or exits at once never restarts in a tight loop.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::spool::{Out, SpoolProgress};
use crate::stream::Stream;

/// The first wait before a restart.
pub(super) const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait before a restart.
pub(super) const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// A run at least this long resets the backoff to [`FIRST_BACKOFF`].
const STEADY_RUN: Duration = Duration::from_secs(60);
/// Chunks of output in flight between the pipe readers and the spool: bounds memory while the
/// spool waits for the follower (the child then blocks on its full pipe).
const IN_FLIGHT: usize = 16;
/// Whole lines of standard error held while standard output is in the middle of a line; more
/// are dropped and counted.
const HELD_ERR_LINES: usize = 1024;

/// A configured command: the stream's name and the program with its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandSpec {
    /// The stream's name (and id).
    pub name: String,
    /// Program and arguments, split from the configured command line.
    pub argv: Vec<String>,
}

impl CommandSpec {
    /// Parses `NAME=COMMAND` (NAME of letters, digits, `-`, `_`, `.`).
    ///
    /// # Errors
    /// A message saying what is wrong, for the `--cmd` flag.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let (name, line) = raw
            .split_once('=')
            .ok_or_else(|| format!("`{raw}`: expected NAME=COMMAND"))?;
        let name = name.trim();
        let plain = name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if name.is_empty() || !plain {
            return Err(format!(
                "`{name}`: a command's name is letters, digits, `-`, `_` and `.`"
            ));
        }
        let argv = shlex::split(line)
            .filter(|argv| !argv.is_empty())
            .ok_or_else(|| format!("`{line}`: not a command line (empty or unbalanced quotes)"))?;
        Ok(Self {
            name: name.to_owned(),
            argv,
        })
    }
}

/// What the pipe readers send the supervisor.
enum Output {
    /// Bytes of standard output.
    Out(Vec<u8>),
    /// One whole line of standard error, with its `\n`.
    Err(Vec<u8>),
}

/// Where a supervisor writes: the spool and its limits.
pub(super) struct Spool {
    pub(super) path: PathBuf,
    pub(super) segment_bytes: u64,
    pub(super) line_bytes: u64,
    pub(super) progress: Arc<SpoolProgress>,
}

/// Starts `spec` and keeps it running until `cancel`, its output into `spool`. The supervisor
/// is a thread of its own (reading pipes blocks); a task on `tracker` kills the child on
/// shutdown.
pub(super) fn spawn(
    spec: CommandSpec,
    spool: Spool,
    stream: Arc<Stream>,
    tracker: &TaskTracker,
    cancel: CancellationToken,
) {
    let running: Arc<Mutex<Option<Child>>> = Arc::default();
    let kill = running.clone();
    let stop = cancel.clone();
    tracker.spawn(async move {
        stop.cancelled().await;
        if let Some(child) = kill.lock().unwrap_or_else(PoisonError::into_inner).as_mut() {
            let _ = child.kill();
        }
    });
    let name = spec.name.clone();
    let spawned = std::thread::Builder::new()
        .name(format!("cmd-{name}"))
        .spawn(move || {
            if let Err(e) = supervise(&spec, &spool, &running, &cancel) {
                tracing::warn!(
                    "command {}: its spool failed: {e}",
                    crate::logging::escape_for_log(&spec.name)
                );
            }
            spool
                .progress
                .input_ended
                .store(true, std::sync::atomic::Ordering::Release);
            drop(stream);
        });
    if let Err(e) = spawned {
        tracing::error!(
            "cannot start the supervisor of command {}: {e}",
            crate::logging::escape_for_log(&name)
        );
    }
}

/// Runs the command again and again, with backoff, until `cancel`.
fn supervise(
    spec: &CommandSpec,
    spool: &Spool,
    running: &Mutex<Option<Child>>,
    cancel: &CancellationToken,
) -> std::io::Result<()> {
    let mut out = Out::open(
        &spool.path,
        spool.segment_bytes,
        spool.line_bytes,
        &spool.progress,
    )?;
    let mut backoff = FIRST_BACKOFF;
    let shown = shlex::try_join(spec.argv.iter().map(String::as_str))
        .unwrap_or_else(|_| spec.argv.join(" "));
    while !cancel.is_cancelled() {
        let started = Instant::now();
        let ran = run_once(spec, &mut out, running, cancel);
        if cancel.is_cancelled() {
            break;
        }
        let said = match ran {
            Ok(status) => format!("`{shown}` exited ({status})"),
            Err(e) => format!("cannot start `{shown}`: {e}"),
        };
        if started.elapsed() >= STEADY_RUN {
            backoff = FIRST_BACKOFF;
        }
        let line = format!(
            "[cometail] {said}; starting it again in {} s\n",
            backoff.as_secs()
        );
        out.end_line()?;
        out.push(line.as_bytes())?;
        // Waits out the backoff in short steps, so that shutdown is not held up.
        let until = Instant::now() + backoff;
        while Instant::now() < until && !cancel.is_cancelled() {
            std::thread::sleep(Duration::from_millis(50));
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
    Ok(())
}

/// Starts the command once and copies its output until both pipes close; returns how it
/// ended.
fn run_once(
    spec: &CommandSpec,
    out: &mut Out<'_>,
    running: &Mutex<Option<Child>>,
    cancel: &CancellationToken,
) -> std::io::Result<ExitStatus> {
    let mut command = Command::new(&spec.argv[0]);
    command
        .args(&spec.argv[1..])
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(path) = std::env::var_os("PATH") {
        command.env("PATH", path);
    }
    let (stdout, stderr) = {
        // Under the lock, so that shutdown either sees the child or sees it never started.
        let mut slot = running.lock().unwrap_or_else(PoisonError::into_inner);
        if cancel.is_cancelled() {
            return Err(std::io::Error::other("shutting down"));
        }
        let mut child = command.spawn()?;
        let pipes = (child.stdout.take(), child.stderr.take());
        *slot = Some(child);
        pipes
    };
    let (tx, rx) = sync_channel(IN_FLIGHT);
    let line_bytes = usize::try_from(out.line_bytes()).unwrap_or(usize::MAX);
    let readers = [
        stdout.map(|o| read_out(o, tx.clone())),
        stderr.map(|e| read_err(e, tx.clone(), line_bytes)),
    ];
    drop(tx);
    copy(&rx, out)?;
    for reader in readers.into_iter().flatten() {
        let _ = reader.join();
    }
    let mut slot = running.lock().unwrap_or_else(PoisonError::into_inner);
    let status = match slot.as_mut() {
        Some(child) => child.wait(),
        None => Err(std::io::Error::other("the child is gone")),
    };
    *slot = None;
    status
}

/// Writes what the readers send until both are done: output as it comes, error lines only
/// where output is between lines (held meanwhile, at most [`HELD_ERR_LINES`]).
fn copy(rx: &Receiver<Output>, out: &mut Out<'_>) -> std::io::Result<()> {
    let mut held: Vec<Vec<u8>> = Vec::new();
    let mut dropped = 0usize;
    let flush = |out: &mut Out<'_>, held: &mut Vec<Vec<u8>>, dropped: &mut usize| {
        if !out.at_line_start() {
            return Ok(());
        }
        for line in held.drain(..) {
            out.push(b"[stderr] ")?;
            out.push(&line)?;
        }
        if *dropped > 0 {
            let note = format!("[cometail] {dropped} lines of standard error dropped\n");
            out.push(note.as_bytes())?;
            *dropped = 0;
        }
        std::io::Result::Ok(())
    };
    while let Ok(msg) = rx.recv() {
        match msg {
            Output::Out(bytes) => out.push(&bytes)?,
            Output::Err(line) if held.len() < HELD_ERR_LINES => held.push(line),
            Output::Err(_) => dropped += 1,
        }
        flush(out, &mut held, &mut dropped)?;
    }
    out.end_line()?;
    flush(out, &mut held, &mut dropped)
}

/// Reads standard output in chunks until it closes.
fn read_out(
    mut pipe: impl Read + Send + 'static,
    tx: SyncSender<Output>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 << 10];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    if tx.send(Output::Out(buf[..n].to_vec())).is_err() {
                        return;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    })
}

/// Reads standard error line by line (at most `line_bytes` of each; the rest is dropped)
/// until it closes.
fn read_err(
    pipe: impl Read + Send + 'static,
    tx: SyncSender<Output>,
    line_bytes: usize,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut pipe = BufReader::new(pipe);
        loop {
            let mut line = Vec::new();
            let limit = u64::try_from(line_bytes).unwrap_or(u64::MAX);
            match (&mut pipe).take(limit).read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if line.last() != Some(&b'\n') {
                // Cut (or the last line, without its newline): skip to the end of the line.
                let _ = skip_line(&mut pipe);
                line.push(b'\n');
            }
            if tx.send(Output::Err(line)).is_err() {
                return;
            }
        }
    })
}

/// Reads up to and including the next `\n`, keeping nothing.
fn skip_line(pipe: &mut impl BufRead) -> std::io::Result<()> {
    loop {
        let buf = pipe.fill_buf()?;
        if buf.is_empty() {
            return Ok(());
        }
        if let Some(i) = memchr::memchr(b'\n', buf) {
            pipe.consume(i + 1);
            return Ok(());
        }
        let n = buf.len();
        pipe.consume(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_line_is_split_like_shell_words_without_a_shell() {
        let spec = CommandSpec::parse("journal=journalctl -f -o 'short iso'").expect("valid");
        assert_eq!(spec.name, "journal");
        assert_eq!(spec.argv, ["journalctl", "-f", "-o", "short iso"]);
        let spec = CommandSpec::parse("x=echo a=b").expect("`=` after the first is the command's");
        assert_eq!(spec.argv, ["echo", "a=b"]);
        for bad in ["journalctl -f", "=ls", "a b=ls", "x=", "x='open", "x=   "] {
            assert!(CommandSpec::parse(bad).is_err(), "{bad} accepted");
        }
    }
}
