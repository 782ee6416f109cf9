//! Command sources (`--cmd NAME=COMMAND`): a process the operator configured, whose output
//! is a stream like standard input's.
//!
//! Only the operator's command line or configuration file names a command; no request can
//! start or change one (see SECURITY.md). The command line is split like a shell's words
//! (`shlex`), but no shell runs it: `--cmd 'sh=sh -c "…"'` when a shell is wanted. The child
//! gets an empty environment but for `PATH` and the variables its table's `env` sets, no
//! standard input, and its own process group is not made: it is killed (SIGKILL) on
//! shutdown.
//!
//! A supervisor thread copies the child's standard output into a spool (`spool.rs`, the same
//! bounded files as standard input's, followed by the stream's follower); standard error's
//! lines go into the same spool between whole output lines, marked `[stderr] `. When the child
//! exits, a line marked `[cometail] ` says how, and the command is started again after a
//! backoff (1 s, doubling up to 60 s; back to 1 s after a run of a minute or more), so a
//! command that cannot start or exits at once never restarts in a tight loop. Meanwhile the
//! stream's `state` says so (`exited`, or `error` when it cannot start, with the reason).
//! `journalctl` resumes after the last entry it delivered (`journal.rs`); secrets in a
//! command line are masked where it is shown (`redact.rs`).

mod journal;
mod redact;

pub use redact::shown_env_value;

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

/// A configured command: the stream's name, the program with its arguments, and the
/// environment it gets besides `PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandSpec {
    /// The stream's name (and id).
    pub name: String,
    /// Program and arguments, split from the configured command line.
    pub argv: Vec<String>,
    /// Variables set for it (`env` in its `[[source]]` table), over `PATH`.
    pub env: Vec<(String, String)>,
}

impl CommandSpec {
    /// Parses `NAME=COMMAND` (NAME of letters, digits, `-`, `_`, `.`; not dots alone).
    ///
    /// # Errors
    /// A message saying what is wrong, for the `--cmd` flag.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let (name, line) = raw
            .split_once('=')
            .ok_or_else(|| format!("`{raw}`: expected NAME=COMMAND"))?;
        let name = name.trim();
        super::check_name(name)?;
        let argv = shlex::split(line)
            .filter(|argv| !argv.is_empty())
            .ok_or_else(|| format!("`{line}`: not a command line (empty or unbalanced quotes)"))?;
        Ok(Self {
            name: name.to_owned(),
            argv,
            env: Vec::new(),
        })
    }
}

/// What the pipe readers send the supervisor.
enum Output {
    /// Bytes of standard output.
    Out(Vec<u8>),
    /// One whole line of standard error, with its `\n`.
    Err(Vec<u8>),
    /// The cursor of journalctl's last entry (its `-- cursor: ` line, taken out of the
    /// output).
    Cursor(String),
}

