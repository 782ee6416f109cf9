//! Unit tests of the follower's state machine, stepped with a controlled clock over real
//! files in a temp dir.

use super::*;
use std::io::Write;
use std::time::Duration;

use crate::tail::open::STEP_BYTES;

fn texts(step: &Step) -> Vec<String> {
    let mut out = Vec::new();
    for e in &step.events {
        match e {
            Event::Lines { lines, .. } => out.extend(
                lines
                    .iter()
                    .map(|l| String::from_utf8_lossy(&l.head).into_owned()),
            ),
            Event::Opened {
                notice: Some(n), ..
            } => out.push(format!("<{}>", n.kind.as_str())),
            _ => {}
        }
    }
    out
}

fn append(path: &Path, bytes: &[u8]) {
    let mut f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open");
    f.write_all(bytes).expect("write");
}

#[test]
fn starts_at_the_last_line_then_follows_appends() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.log");
    append(&path, b"old1\nold2\npart");
    let mut f = Follower::new(&path, FollowOptions::default());
    let now = Instant::now();
    assert!(texts(&f.step(now)).is_empty());
    append(&path, b"ial\nnew\n");
    assert_eq!(texts(&f.step(now)), ["partial", "new"]);
}

#[test]
fn truncation_restarts_at_the_first_byte_with_a_notice() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.log");
    append(&path, b"one\ntwo\n");
    let mut f = Follower::new(
        &path,
        FollowOptions {
            start_at_end: false,
            ..Default::default()
        },
    );
    let now = Instant::now();
    assert_eq!(texts(&f.step(now)), ["one", "two"]);
    fs::write(&path, b"3\n").expect("truncate");
    assert_eq!(texts(&f.step(now)), ["<truncated>", "3"]);
    // Truncated and regrown past the old offset before the next look: caught by the prefix.
    fs::write(&path, b"rewritten past the old end\n").expect("rewrite");
    assert_eq!(
        texts(&f.step(now)),
        ["<truncated>", "rewritten past the old end"]
    );
}

#[test]
fn rename_rotation_drains_the_old_file_then_reads_the_new_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.log");
    append(&path, b"");
    let mut f = Follower::new(&path, FollowOptions::default());
    let now = Instant::now();
    f.step(now);
    append(&path, b"a\n");
    fs::rename(&path, dir.path().join("a.log.1")).expect("rename");
    append(&dir.path().join("a.log.1"), b"late\n");
    append(&path, b"");
    let s = f.step(now);
    assert_eq!(texts(&s), ["a", "late"]);
    assert!(s.draining);
    append(&dir.path().join("a.log.1"), b"later\n");
    append(&path, b"b\n");
    assert_eq!(texts(&f.step(now)), ["later", "<rotated>", "b"]);
}

#[test]
fn deleted_file_is_released_after_grace_and_recreation_is_followed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.log");
    append(&path, b"");
    let grace = Duration::from_millis(10);
    let mut f = Follower::new(
        &path,
        FollowOptions {
            grace,
            ..Default::default()
        },
    );
    let now = Instant::now();
    f.step(now);
    append(&path, b"x\nunterminated");
    fs::remove_file(&path).expect("rm");
    assert_eq!(texts(&f.step(now)), ["x"]);
    assert_eq!(texts(&f.step(now + grace)), ["unterminated"]);
    assert!(matches!(f.phase, Phase::Closed) && f.retained.is_none());
    append(&path, b"y\n");
    assert_eq!(texts(&f.step(now + grace)), ["<rotated>", "y"]);
}

/// Steps until a step reports nothing more to read, collecting what it delivered.
fn drain(f: &mut Follower, now: Instant) -> Vec<String> {
    let mut out = Vec::new();
    for _ in 0..1000 {
        let s = f.step(now);
        out.extend(texts(&s));
        if !s.more {
            return out;
        }
    }
    panic!("the follower kept asking for more");
}

