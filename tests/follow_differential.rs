//! GNU `tail -F` as an oracle: the same scripted file operations are watched by
//! `/usr/bin/tail -F -n +1 -s 0.1` (a child process) and by cometail (in-process, read through
//! `/lines?after=…&wait=…`), and the delivered line sequences are compared.
//!
//! Every scenario runs in both of cometail's back ends: file events (paired with GNU tail's
//! inotify mode) and `--poll` (paired with GNU tail's polling mode, `---disable-inotify`).
//! After each operation the test waits, with a deadline, until cometail has delivered exactly
//! what it must and GNU tail's output contains what it must and has been quiet for a moment.
//!
//! Where the two differ by design, the test says so: lines written to a file after it was
//! renamed or deleted are read by cometail for `--rotate-grace` and may be lost by GNU tail,
//! so there cometail must deliver everything GNU tail delivers, in order, plus those lines.

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::files::{Collector, backend_args, is_subsequence, wait_state};
use crate::common::{Server, append};

const DEADLINE: Duration = Duration::from_secs(15);
/// How long GNU tail's output must stay unchanged to count as settled (3× its poll interval,
/// and 5 unchanged polls make it re-check a name).
const QUIET: Duration = Duration::from_millis(700);

/// A running `tail -F` and everything it printed so far.
struct GnuTail {
    child: Child,
    out: Arc<Mutex<Vec<u8>>>,
    err: Arc<Mutex<Vec<u8>>>,
}

impl GnuTail {
    fn start(paths: &[PathBuf], poll: bool) -> Self {
        let mut cmd = Command::new("/usr/bin/tail");
        cmd.args(["-F", "-n", "+1", "-s", "0.1"]);
        if poll {
            cmd.arg("---disable-inotify");
        }
        let mut child = cmd
            .args(paths)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("GNU tail (/usr/bin/tail, coreutils) runs");
        let out: Arc<Mutex<Vec<u8>>> = Arc::default();
        let err: Arc<Mutex<Vec<u8>>> = Arc::default();
        copy_to(child.stdout.take().expect("piped"), out.clone());
        copy_to(child.stderr.take().expect("piped"), err.clone());
        Self { child, out, err }
    }

    /// Complete lines per file: the key is the path from a `==> path <==` header, or `""`
    /// when tail prints none (one file).
    fn lines(&self) -> HashMap<String, Vec<String>> {
        let out = self.out.lock().unwrap().clone();
        let text = String::from_utf8_lossy(&out);
        let mut by_file: HashMap<String, Vec<String>> = HashMap::new();
        let mut current = String::new();
        let complete = match text.rfind('\n') {
            Some(i) => &text[..i],
            None => return by_file,
        };
        for line in complete.split('\n') {
            if let Some(name) = line
                .strip_prefix("==> ")
                .and_then(|l| l.strip_suffix(" <=="))
            {
                current = name.to_owned();
            } else if !line.is_empty() {
                // Empty lines only separate headers: no scripted line is empty.
                by_file
                    .entry(current.clone())
                    .or_default()
                    .push(line.to_owned());
            }
        }
        by_file
    }

    /// Complete lines of the only file followed.
    fn only(&self) -> Vec<String> {
        self.lines().remove("").unwrap_or_default()
    }

