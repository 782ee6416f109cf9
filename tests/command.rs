//! `--cmd NAME=COMMAND`: a real child process's output is a stream; its standard error is
//! marked, its exit is a line and it is started again with a growing backoff; a command that
//! cannot start never restarts in a tight loop; the child is killed at shutdown.

use std::time::Duration;

use crate::common::{Server, append, texts, wait_until};

const SEC: Duration = Duration::from_secs(1);

async fn lines(s: &Server, id: &str) -> Vec<String> {
    texts(
        &s.ok_json(&format!("/api/streams/{id}/lines?last=1000"))
            .await,
    )
}

/// The stream's `state` and `reason` in `/api/streams`.
async fn state(s: &Server, id: &str) -> (String, String) {
    let listing = s.ok_json("/api/streams").await;
    let stream = listing["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|st| st["id"] == id)
        .unwrap_or_else(|| panic!("no stream {id}: {listing}"))
        .clone();
    let text = |k: &str| stream[k].as_str().unwrap_or_default().to_owned();
    (text("state"), text("reason"))
}

#[tokio::test]
async fn output_and_marked_errors_become_a_stream_and_the_command_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("svc.sh");
    // Counts its runs in a file, so each run says which it is.
    std::fs::write(
        &script,
        "n=$(cat \"$1\" 2>/dev/null || echo 0); n=$((n+1)); echo $n > \"$1\"\n\
         echo \"run $n line 1\"\necho \"run $n oops\" >&2\necho \"run $n line 2\"\n\
         echo \"home=${HOME:-none}\"\nexit 3\n",
    )
    .unwrap();
    let cmd = format!(
        "svc=sh {} {}",
        script.display(),
        dir.path().join("runs").display()
    );
    let s = Server::start_in(dir, &["--cmd", &cmd]).await;
    wait_until("the second run's output", 10 * SEC, || async {
        lines(&s, "svc").await.iter().any(|l| l == "run 2 line 2")
    })
    .await;
    let got = lines(&s, "svc").await;
    let run1: Vec<&str> = got
        .iter()
        .map(String::as_str)
        .take_while(|l| !l.starts_with("run 2"))
        .collect();
    assert!(
        run1.contains(&"run 1 line 1") && run1.contains(&"run 1 line 2"),
        "{got:?}"
    );
    assert!(run1.contains(&"[stderr] run 1 oops"), "{got:?}");
    assert!(
        run1.contains(&"home=none"),
        "the environment is cleared: {got:?}"
    );
    let exit = run1
        .iter()
        .find(|l| l.starts_with("[cometail] "))
        .unwrap_or_else(|| panic!("no exit line: {got:?}"));
    assert!(
        exit.contains("exit status: 3") && exit.contains("again in 1 s"),
        "{exit}"
    );
    let pos = |l: &str| got.iter().position(|g| g == l).unwrap();
    assert!(pos("run 1 line 1") < pos("run 1 line 2") && pos("run 1 line 2") < pos(exit));
    s.stop().await;
}

#[tokio::test]
async fn a_command_that_cannot_start_backs_off() {
    let s = Server::start(&["--cmd", "ghost=/nonexistent/program --flag"]).await;
    wait_until("two attempts", 10 * SEC, || async {
        lines(&s, "ghost").await.len() >= 2
    })
    .await;
    let got = lines(&s, "ghost").await;
    let (state, reason) = state(&s, "ghost").await;
    assert_eq!(state, "error", "{reason}");
    assert!(
        reason.starts_with("cannot start `/nonexistent/program --flag`"),
        "{reason}"
    );
    assert!(
        got[0].starts_with("[cometail] cannot start `/nonexistent/program --flag`")
            && got[0].ends_with("again in 1 s"),
        "{got:?}"
    );
    assert!(
        got[1].ends_with("again in 2 s"),
        "the wait doubles: {got:?}"
    );
    s.stop().await;
}

