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