    /// What follows the last newline (a partial line).
    fn partial(&self) -> String {
        let out = self.out.lock().unwrap();
        let start = out.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        String::from_utf8_lossy(&out[start..]).into_owned()
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.err.lock().unwrap()).into_owned()
    }

    /// Waits until `pred` holds and the output has not changed for [`QUIET`].
    async fn settle(&self, what: &str, pred: impl Fn(&Self) -> bool) {
        let start = Instant::now();
        let mut last = (Vec::new(), Instant::now());
        loop {
            let now = self.out.lock().unwrap().clone();
            if now != last.0 {
                last = (now, Instant::now());
            }
            if pred(self) && last.1.elapsed() >= QUIET {
                return;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "GNU tail did not settle: {what}; stdout {:?}; stderr {:?}",
                String::from_utf8_lossy(&last.0),
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for GnuTail {
    fn drop(&mut self) {
        // Our own child, by its handle.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn copy_to(mut from: impl Read + Send + 'static, to: Arc<Mutex<Vec<u8>>>) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 {
                break;
            }
            to.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
}

/// cometail and GNU tail following the same files.
struct Pair {
    server: Server,
    gnu: GnuTail,
    readers: HashMap<String, Collector>,
}

impl Pair {
    /// Starts both on `files` (names under the temp dir `dir`; the stream id is the file
    /// name), in the back end `poll` selects.
    async fn start(poll: bool, dir: tempfile::TempDir, files: &[&str]) -> Self {
        let paths: Vec<PathBuf> = files.iter().map(|f| dir.path().join(f)).collect();
        let mut args: Vec<&str> = backend_args(poll);
        let patterns: Vec<String> = files.iter().map(|f| format!("{{dir}}/{f}")).collect();
        args.extend(patterns.iter().map(String::as_str));
        let server = Server::start_in(dir, &args).await;
        let readers = paths
            .iter()
            .map(|p| {
                let id = id_of(p);
                let reader = Collector::start(&server, &id);
                (id, reader)
            })
            .collect();
        let gnu = GnuTail::start(&paths, poll);
        Self {
            server,
            gnu,
            readers,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.server.path(name)
    }

    fn reader(&self, id: &str) -> &Collector {
        &self.readers[id]
    }

    /// Waits until cometail delivered exactly `items` (lines and `<notice>`s) for the one
    /// followed file and GNU tail printed `gnu_must` (in order, possibly with more) and then
    /// went quiet.
    async fn settle(&self, items: &[&str], gnu_must: &[&str]) {
        assert_eq!(self.readers.len(), 1);
        let reader = self.readers.values().next().expect("one reader");
        reader.wait_exact(items, DEADLINE).await;
        let must: Vec<String> = gnu_must.iter().map(|s| (*s).to_owned()).collect();
        self.gnu
            .settle(&format!("{gnu_must:?}"), |g| {
                is_subsequence(&must, &g.only())
            })
            .await;
    }

    /// cometail's lines (notices left out) equal GNU tail's.
    fn assert_same_lines(&self) {
        let reader = self.readers.values().next().expect("one reader");
        assert_eq!(
            reader.lines(),
            self.gnu.only(),
            "cometail and GNU tail delivered different lines; GNU stderr: {}",
            self.gnu.stderr()
        );
    }

    /// cometail delivered every line GNU tail did, in order, and beyond that only `extra`.
    fn assert_superset(&self, extra: &[&str]) {
        let ours = self.readers.values().next().expect("one reader").lines();
        let gnu = self.gnu.only();
        assert!(
            is_subsequence(&gnu, &ours),
            "GNU tail delivered {gnu:?}, not all of them in cometail's {ours:?}"
        );
        let beyond: Vec<&String> = ours.iter().filter(|l| !gnu.contains(l)).collect();
        assert!(
            beyond.iter().all(|l| extra.contains(&l.as_str())),
            "cometail delivered {beyond:?} beyond GNU tail; only {extra:?} were expected"
        );
    }
}

fn id_of(path: &Path) -> String {
    path.file_name()
        .expect("a file name")
        .to_string_lossy()
        .into_owned()
}

fn numbered(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("{prefix}{i}")).collect()
}

fn joined(lines: &[String]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn open_append(path: &Path) -> fs::File {
    OpenOptions::new()
        .append(true)
        .open(path)
        .expect("open for appending")
}

/// Generates the two back-end variants of a scenario.
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread")]
            async fn inotify() {
                super::$name(false).await;
            }

            #[tokio::test(flavor = "multi_thread")]
            async fn poll() {
                super::$name(true).await;
            }
        }
    )*};
}

both_backends!(
    appended_lines,
    truncate,
    rename_rotation,
    delete_and_recreate,
    missing_at_start,
    missing_parent_directory,
    symlink_repointed,
    several_files_at_once,
    partial_last_line,
    late_writers_after_the_new_file_has_data,
);

async fn appended_lines(poll: bool) {
    let dir = tempfile::tempdir().unwrap();
    crate::common::append(&dir.path().join("a.log"), "a1\na2\n");
    let t = Pair::start(poll, dir, &["a.log"]).await;
    t.settle(&["a1", "a2"], &["a1", "a2"]).await;
    let mut want = vec!["a1".to_owned(), "a2".to_owned()];
    for i in 0..5 {
        let batch = numbered(&format!("b{i}-"), 0..20);
        append(&t.path("a.log"), joined(&batch));
        want.extend(batch);
    }
    t.settle(&strs(&want), &strs(&want)).await;
    t.assert_same_lines();
}