#[test]
fn rotation_with_more_unread_than_one_step_reads_loses_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.log");
    append(&path, b"");
    let mut f = Follower::new(&path, FollowOptions::default());
    let now = Instant::now();
    f.step(now);
    // Three steps' worth of lines (12 MiB), then a rotation with data in the new file.
    let line = format!("{}\n", "x".repeat(1023));
    let n = 3 * STEP_BYTES / line.len();
    append(&path, line.repeat(n).as_bytes());
    append(&path, b"last old\n");
    fs::rename(&path, dir.path().join("a.log.1")).expect("rename");
    append(&path, b"new\n");
    let got = drain(&mut f, now);
    assert_eq!(got.len(), n + 3, "every old line, the notice, the new line");
    assert_eq!(got[n..], ["last old", "<rotated>", "new"]);
}

#[test]
fn deleted_file_with_more_unread_than_one_step_is_read_to_its_end_after_grace() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.log");
    append(&path, b"");
    let grace = Duration::from_millis(10);
    let opts = FollowOptions {
        grace,
        ..Default::default()
    };
    let mut f = Follower::new(&path, opts);
    let now = Instant::now();
    f.step(now);
    let line = format!("{}\n", "y".repeat(1023));
    let n = 3 * STEP_BYTES / line.len();
    // Deleted before the follower looks: the first step sees the loss, then reads.
    let mut w = fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .expect("open");
    w.write_all(line.repeat(n).as_bytes()).expect("write");
    fs::remove_file(&path).expect("rm");
    w.write_all(b"late\n").expect("write");
    let mut got = drain(&mut f, now);
    got.extend(drain(&mut f, now + grace));
    assert_eq!(got.len(), n + 1);
    assert_eq!(got[n], "late");
    assert!(matches!(f.phase, Phase::Closed));
}

#[test]
fn truncation_drops_a_held_partial_line_instead_of_tearing_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.log");
    append(&path, b"");
    let mut f = Follower::new(&path, FollowOptions::default());
    let now = Instant::now();
    f.step(now);
    append(&path, b"whole\nhalf of a li");
    assert_eq!(texts(&f.step(now)), ["whole"]);
    fs::write(&path, b"ne\nnext\n").expect("truncate and rewrite");
    let s = f.step(now);
    assert_eq!(texts(&s), ["<truncated>", "ne", "next"]);
    let detail = s.events.iter().find_map(|e| match e {
        Event::Opened {
            notice: Some(n), ..
        } => Some(n.detail.clone()),
        _ => None,
    });
    assert!(
        detail.is_some_and(|d| d.contains("partial last line of 12 bytes was lost")),
        "the notice says what was lost"
    );
}

#[test]
fn same_size_rewrite_within_one_timestamp_tick_is_noticed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.log");
    append(&path, b"");
    let mut f = Follower::new(&path, FollowOptions::default());
    let now = Instant::now();
    f.step(now);
    append(&path, b"aaaa\n");
    assert_eq!(texts(&f.step(now)), ["aaaa"]);
    // Same size, and (on a coarse clock) most likely the same mtime.
    fs::write(&path, b"bbbb\n").expect("rewrite");
    assert_eq!(texts(&f.step(now)), ["<truncated>", "bbbb"]);
}

#[test]
fn missing_file_and_directory_are_states_not_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("sub/a.log");
    let mut f = Follower::new(&path, FollowOptions::default());
    let s = f.step(Instant::now());
    assert!(
        matches!(&s.events[..], [Event::State(FileState::Waiting(r))] if r == "directory does not exist")
    );
    fs::create_dir_all(&path).expect("mkdir");
    let s = f.step(Instant::now());
    assert!(matches!(&s.events[..], [Event::State(FileState::Error(r))] if r == "is a directory"));
    fs::remove_dir(&path).expect("rmdir");
    append(&path, b"z\n");
    assert_eq!(texts(&f.step(Instant::now())), ["z"]);
}

