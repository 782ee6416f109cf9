//! Every recognised format on the page (docs/API.md's table, one line each): the event-time
//! column shows the line's own time, in UTC here, and the row carries its level's colour
//! class; a line without a level has none.

use serde_json::{Value as Json, json};

use super::support::{Browser, Server, run};
use super::{SECS10, assert_clean, wait_live};

/// One line per format: a word that finds its row, the line, the time cell expected (UTC),
/// and the level. The server reads zone-less stamps in Europe/Berlin (UTC+1 in December).
fn formats() -> Vec<(
    &'static str,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
)> {
    vec![
        (
            "f01",
            "2026-12-01T21:14:39.123Z ERROR f01 rfc3339",
            Some("21:14:39.123"),
            Some("error"),
        ),
        (
            "f02",
            "2026-12-01 22:14:39,5 WARN [main] f02 log4j zone-less",
            Some("21:14:39.500"),
            Some("warn"),
        ),
        (
            "f03",
            "[2026-12-01 22:14:39] CRITICAL f03 bracketed",
            Some("21:14:39.000"),
            Some("fatal"),
        ),
        (
            "f04",
            "2026/12/01 22:14:39 [error] 7#7: f04 nginx",
            Some("21:14:39.000"),
            Some("error"),
        ),
        (
            "f05",
            "Dec  1 22:14:39 host app[42]: warning: f05 syslog",
            Some("21:14:39.000"),
            Some("warn"),
        ),
        (
            "f06",
            "<11>1 2026-12-01T21:14:39Z host app 1 - - f06 rfc5424",
            Some("21:14:39.000"),
            Some("error"),
        ),
        (
            "f07",
            "I1201 22:14:39.250000   12 main.go:34] f07 klog",
            Some("21:14:39.250"),
            Some("info"),
        ),
        (
            "f08",
            "10.0.0.1 - - [01/Dec/2026:21:14:39 +0000] \"GET /f08 HTTP/1.1\" 500 12",
            Some("21:14:39.000"),
            None,
        ),
        (
            "f09",
            r#"{"ts":1796159679.5,"level":"debug","msg":"f09 json epoch"}"#,
            Some("21:14:39.500"),
            Some("debug"),
        ),
        (
            "f10",
            r#"{"@timestamp":"2026-12-01T21:14:39Z","log.level":"ERROR","message":"f10 ecs"}"#,
            Some("21:14:39.000"),
            Some("error"),
        ),
        (
            "f11",
            "time=2026-12-01T21:14:39Z level=warn msg=\"f11 logfmt\"",
            Some("21:14:39.000"),
            Some("warn"),
        ),
        (
            "f12",
            r#"{"log":"2026-12-01 22:14:39 ERROR f12 inside docker\n","stream":"stderr","time":"2026-12-01T21:14:39.9Z"}"#,
            Some("21:14:39.900"),
            Some("error"),
        ),
        (
            "f13",
            "21:14:39.123 [main] ERROR f13 time of day only",
            None,
            Some("error"),
        ),
        (
            "f14",
            "2026-12-01T21:14:40Z TRACE f14 last",
            Some("21:14:40.000"),
            Some("trace"),
        ),
    ]
}

#[test]
fn each_format_shows_its_event_time_and_level_colour() {
    run(async {
        let log: String = formats().iter().map(|f| format!("{}\n", f.1)).collect();
        let srv = Server::start(
            |d| std::fs::write(d.join("app.log"), log).expect("write"),
            &["--timezone", "Europe/Berlin", "app.log"],
        );
        let b = Browser::start(1280, 800).await;
        b.open(&format!("{}?s=app.log&tz=utc", srv.url)).await;
        let all = format!(
            "const t = [...document.querySelectorAll('#log .row .txt')].map(e => e.textContent); \
             return {}.every(w => t.some(x => x.includes(w)))",
            json!(formats().iter().map(|f| f.0).collect::<Vec<_>>())
        );
        b.wait_js("a row for every format", &all, SECS10).await;
        wait_live(&b).await;
        for (word, line, time, level) in formats() {
            let row = b
                .js(&format!(
                    "const r = [...document.querySelectorAll('#log .row')].find(r => r.querySelector('.txt').textContent.includes({})); \
                     const c = r.querySelector('.tc'); \
                     return [c.textContent, c.classList.contains('arr'), [...r.classList].filter(k => k.startsWith('lvl-'))]",
                    Json::from(word)
                ))
                .await;
            match time {
                // The line's own time, in UTC, dated: not the arrival time.
                Some(t) => {
                    assert_eq!(row[0], json!(format!("2026-12-01 {t}")), "{line}");
                    assert_eq!(row[1], json!(false), "{line}");
                }
                // No date in the line: the column falls back to the arrival time (or nothing
                // for a line read from disk), never a time taken from the text.
                None => assert!(
                    row[1] == json!(true) || row[0] == json!(""),
                    "{line}: {row}"
                ),
            }
            let want: Vec<String> = level.map(|l| format!("lvl-{l}")).into_iter().collect();
            assert_eq!(row[2], json!(want), "{line}");
        }
        assert_clean(&b).await;
        b.close().await;
    });
}