#[tokio::test]
async fn the_child_is_killed_at_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    let cmd = format!(
        "sleeper=sh -c 'echo $$ > {}; echo started; exec sleep 1000'",
        pid_file.display()
    );
    let s = Server::start_in(dir, &["--cmd", &cmd]).await;
    wait_until("the command started", 10 * SEC, || async {
        lines(&s, "sleeper").await == ["started"]
    })
    .await;
    let pid = std::fs::read_to_string(s.path("pid")).unwrap();
    let proc_dir = format!("/proc/{}", pid.trim());
    assert!(std::path::Path::new(&proc_dir).exists());
    s.stop().await;
    wait_until("the child is gone", 5 * SEC, || async {
        !std::path::Path::new(&proc_dir).exists()
    })
    .await;
}

#[test]
fn a_bad_command_flag_is_exit_2() {
    for bad in ["no-equals-sign", "a b=ls", "x='unbalanced"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_cometail"))
            .args(["--cmd", bad])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("--cmd"));
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cometail"))
        .args(["--cmd", "a=ls", "--cmd", "a=pwd"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test]
async fn an_exited_command_is_the_streams_state_until_it_runs_again() {
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("stay");
    // Exits at once until `stay` exists, then runs until killed.
    let cmd = format!(
        "svc=sh -c 'echo up; test -e {f} && exec sleep 1000; exit 7'",
        f = flag.display()
    );
    let s = Server::start_in(dir, &["--cmd", &cmd]).await;
    wait_until("the state says it exited", 10 * SEC, || async {
        state(&s, "svc").await.0 == "exited"
    })
    .await;
    let (_, reason) = state(&s, "svc").await;
    assert!(
        reason.contains("exited (exit status: 7)") && reason.contains("starting it again in"),
        "{reason}"
    );
    let metrics = s
        .client
        .get(format!("{}/metrics", s.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"cometail_stream_state{stream="svc",state="exited"} 1"#),
        "{metrics}"
    );
    std::fs::write(s.path("stay"), "").unwrap();
    wait_until("it runs again", 20 * SEC, || async {
        state(&s, "svc").await.0 == "following"
    })
    .await;
    s.stop().await;
}

/// A stand-in for `journalctl` (journald is absent here): the journal is the file `journal`
/// beside it, one message a line, an entry's cursor `n=LINE`. Like journalctl it shows the
/// last 10 entries (or `-n N`) unless `--after-cursor` or `--lines=all` say otherwise, follows the
/// journal, and with `--show-cursor` prints `-- cursor: C` after its last entry when it
/// exits, which it does (status 1) when the file `die` appears. With `-o json` each entry is
/// a JSON object with its `__CURSOR`, as journalctl's. When the file `kill9` appears it is
/// killed by SIGKILL (and so prints no cursor). Each run's arguments go to `args`.
const JOURNALCTL: &str = r#"#!/bin/sh
dir=$(dirname "$0")
echo "$*" >> "$dir/args"
after=; lines=10; show=0; prev=; json=0
for a in "$@"; do
  if [ "$prev" = -n ]; then lines=$a; fi
  if [ "$prev" = -o ] && [ "$a" = json ]; then json=1; fi
  prev=$a
  case "$a" in
    --after-cursor=*) after=${a#--after-cursor=n=} ;;
    --lines=all) lines=all ;;
    --show-cursor) show=1 ;;
  esac
done
total=$(wc -l < "$dir/journal")
if [ -n "$after" ]; then n=$after
elif [ "$lines" = all ] || [ "$total" -le "$lines" ]; then n=0
else n=$((total - lines)); fi
while :; do
  total=$(wc -l < "$dir/journal")
  if [ "$total" -gt "$n" ]; then
    if [ "$json" = 1 ]; then
      tail -n "+$((n + 1))" "$dir/journal" | head -n "$((total - n))" |
        awk -v n="$n" '{ printf "{\"__CURSOR\":\"n=%d\",\"MESSAGE\":\"%s\"}\n", n + NR, $0 }'
    else
      tail -n "+$((n + 1))" "$dir/journal" | head -n "$((total - n))"
    fi
    n=$total
  fi
  if [ -e "$dir/kill9" ]; then
    rm "$dir/kill9"
    kill -9 $$
  fi
  if [ -e "$dir/die" ]; then
    rm "$dir/die"
    if [ "$show" = 1 ]; then echo "-- cursor: n=$n"; fi
    exit 1
  fi
  sleep 0.05
done
"#;

#[tokio::test]
async fn a_restarted_journalctl_resumes_after_its_last_entry() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let program = dir.path().join("journalctl");
    std::fs::write(&program, JOURNALCTL).unwrap();
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    let journal = dir.path().join("journal");
    std::fs::write(
        &journal,
        (1..=12).map(|i| format!("e{i}\n")).collect::<String>(),
    )
    .unwrap();
    let cmd = format!("journal={} -f -n 5 -o short-iso", program.display());
    let s = Server::start_in(dir, &["--cmd", &cmd]).await;
    let entries = |got: Vec<String>| -> Vec<String> {
        got.into_iter()
            .filter(|l| !l.starts_with("[cometail] "))
            .collect()
    };
    wait_until("the configured start", 10 * SEC, || async {
        entries(lines(&s, "journal").await)
            .last()
            .map(String::as_str)
            == Some("e12")
    })
    .await;
    append(&journal, "e13\n");
    wait_until("a followed entry", 10 * SEC, || async {
        entries(lines(&s, "journal").await)
            .last()
            .map(String::as_str)
            == Some("e13")
    })
    .await;
    // It exits; entries written while it is down come after the restart, once each.
    std::fs::write(s.path("die"), "").unwrap();
    wait_until("it exited", 10 * SEC, || async {
        state(&s, "journal").await.0 == "exited"
    })
    .await;
    append(&journal, "e14\ne15\n");
    wait_until("the entries written meanwhile", 20 * SEC, || async {
        entries(lines(&s, "journal").await)
            .last()
            .map(String::as_str)
            == Some("e15")
    })
    .await;
    let want: Vec<String> = (8..=15).map(|i| format!("e{i}")).collect();
    let got = lines(&s, "journal").await;
    assert_eq!(
        entries(got.clone()),
        want,
        "nothing lost, nothing twice: {got:?}"
    );
    assert!(
        !got.iter().any(|l| l.starts_with("-- cursor")),
        "the cursor line is not an entry: {got:?}"
    );
    let exit = got
        .iter()
        .find(|l| l.starts_with("[cometail] "))
        .unwrap_or_else(|| panic!("no exit line: {got:?}"));
    assert!(exit.ends_with("after its last entry (n=13)"), "{exit}");
    let args = std::fs::read_to_string(s.path("args")).unwrap();
    let runs: Vec<&str> = args.lines().collect();
    assert_eq!(
        runs,
        [
            "-f -n 5 -o short-iso --show-cursor",
            "-f -o short-iso --show-cursor --after-cursor=n=13 --lines=all"
        ]
    );
    s.stop().await;
}

