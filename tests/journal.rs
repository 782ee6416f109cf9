//! A `--cmd` running `journalctl` resumes after the last entry it delivered, over a stand-in
//! `journalctl` (journald is absent here): after an exit that printed its cursor, and, with
//! `-o json`, after a SIGKILL that printed none.

use std::time::Duration;

use crate::command::{lines, state};
use crate::common::{Server, append, wait_until};

const SEC: Duration = Duration::from_secs(1);

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