#[test]
fn a_file_back_after_an_absence_longer_than_the_grace_is_read_on_without_replay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.log");
    let away = dir.path().join("away.log");
    append(&path, b"");
    let grace = Duration::from_millis(10);
    let opts = FollowOptions {
        grace,
        ..Default::default()
    };
    let mut f = Follower::new(&path, opts);
    let now = Instant::now();
    f.step(now);
    append(&path, b"a\nb\n");
    assert_eq!(texts(&f.step(now)), ["a", "b"]);
    fs::rename(&path, &away).expect("rename away");
    f.step(now);
    f.step(now + grace);
    assert!(matches!(f.phase, Phase::Closed), "given up after the grace");
    fs::rename(&away, &path).expect("rename back");
    append(&path, b"c\n");
    assert_eq!(
        texts(&f.step(now + grace)),
        ["c"],
        "no notice, nothing replayed"
    );
    // A real new file under the path is still a rotation.
    fs::rename(&path, &away).expect("rename away");
    f.step(now + grace);
    f.step(now + grace * 2);
    append(&path, b"d\n");
    assert_eq!(texts(&f.step(now + grace * 2)), ["<rotated>", "d"]);
}

#[test]
fn truncate_and_regrow_past_the_first_kib_is_a_truncation_not_a_torn_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.log");
    append(&path, b"");
    let mut f = Follower::new(&path, FollowOptions::default());
    let now = Instant::now();
    f.step(now);
    let old: Vec<String> = (0..40)
        .map(|i| format!("old {i:03} {}", "o".repeat(90)))
        .collect();
    append(&path, format!("{}\n", old.join("\n")).as_bytes());
    assert_eq!(texts(&f.step(now)).len(), 40);
    // Cut in the middle of a line past the first KiB, then regrown past the old end.
    let w = fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("open");
    w.set_len(2_050).expect("truncate");
    let new: Vec<String> = (0..40)
        .map(|i| format!("new {i:03} {}", "n".repeat(90)))
        .collect();
    append(&path, format!("\n{}\n", new.join("\n")).as_bytes());
    let got = texts(&f.step(now));
    assert_eq!(got.first().map(String::as_str), Some("<truncated>"));
    assert!(got.ends_with(&new), "every new line is delivered");
    for line in &got[1..] {
        assert!(
            old.contains(line)
                || new.contains(line)
                || old.iter().any(|o| o.starts_with(line.as_str())),
            "no torn fragment passed off as a line: {line:?}"
        );
    }
}

#[test]
fn copytruncate_loses_nothing_that_reached_the_copy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.log");
    append(&path, b"");
    let mut f = Follower::new(&path, FollowOptions::default());
    let now = Instant::now();
    f.step(now);
    let lines: Vec<String> = (0..30)
        .map(|i| format!("line {i:03} {}", "z".repeat(80)))
        .collect();
    append(&path, format!("{}\n", lines[..20].join("\n")).as_bytes());
    assert_eq!(texts(&f.step(now)).len(), 20);
    // Written, not read yet, then copied away and truncated (logrotate copytruncate).
    append(&path, format!("{}\n", lines[20..].join("\n")).as_bytes());
    fs::copy(&path, dir.path().join("a.log.1")).expect("copy");
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("open")
        .set_len(0)
        .expect("truncate");
    append(&path, b"after\n");
    let got = texts(&f.step(now));
    let mut want: Vec<String> = lines[20..].to_vec();
    want.extend(["<truncated>".to_owned(), "after".to_owned()]);
    assert_eq!(got, want);
}

/// The generations a step's `Opened` events start: (seq, start, notice kind).
fn opened(step: &Step) -> Vec<(u64, u64, Option<&'static str>)> {
    step.events
        .iter()
        .filter_map(|e| match e {
            Event::Opened {
                generation, notice, ..
            } => Some((
                generation.seq,
                generation.start(),
                notice.as_ref().map(|n| n.kind.as_str()),
            )),
            _ => None,
        })
        .collect()
}