#[tokio::test]
async fn a_journalctl_killed_by_sigkill_resumes_after_its_last_json_entry() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let program = dir.path().join("journalctl");
    std::fs::write(&program, JOURNALCTL).unwrap();
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    let journal = dir.path().join("journal");
    std::fs::write(
        &journal,
        (1..=12).map(|i| format!("e{i}\n")).collect::<String>(),
    )
    .unwrap();
    let cmd = format!("journal={} -f -n 5 -o json", program.display());
    let s = Server::start_in(dir, &["--cmd", &cmd]).await;
    // The messages of the entries delivered, in order (exit lines left out).
    let messages = |got: Vec<String>| -> Vec<String> {
        got.iter()
            .filter(|l| !l.starts_with("[cometail] "))
            .map(|l| {
                let entry: serde_json::Value = serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("`{l}` is not a whole entry: {e}"));
                entry["MESSAGE"].as_str().unwrap().to_owned()
            })
            .collect()
    };
    let last_is = |want: &'static str| {
        let s = &s;
        move || async move {
            messages(lines(s, "journal").await)
                .last()
                .map(String::as_str)
                == Some(want)
        }
    };
    wait_until("the configured start", 10 * SEC, last_is("e12")).await;
    append(&journal, "e13\n");
    wait_until("a followed entry", 10 * SEC, last_is("e13")).await;
    // SIGKILL: journalctl prints no cursor, but every entry delivered carried its own.
    std::fs::write(s.path("kill9"), "").unwrap();
    wait_until("it was killed", 10 * SEC, || async {
        state(&s, "journal").await.0 == "exited"
    })
    .await;
    append(&journal, "e14\ne15\n");
    wait_until("the entries written meanwhile", 20 * SEC, last_is("e15")).await;
    let got = lines(&s, "journal").await;
    let want: Vec<String> = (8..=15).map(|i| format!("e{i}")).collect();
    assert_eq!(
        messages(got.clone()),
        want,
        "nothing lost, nothing twice: {got:?}"
    );
    let exit = got
        .iter()
        .find(|l| l.starts_with("[cometail] "))
        .unwrap_or_else(|| panic!("no exit line: {got:?}"));
    assert!(
        exit.contains("signal: 9") && exit.ends_with("after its last entry (n=13)"),
        "{exit}"
    );
    let args = std::fs::read_to_string(s.path("args")).unwrap();
    let runs: Vec<&str> = args.lines().collect();
    assert_eq!(
        runs,
        [
            "-f -n 5 -o json --show-cursor",
            "-f -o json --show-cursor --after-cursor=n=13 --lines=all"
        ]
    );
    s.stop().await;
}