async fn truncate(poll: bool) {
    let dir = tempfile::tempdir().unwrap();
    crate::common::append(&dir.path().join("a.log"), "t1\nt2\nt3\n");
    let t = Pair::start(poll, dir, &["a.log"]).await;
    t.settle(&["t1", "t2", "t3"], &["t1", "t2", "t3"]).await;
    // copytruncate: the file is cut to zero and its writer appends on (shorter than before,
    // so that GNU tail, which compares sizes only, notices too).
    open_append(&t.path("a.log")).set_len(0).unwrap();
    append(&t.path("a.log"), "u1\nu2\n");
    // A reader whose `next` is the cursor of the last line read from disk history (`t3`,
    // from the first `last=` load) gets no `gap` when that generation's file is released.
    let want = ["t1", "t2", "t3", "<truncated>", "u1", "u2"];
    let reader = t.reader("a.log");
    reader
        .wait_items("the lines and the truncated notice", DEADLINE, |got| {
            got.iter().map(String::as_str).eq(want)
        })
        .await;
    t.settle(&strs(&reader.items()), &["t1", "t2", "t3", "u1", "u2"])
        .await;
    t.assert_same_lines();
    assert!(
        t.gnu.stderr().contains("file truncated"),
        "{}",
        t.gnu.stderr()
    );
}

async fn rename_rotation(poll: bool) {
    let dir = tempfile::tempdir().unwrap();
    crate::common::append(&dir.path().join("a.log"), "r1\nr2\n");
    let t = Pair::start(poll, dir, &["a.log"]).await;
    t.settle(&["r1", "r2"], &["r1", "r2"]).await;
    let mut writer = open_append(&t.path("a.log"));
    fs::rename(t.path("a.log"), t.path("a.log.1")).unwrap();
    // The writer has not reopened yet: cometail reads these for `--rotate-grace`.
    writer.write_all(b"late1\nlate2\n").unwrap();
    t.settle(&["r1", "r2", "late1", "late2"], &["r1", "r2"])
        .await;
    append(&t.path("a.log"), "n1\nn2\n");
    t.settle(
        &["r1", "r2", "late1", "late2", "<rotated>", "n1", "n2"],
        &["r1", "r2", "n1", "n2"],
    )
    .await;
    t.assert_superset(&["late1", "late2"]);
}

async fn delete_and_recreate(poll: bool) {
    let dir = tempfile::tempdir().unwrap();
    crate::common::append(&dir.path().join("a.log"), "d1\n");
    let t = Pair::start(poll, dir, &["a.log"]).await;
    t.settle(&["d1"], &["d1"]).await;
    let mut writer = open_append(&t.path("a.log"));
    fs::remove_file(t.path("a.log")).unwrap();
    wait_state(&t.server, "a.log", "waiting", Some("file does not exist")).await;
    writer.write_all(b"d2\n").unwrap();
    t.settle(&["d1", "d2"], &["d1"]).await;
    drop(writer);
    append(&t.path("a.log"), "e1\n");
    t.settle(&["d1", "d2", "<rotated>", "e1"], &["d1", "e1"])
        .await;
    wait_state(&t.server, "a.log", "following", None).await;
    t.assert_superset(&["d2"]);
}

async fn missing_at_start(poll: bool) {
    let dir = tempfile::tempdir().unwrap();
    let t = Pair::start(poll, dir, &["a.log"]).await;
    wait_state(&t.server, "a.log", "waiting", Some("file does not exist")).await;
    t.settle(&[], &[]).await;
    append(&t.path("a.log"), "m1\nm2\n");
    t.settle(&["m1", "m2"], &["m1", "m2"]).await;
    wait_state(&t.server, "a.log", "following", None).await;
    append(&t.path("a.log"), "m3\n");
    t.settle(&["m1", "m2", "m3"], &["m1", "m2", "m3"]).await;
    t.assert_same_lines();
}

async fn missing_parent_directory(poll: bool) {
    let dir = tempfile::tempdir().unwrap();
    let t = Pair::start(poll, dir, &["sub/a.log"]).await;
    wait_state(
        &t.server,
        "a.log",
        "waiting",
        Some("directory does not exist"),
    )
    .await;
    fs::create_dir(t.path("sub")).unwrap();
    wait_state(&t.server, "a.log", "waiting", Some("file does not exist")).await;
    append(&t.path("sub/a.log"), "p1\n");
    t.settle(&["p1"], &["p1"]).await;
    // The whole directory goes away and comes back.
    fs::remove_dir_all(t.path("sub")).unwrap();
    wait_state(
        &t.server,
        "a.log",
        "waiting",
        Some("directory does not exist"),
    )
    .await;
    t.settle(&["p1"], &["p1"]).await;
    fs::create_dir(t.path("sub")).unwrap();
    append(&t.path("sub/a.log"), "p2\n");
    t.settle(&["p1", "<rotated>", "p2"], &["p1", "p2"]).await;
    wait_state(&t.server, "a.log", "following", None).await;
    t.assert_same_lines();
}

