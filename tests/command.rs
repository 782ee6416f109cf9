//! `--cmd NAME=COMMAND`: a real child process's output is a stream; its standard error is
//! marked, its exit is a line and it is started again with a growing backoff; a command that
//! cannot start never restarts in a tight loop; the child is killed at shutdown.

use std::time::Duration;

use crate::common::{Server, texts, wait_until};

const SEC: Duration = Duration::from_secs(1);

async fn lines(s: &Server, id: &str) -> Vec<String> {
    texts(
        &s.ok_json(&format!("/api/streams/{id}/lines?last=1000"))
            .await,
    )
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
