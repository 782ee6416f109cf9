//! The same model through the real server, in both back ends: fewer, slower cases (a server
//! per case, lines read through `/lines?after=…&wait=…`), with rotations, late writes to the
//! renamed file, truncations and pauses in real time.

use super::*;

#[derive(Debug, Clone)]
enum ServerOp {
    Write(u8),
    WritePartial(u8),
    /// Rename, write this many lines to the renamed file, reopen, write a line.
    Rotate(u8),
    /// Truncate the file to zero (copytruncate).
    Truncate,
    Pause(u8),
}

// Truncations are in the mix: a truncated file keeps its inode, and only the checksum of its
// first bytes would tell its generations apart, which for a cursor at a generation's first
// line is one byte. Cursors name generations exactly within one run of the server (`life` and
// sequence number, `stream/cursor.rs`), so a reader whose cursor is in the generation before
// a truncation gets that generation's end, the `truncated` notice and the new lines. (The
// case that once failed here, `--poll`: `[Rotate(0), Pause(54), Truncate, Write(9)]`.)
fn server_op() -> impl Strategy<Value = ServerOp> {
    prop_oneof![
        5 => (1u8..20).prop_map(ServerOp::Write),
        2 => (8u8..17).prop_map(ServerOp::WritePartial),
        3 => (0u8..5).prop_map(ServerOp::Rotate),
        2 => (0u8..60).prop_map(ServerOp::Pause),
        1 => Just(ServerOp::Truncate),
    ]
}

/// The writer's side: what to write next, with the line being written in pieces.
#[derive(Default)]
struct Pen {
    pending: Option<(String, usize)>,
    next_id: u64,
}

impl Pen {
    fn lines(&mut self, n: u8) -> String {
        let mut out = String::new();
        if let Some((l, done)) = self.pending.take() {
            out.push_str(&l[done..]);
            out.push('\n');
        }
        for _ in 0..n {
            out.push_str(&line(self.next_id));
            out.push('\n');
            self.next_id += 1;
        }
        out
    }

    fn partial(&mut self, cut: u8) -> String {
        if self.pending.is_some() {
            return String::new();
        }
        let l = line(self.next_id);
        self.next_id += 1;
        let cut = usize::from(cut);
        let piece = l[..cut].to_owned();
        self.pending = Some((l, cut));
        piece
    }
}

fn server_cases() -> u32 {
    std::env::var("FOLLOW_SERVER_MODEL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8)
}

async fn server_case(poll: bool, ops: Vec<ServerOp>) -> Result<(), TestCaseError> {
    use crate::common::files::{Collector, backend_args};
    let mut args = backend_args(poll);
    args.push("{dir}/a.log");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.log");
    File::create(&path).expect("create");
    let server = crate::common::Server::start_in(dir, &args).await;
    let reader = Collector::start(&server, "a.log");
    let open = || {
        OpenOptions::new()
            .append(true)
            .create(true)
            .open(&path)
            .expect("open")
    };
    let mut ledger = Ledger::default();
    let mut pen = Pen::default();
    let mut writer = (open(), ledger.new_file());
    let mut rotations = 0;
    let rotated = |r: &Collector| r.items().iter().filter(|i| *i == "<rotated>").count();
    let write = |w: &mut (File, usize), ledger: &mut Ledger, bytes: &str| {
        w.0.write_all(bytes.as_bytes()).expect("write");
        ledger.record(w.1, bytes);
    };
    for op in ops {
        match op {
            ServerOp::Write(n) => write(&mut writer, &mut ledger, &pen.lines(n)),
            ServerOp::WritePartial(cut) => write(&mut writer, &mut ledger, &pen.partial(cut)),
            ServerOp::Rotate(late) => {
                // Rotations do not outrun the follower: it has opened the current file.
                crate::common::wait_until(
                    "the follower opened the file",
                    Duration::from_secs(20),
                    || {
                        let seen = rotated(&reader);
                        async move { seen >= rotations }
                    },
                )
                .await;
                fs::rename(&path, path.with_extension("log.1")).expect("rename");
                write(&mut writer, &mut ledger, &pen.lines(late));
                writer = (open(), ledger.new_file());
                write(&mut writer, &mut ledger, &pen.lines(1));
                rotations += 1;
            }
            ServerOp::Truncate => {
                writer.0.set_len(0).expect("truncate");
                ledger.truncate(writer.1);
            }
            ServerOp::Pause(ms) => {
                // Time passing is part of the scenario here, not a synchronisation.
                tokio::time::sleep(Duration::from_millis(u64::from(ms))).await;
            }
        }
    }
    let last = pen.lines(1);
    write(&mut writer, &mut ledger, &last);
    let sentinel = last
        .trim_end()
        .rsplit('\n')
        .next()
        .expect("a line")
        .to_owned();
    let t0 = std::time::Instant::now();
    while reader.lines().last() != Some(&sentinel) {
        if t0.elapsed() > Duration::from_secs(8) {
            let list = server.ok_json("/api/streams").await;
            let fds = crate::common::files::open_fds_under(server.dir.path());
            let content = fs::read_to_string(&path).unwrap_or_default();
            panic!(
                "the last line did not arrive: sentinel {sentinel:?}\nitems {:?}\nstreams {list}\nfds {fds:?}\nfile {content:?}",
                reader.items()
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    ledger.check(&reader.lines())?;
    prop_assert_eq!(rotated(&reader), rotations, "one notice per rotation");
    Ok(())
}

fn run_server_model(poll: bool) {
    let config = ProptestConfig {
        cases: server_cases(),
        max_shrink_iters: 20,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let mut runner = proptest::test_runner::TestRunner::new(config);
    let result = runner.run(&proptest::collection::vec(server_op(), 1..25), |ops| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(server_case(poll, ops))
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// Through the real server with file events (`FOLLOW_SERVER_MODEL_CASES` cases, 8 by
/// default).
#[test]
fn server_model_inotify() {
    run_server_model(false);
}

/// Through the real server with `--poll`.
#[test]
fn server_model_poll() {
    run_server_model(true);
}