async fn symlink_repointed(poll: bool) {
    let dir = tempfile::tempdir().unwrap();
    let (t1, t2) = (dir.path().join("t1.log"), dir.path().join("t2.log"));
    crate::common::append(&t1, "x1\n");
    crate::common::append(&t2, "y1\n");
    std::os::unix::fs::symlink(&t1, dir.path().join("a.log")).unwrap();
    let t = Pair::start(poll, dir, &["a.log"]).await;
    t.settle(&["x1"], &["x1"]).await;
    append(&t1, "x2\n");
    t.settle(&["x1", "x2"], &["x1", "x2"]).await;
    // Re-point atomically, as `ln -sfn` does through a temporary link.
    std::os::unix::fs::symlink(&t2, t.path("a.log.tmp")).unwrap();
    fs::rename(t.path("a.log.tmp"), t.path("a.log")).unwrap();
    append(&t2, "y2\n");
    t.settle(
        &["x1", "x2", "<rotated>", "y1", "y2"],
        &["x1", "x2", "y1", "y2"],
    )
    .await;
    t.assert_same_lines();
}

async fn several_files_at_once(poll: bool) {
    let dir = tempfile::tempdir().unwrap();
    let names = ["a.log", "b.log", "c.log"];
    for n in names {
        crate::common::append(&dir.path().join(n), "");
    }
    let t = Pair::start(poll, dir, &names).await;
    let mut want: HashMap<&str, Vec<String>> = HashMap::new();
    for i in 0..40 {
        for n in names {
            let line = format!("{n}-{i}");
            append(&t.path(n), format!("{line}\n"));
            want.entry(n).or_default().push(line);
        }
    }
    for n in names {
        t.reader(n).wait_exact(&strs(&want[n]), DEADLINE).await;
    }
    let keys: Vec<String> = names
        .iter()
        .map(|n| t.path(n).display().to_string())
        .collect();
    t.gnu
        .settle("all three files", |g| {
            let lines = g.lines();
            names
                .iter()
                .zip(&keys)
                .all(|(n, k)| lines.get(k) == Some(&want[n]))
        })
        .await;
    for (n, k) in names.iter().zip(&keys) {
        assert_eq!(t.reader(n).lines(), t.gnu.lines()[k], "{n}");
    }
}

async fn partial_last_line(poll: bool) {
    let dir = tempfile::tempdir().unwrap();
    crate::common::append(&dir.path().join("a.log"), "");
    let t = Pair::start(poll, dir, &["a.log"]).await;
    append(&t.path("a.log"), "par");
    // GNU tail prints the partial line at once; cometail holds it until its newline.
    t.gnu.settle("partial", |g| g.partial() == "par").await;
    assert!(
        t.reader("a.log").items().is_empty(),
        "a partial line is not delivered"
    );
    append(&t.path("a.log"), "tial\n");
    t.settle(&["partial"], &["partial"]).await;
    for piece in ["x", "y", "z\nw", "\n"] {
        append(&t.path("a.log"), piece);
    }
    t.settle(&["partial", "xyz", "w"], &["partial", "xyz", "w"])
        .await;
    t.assert_same_lines();
    assert_eq!(t.gnu.partial(), "");
}

/// A writer process holding its own descriptor of `path` (opened for appending, created if
/// missing): `cat` copies
/// what the test sends it to the file at once, wherever the file has been renamed to since.
struct Writer {
    child: Child,
    path: PathBuf,
}