/// The resident memory of process `pid`, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib * 1024
}

/// Bytes in the files under `dir`, recursively.
fn bytes_under(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => bytes_under(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0, // a spool segment removed meanwhile
        })
        .sum()
}

#[tokio::test]
async fn a_command_that_floods_costs_bounded_memory_and_disk() {
    // The real binary, its spool in a directory of our own; `yes` writes as fast as the
    // pipes take, on both standard output and standard error.
    let tmp = tempfile::tempdir().unwrap();
    let flood = "flood=sh -c 'yes err-line >&2 & exec yes out-line-0123456789abcdef'";
    let (mut child, url) = crate::common::spawn_piped(
        &[
            "--spool-bytes",
            "256K",
            "--max-line-bytes",
            "1K",
            "--memory",
            "4M",
            "--cmd",
            flood,
        ],
        &[("TMPDIR", tmp.path())],
    );
    let url = url.trim_end_matches('/').to_owned();
    let client = reqwest::Client::new();
    let ingested = || async {
        let text = client
            .get(format!("{url}/metrics"))
            .header("accept", "text/plain; version=0.0.4")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix("cometail_stream_bytes_total{stream=\"flood\"} "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let spool_cap = 256 * 1024 + 2 * 1026;
    let mut peak_spool = 0;
    let mut first_rss = None;
    let mut peak_rss = 0;
    // 128 MiB through a 256 KiB spool: 512 spools' worth, twice the growth allowed below.
    wait_until("128 MiB taken in", 180 * SEC, || {
        peak_spool = peak_spool.max(bytes_under(tmp.path()));
        let now = rss(child.id());
        first_rss.get_or_insert(now);
        peak_rss = peak_rss.max(now);
        async { ingested().await >= f64::from(128 << 20) }
    })
    .await;
    assert!(peak_spool <= spool_cap, "the spool held {peak_spool} bytes");
    let first = first_rss.unwrap();
    assert!(
        peak_rss < first + (64 << 20),
        "memory grew from {first} to {peak_rss} bytes (a debug build takes about 30 MiB)"
    );
    // Still serving: the newest lines are the flood's, both kinds.
    let page: serde_json::Value = client
        .get(format!("{url}/api/streams/flood/lines?last=2000"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let got = texts(&page);
    assert!(
        got.iter().any(|l| l == "out-line-0123456789abcdef"),
        "{:?}",
        &got[..5]
    );
    assert!(
        got.iter()
            .any(|l| l == "[stderr] err-line" || l.starts_with("[cometail] ")),
        "standard error is kept (or counted as dropped): {:?}",
        &got[..5]
    );
    // Our own child, by its handle; `yes` then ends on its closed pipes.
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test]
async fn a_command_that_exits_at_once_is_restarted_after_growing_waits() {
    let s = Server::start(&["--cmd", "quick=sh -c 'echo ran; exit 1'"]).await;
    let page = || async {
        s.ok_json("/api/streams/quick/lines?last=100").await["entries"]
            .as_array()
            .unwrap()
            .clone()
    };
    let runs = |entries: &[serde_json::Value]| -> Vec<i64> {
        entries
            .iter()
            .filter(|e| e["text"] == "ran")
            .map(|e| e["time"].as_i64().unwrap())
            .collect()
    };
    wait_until("three runs", 15 * SEC, || async {
        runs(&page().await).len() >= 3
    })
    .await;
    let entries = page().await;
    let at = runs(&entries);
    // Arrival times are in milliseconds; the waits are 1 s, then 2 s (a little slack for
    // the process start).
    assert!(at[1] - at[0] >= 950, "{at:?}");
    assert!(at[2] - at[1] >= 1950, "the wait doubles: {at:?}");
    let said: Vec<&str> = entries
        .iter()
        .filter_map(|e| e["text"].as_str())
        .filter(|t| t.starts_with("[cometail] "))
        .collect();
    assert!(
        said[0].ends_with("again in 1 s") && said[1].ends_with("again in 2 s"),
        "{said:?}"
    );
    assert!(said[0].contains("exit status: 1"), "{said:?}");
    let (state, reason) = state(&s, "quick").await;
    assert!(
        state == "exited" || state == "following",
        "{state}: {reason}"
    );
    s.stop().await;
}

#[tokio::test]
async fn a_command_gets_path_and_the_variables_its_table_sets_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cometail.toml");
    std::fs::write(
        &file,
        "[[source]]\nname = \"vars\"\ncmd = \"env\"\n\
         env = { TZ = \"UTC\", API_TOKEN = \"s3cret-s3cret\" }\n",
    )
    .unwrap();
    let config = file.display().to_string();
    // HOME and USER are in this process's environment (the server's), never in the child's.
    let (mut child, url) = crate::common::spawn_piped(&["--config", &config], &[]);
    let url = url.trim_end_matches('/').to_owned();
    let lines = || async {
        let page: serde_json::Value = reqwest::get(format!("{url}/api/streams/vars/lines?last=50"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        texts(&page)
    };
    wait_until("its first exit", 10 * SEC, || async {
        lines().await.iter().any(|l| l.starts_with("[cometail] "))
    })
    .await;
    let got = lines().await;
    let run: Vec<&str> = got
        .iter()
        .map(String::as_str)
        .take_while(|l| !l.starts_with("[cometail] "))
        .collect();
    let mut names: Vec<&str> = run.iter().filter_map(|l| l.split('=').next()).collect();
    names.sort_unstable();
    assert_eq!(names, ["API_TOKEN", "PATH", "TZ"], "{run:?}");
    assert!(run.contains(&"TZ=UTC"), "{run:?}");
    child.kill().unwrap();
    child.wait().unwrap();
    // Shown as configured, but for the secret.
    let printed = std::process::Command::new(env!("CARGO_BIN_EXE_cometail"))
        .args(["--config", &config, "--print-config"])
        .output()
        .unwrap();
    let printed = String::from_utf8(printed.stdout).unwrap();
    assert!(
        printed.contains("env = { \"API_TOKEN\" = \"***\", \"TZ\" = \"UTC\" }"),
        "{printed}"
    );
    assert!(!printed.contains("s3cret"), "{printed}");
}