/// How one run of the command ended.
struct Run {
    status: ExitStatus,
    /// Whether it wrote anything to standard output.
    wrote: bool,
    /// The last cursor journalctl reported.
    cursor: Option<String>,
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
            if let Err(e) = supervise(&spec, &spool, &stream, &running, &cancel) {
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
    stream: &Stream,
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
    let shown = spec.redacted();
    let journal = journal::is_journalctl(&spec.argv);
    // Where the next journalctl run starts: after this cursor, or as configured.
    let mut cursor: Option<String> = None;
    while !cancel.is_cancelled() {
        let started = Instant::now();
        let argv = if journal {
            journal::argv(&spec.argv, cursor.as_deref())
        } else {
            spec.argv.clone()
        };
        let ran = run_once(&argv, &spec.env, &mut out, stream, running, cancel);
        if cancel.is_cancelled() {
            break;
        }
        let mut resume = String::new();
        let (state, said) = match ran {
            Ok(run) => {
                if run.cursor.is_some() {
                    cursor = run.cursor;
                } else if run.wrote && journal {
                    // Entries after the old cursor were shown, but not which was last.
                    cursor = None;
                    resume = ", without the cursor of its last entry (it may repeat or \
                              miss entries; `-o json` resumes exactly)"
                        .to_owned();
                }
                ("exited", format!("`{shown}` exited ({})", run.status))
            }
            Err(e) => ("error", format!("cannot start `{shown}`: {e}")),
        };
        if started.elapsed() >= STEADY_RUN {
            backoff = FIRST_BACKOFF;
        }
        if let Some(c) = cursor.as_deref().filter(|_| resume.is_empty() && journal) {
            resume = format!(", after its last entry ({c})");
        }
        let again = format!("starting it again in {} s{resume}", backoff.as_secs());
        stream.set_process(Some((state, format!("{said}; {again}"))));
        let line = format!("[cometail] {said}; {again}\n");
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
    argv: &[String],
    env: &[(String, String)],
    out: &mut Out<'_>,
    stream: &Stream,
    running: &Mutex<Option<Child>>,
    cancel: &CancellationToken,
) -> std::io::Result<Run> {
    let mut command = Command::new(&argv[0]);
    command
        .args(&argv[1..])
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(path) = std::env::var_os("PATH") {
        command.env("PATH", path);
    }
    command.envs(env.iter().map(|(k, v)| (k, v)));
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
    stream.set_process(None);
    let (tx, rx) = sync_channel(IN_FLIGHT);
    let line_bytes = usize::try_from(out.line_bytes()).unwrap_or(usize::MAX);
    let journal = journal::is_journalctl(argv);
    let readers = [
        stdout.map(|o| read_out(o, tx.clone(), journal)),
        stderr.map(|e| read_err(e, tx.clone(), line_bytes)),
    ];
    drop(tx);
    let (wrote, cursor) = copy(&rx, out)?;
    for reader in readers.into_iter().flatten() {
        let _ = reader.join();
    }
    let mut slot = running.lock().unwrap_or_else(PoisonError::into_inner);
    let status = match slot.as_mut() {
        Some(child) => child.wait(),
        None => Err(std::io::Error::other("the child is gone")),
    };
    *slot = None;
    Ok(Run {
        status: status?,
        wrote,
        cursor,
    })
}

/// Writes what the readers send until both are done: output as it comes, error lines only
/// where output is between lines (held meanwhile, at most [`HELD_ERR_LINES`]). Returns
/// whether there was any output, and the last cursor journalctl reported.
fn copy(rx: &Receiver<Output>, out: &mut Out<'_>) -> std::io::Result<(bool, Option<String>)> {
    let mut held: Vec<Vec<u8>> = Vec::new();
    let mut dropped = 0usize;
    let mut wrote = false;
    let mut cursor = None;
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
            Output::Out(bytes) => {
                wrote = true;
                // Held error lines go in after this chunk's last whole line, so that a flood
                // of output read in chunks that rarely end a line cannot starve them.
                match memchr::memrchr(b'\n', &bytes) {
                    Some(end) if !held.is_empty() || dropped > 0 => {
                        out.push(&bytes[..=end])?;
                        flush(out, &mut held, &mut dropped)?;
                        if end + 1 < bytes.len() {
                            out.push(&bytes[end + 1..])?;
                        }
                    }
                    _ => out.push(&bytes)?,
                }
            }
            Output::Err(line) if held.len() < HELD_ERR_LINES => held.push(line),
            Output::Err(_) => dropped += 1,
            Output::Cursor(c) => cursor = Some(c),
        }
        flush(out, &mut held, &mut dropped)?;
    }
    out.end_line()?;
    flush(out, &mut held, &mut dropped)?;
    Ok((wrote, cursor))
}

/// Reads standard output in chunks until it closes; journalctl's line by line, so that its
/// cursor line is taken out.
fn read_out(
    mut pipe: impl Read + Send + 'static,
    tx: SyncSender<Output>,
    journal: bool,
) -> std::thread::JoinHandle<()> {
    if journal {
        return std::thread::spawn(move || read_journal(pipe, &tx));
    }
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

/// Reads journalctl's standard output until it closes: whole lines (up to 64 KiB at a time),
/// its cursor line as [`Output::Cursor`]; an entry that carries its own cursor (`-o json`)
/// is followed by that cursor once its line is whole.
fn read_journal(pipe: impl Read, tx: &SyncSender<Output>) {
    let mut pipe = BufReader::with_capacity(64 << 10, pipe);
    let mut at_line_start = true;
    // The cursor of the entry whose line is being read, if it names one.
    let mut entry: Option<String> = None;
    loop {
        let mut chunk = Vec::new();
        match (&mut pipe).take(64 << 10).read_until(b'\n', &mut chunk) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        }
        if at_line_start {
            if let Some(cursor) = journal::cursor_of(&chunk) {
                if tx.send(Output::Cursor(cursor)).is_err() {
                    return;
                }
                continue;
            }
            entry = journal::entry_cursor(&chunk);
        }
        at_line_start = chunk.last() == Some(&b'\n');
        if tx.send(Output::Out(chunk)).is_err() {
            return;
        }
        // Only a whole line is delivered: a line cut by a SIGKILL is shown again, whole.
        if let Some(cursor) = entry.take_if(|_| at_line_start) {
            if tx.send(Output::Cursor(cursor)).is_err() {
                return;
            }
        }
    }
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
        for bad in [
            "journalctl -f",
            "=ls",
            "a b=ls",
            "..=ls",
            "x=",
            "x='open",
            "x=   ",
        ] {
            assert!(CommandSpec::parse(bad).is_err(), "{bad} accepted");
        }
    }
}