impl Writer {
    fn start(path: &Path) -> Self {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("open for appending");
        let child = Command::new("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::from(file))
            .spawn()
            .expect("cat runs");
        Self {
            child,
            path: path.to_owned(),
        }
    }

    /// Sends `lines` and waits until the file (under `now_at`, its name now) holds them.
    async fn write(&mut self, now_at: &Path, lines: &[String]) {
        let text = joined(lines);
        let stdin = self.child.stdin.as_mut().expect("piped");
        stdin.write_all(text.as_bytes()).unwrap();
        stdin.flush().unwrap();
        let started = Instant::now();
        while !fs::read_to_string(now_at)
            .unwrap_or_default()
            .contains(&text)
        {
            assert!(
                started.elapsed() < DEADLINE,
                "{} never reached {}",
                lines[0],
                self.path.display()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Our own child, by its handle.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Several processes write to one file; it is renamed and a new file gets data while two of
/// them go on writing to the renamed one (nginx workers reopening one by one). cometail
/// delivers every line once, each file's lines in their order, the late ones after a `late`
/// notice; GNU tail loses the late ones.
async fn late_writers_after_the_new_file_has_data(poll: bool) {
    let dir = tempfile::tempdir().unwrap();
    crate::common::append(&dir.path().join("a.log"), "r0\n");
    let t = Pair::start(poll, dir, &["a.log"]).await;
    t.settle(&["r0"], &["r0"]).await;
    let (path, rotated) = (t.path("a.log"), t.path("a.log.1"));
    let mut w1 = Writer::start(&path);
    let mut w2 = Writer::start(&path);
    let before = [numbered("w1-", 0..5), numbered("w2-", 0..5)];
    w1.write(&path, &before[0]).await;
    w2.write(&path, &before[1]).await;
    let mut want: Vec<String> = vec!["r0".to_owned()];
    want.extend(before.concat());
    t.settle(&strs(&want), &strs(&want)).await;

    fs::rename(&path, &rotated).unwrap();
    // The first worker reopens at once and writes to the new file.
    let mut w0 = Writer::start(&path);
    w0.write(&path, &numbered("new-", 0..3)).await;
    want.push("<rotated>".to_owned());
    want.extend(numbered("new-", 0..3));
    t.settle(&strs(&want), &["r0", "new-0", "new-1", "new-2"])
        .await;
    // The other two have not reopened: they write on to the renamed file, after the new one
    // has data, in turns with the one that did.
    let mut late = Vec::new();
    for round in 0..3 {
        let (a, b) = (
            numbered(&format!("w1-late{round}-"), 0..4),
            numbered(&format!("w2-late{round}-"), 0..4),
        );
        w1.write(&rotated, &a).await;
        w2.write(&rotated, &b).await;
        w0.write(&path, &numbered(&format!("new{round}-"), 0..2))
            .await;
        late.extend(a);
        late.extend(b);
    }
    let new: Vec<String> = ["new-"]
        .iter()
        .flat_map(|p| numbered(p, 0..3))
        .chain((0..3).flat_map(|r| numbered(&format!("new{r}-"), 0..2)))
        .collect();
    let reader = t.reader("a.log");
    reader
        .wait_items("every late and new line", DEADLINE, |got| {
            late.iter().chain(&new).all(|l| got.contains(l))
        })
        .await;
    let items = reader.items();
    let lines = reader.lines();
    let mut unique = lines.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), lines.len(), "a line was doubled: {items:?}");
    assert_eq!(lines.len(), 1 + 10 + late.len() + new.len(), "{items:?}");
    // Each writer's lines in the order it wrote them (the two old-file writers', and the new
    // file's).
    let written: Vec<String> = before
        .concat()
        .into_iter()
        .chain(late.clone())
        .chain(new.clone())
        .collect();
    for own in ["w1-", "w2-", "new"] {
        let got: Vec<&String> = lines.iter().filter(|l| l.starts_with(own)).collect();
        let wrote: Vec<&String> = written.iter().filter(|l| l.starts_with(own)).collect();
        assert_eq!(got, wrote, "{own} lines out of order: {items:?}");
    }
    let first_late = items.iter().position(|i| i.contains("-late")).unwrap();
    assert_eq!(items[first_late - 1], "<late>", "{items:?}");
    // GNU tail has settled on the new file: cometail has all it delivered, and the late
    // lines beyond it.
    let gnu_new: Vec<&str> = std::iter::once("r0").chain(strs(&new)).collect();
    t.gnu
        .settle(&format!("{gnu_new:?}"), |g| {
            is_subsequence(
                &gnu_new.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>(),
                &g.only(),
            )
        })
        .await;
    t.assert_superset(&strs(&late));
    let gnu_late = t.gnu.only().iter().filter(|l| l.contains("-late")).count();
    eprintln!(
        "late lines: cometail {} of {}, GNU tail -F {gnu_late}",
        lines.iter().filter(|l| l.contains("-late")).count(),
        late.len()
    );
}