#[test]
fn late_lines_in_the_rotated_file_after_the_new_one_has_data_are_a_late_segment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.log");
    let rotated = dir.path().join("a.log.1");
    append(&path, b"");
    let mut f = Follower::new(&path, FollowOptions::default());
    let t0 = Instant::now();
    f.step(t0);
    append(&path, b"a\n");
    fs::rename(&path, &rotated).expect("rename");
    append(&path, b"n1\n");
    assert_eq!(texts(&f.step(t0)), ["a", "<rotated>", "n1"]);
    // A second writer still holds the rotated file, and the new file has data.
    append(&rotated, b"late1\nlate2\npart");
    append(&path, b"n2\n");
    let t1 = t0 + LATE_EVERY;
    let s = f.step(t1);
    assert_eq!(texts(&s), ["n2", "<late>", "late1", "late2"]);
    // The late segment starts where the rotated file was left; the new file goes on in a
    // segment of its own where it stood, with no notice.
    assert_eq!(opened(&s), [(2, 2, Some("late")), (3, 6, None)]);
    // More late lines within the interval wait for its end (and ask to be stepped soon).
    append(&rotated, b"ial\nlate3\n");
    append(&path, b"n3\n");
    let s = f.step(t1 + LATE_EVERY / 2);
    assert_eq!(texts(&s), ["n3"]);
    assert!(s.draining, "stepped again soon for the waiting late lines");
    let s = f.step(t1 + LATE_EVERY);
    assert_eq!(texts(&s), ["<late>", "partial", "late3"]);
    assert_eq!(opened(&s), [(4, 14, Some("late")), (5, 9, None)]);
    append(&path, b"n4\n");
    assert_eq!(texts(&f.step(t1 + 2 * LATE_EVERY)), ["n4"]);
    // Every segment of a file shares its identity; the last one of each reads on.
    assert_eq!(f.current().map(|g| (g.seq, g.start())), Some((5, 9)));
    assert_eq!(f.retained().map(|g| (g.seq, g.start())), Some((4, 14)));
}

#[test]
fn a_late_line_that_continues_the_unterminated_last_line_is_marked_cut() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.log");
    let rotated = dir.path().join("a.log.1");
    append(&path, b"");
    let mut f = Follower::new(&path, FollowOptions::default());
    let t0 = Instant::now();
    f.step(t0);
    append(&path, b"a\nhalf");
    fs::rename(&path, &rotated).expect("rename");
    append(&path, b"n1\n");
    // Leaving the rotated file delivers its unterminated last line as a line.
    assert_eq!(texts(&f.step(t0)), ["a", "half", "<rotated>", "n1"]);
    append(&rotated, b" more\nlate\n");
    let s = f.step(t0 + LATE_EVERY);
    assert_eq!(texts(&s), ["<late>", "", "late"]);
    // An empty head with a length: `line_text` marks it truncated.
    let lines: Vec<(usize, u64)> = s
        .events
        .iter()
        .flat_map(|e| match e {
            Event::Lines { lines, .. } => lines.iter().map(|l| (l.head.len(), l.len)).collect(),
            _ => Vec::new(),
        })
        .collect();
    assert_eq!(
        lines,
        [(0, 5), (4, 4)],
        "the rest of `half` is not passed off as a line"
    );
}

#[test]
fn a_deleted_rotated_file_gives_no_late_lines_and_is_let_go() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.log");
    let rotated = dir.path().join("a.log.1");
    append(&path, b"");
    let mut f = Follower::new(&path, FollowOptions::default());
    let t0 = Instant::now();
    f.step(t0);
    append(&path, b"a\n");
    fs::rename(&path, &rotated).expect("rename");
    append(&path, b"n1\n");
    f.step(t0);
    let mut writer = fs::OpenOptions::new()
        .append(true)
        .open(&rotated)
        .expect("open");
    fs::remove_file(&rotated).expect("delete");
    writer.write_all(b"lost\n").expect("write");
    append(&path, b"n2\n");
    assert_eq!(texts(&f.step(t0 + LATE_EVERY)), ["n2"]);
    assert!(f.retained().is_none());
}
