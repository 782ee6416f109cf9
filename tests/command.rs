//! `--cmd NAME=COMMAND`: a real child process's output is a stream; its standard error is
//! marked, its exit is a line and it is started again with a growing backoff; a command that
//! cannot start or exits at once never restarts in a tight loop; a flood costs bounded memory
//! and disk; its environment is `PATH` and its table's `env`; the child is killed at
//! shutdown. journalctl's resume is `journal.rs`.

use std::time::Duration;

use crate::common::{Server, texts, wait_until};

const SEC: Duration = Duration::from_secs(1);

pub(crate) async fn lines(s: &Server, id: &str) -> Vec<String> {
    texts(
        &s.ok_json(&format!("/api/streams/{id}/lines?last=1000"))
            .await,
    )
}

/// The stream's `state` and `reason` in `/api/streams`.
pub(crate) async fn state(s: &Server, id: &str) -> (String, String) {
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
    let (child, url) = crate::common::spawn_piped(
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
    // Killed when dropped, by its handle; `yes` then ends on its closed pipes.
    let child = crate::common::Reaped(child);
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
        let now = rss(child.0.id());
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
    // Still serving: the newest lines are the flood's. (Standard error's lines share the
    // pipe readers' queue with standard output's chunks, so under this flood how many of
    // them get in is up to the scheduler; the rest are counted as dropped.)
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
    let (child, url) = crate::common::spawn_piped(&["--config", &config], &[]);
    let child = crate::common::Reaped(child);
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
    drop(child);
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
