//! Facts of whole lines: one table per shape, and bad input.

use proptest::prelude::*;

use super::zone::Civil;
use super::*;

fn utc(year: i32, month: u8, day: u8, hour: u8, minute: u8, second: u8, milli: u16) -> i64 {
    Civil {
        year,
        month,
        day,
        hour,
        minute,
        second,
        milli,
    }
    .utc_ms()
}

/// 2026-12-01T22:00:00Z, the reference ("now") for yearless stamps.
fn now() -> i64 {
    utc(2026, 12, 1, 22, 0, 0, 0)
}

fn facts_in(zone: &str, line: &str) -> Facts {
    Parser::new(Zone::named(zone).expect("zone")).facts(line.as_bytes(), now())
}

#[test]
fn each_format_yields_its_ts_and_level() {
    let t = utc(2026, 12, 1, 21, 14, 39, 0);
    use Level::*;
    use Shape::*;
    let table: &[(&str, Shape, Option<i64>, Option<Level>)] = &[
        ("2026-12-01T21:14:39Z app started", Iso, Some(t), None),
        (
            "2026-12-01T21:14:39.123Z ERROR boom",
            Iso,
            Some(t + 123),
            Some(Error),
        ),
        ("2026-12-01T22:14:39+01:00 WARN x", Iso, Some(t), Some(Warn)),
        (
            "2026-12-01 21:14:39,123 INFO [main] c.x - hi",
            Iso,
            Some(t + 123),
            Some(Info),
        ),
        ("2026-12-01 21:14:39.5 -0000 x", Iso, Some(t + 500), None),
        (
            "2026-12-01 21:14 DEBUG short",
            Iso,
            Some(t - 39_000),
            Some(Debug),
        ),
        (
            "[2026-12-01 21:14:39,123] CRITICAL disk",
            BracketIso,
            Some(t + 123),
            Some(Fatal),
        ),
        (
            "2026/12/01 21:14:39 [error] 7#7: *1 open()",
            Slash,
            Some(t),
            Some(Error),
        ),
        (
            "Dec  1 21:14:39 host app[42]: warning: x",
            Syslog,
            Some(t),
            Some(Warn),
        ),
        (
            "<11>Dec  1 21:14:39 host app: x",
            Syslog,
            Some(t),
            Some(Error),
        ),
        (
            "<165>1 2026-12-01T21:14:39.003Z h app 42 ID47 - m",
            Syslog5424,
            Some(t + 3),
            Some(Info),
        ),
        (
            "E1201 21:14:39.123456   12 file.go:34] boom",
            Klog,
            Some(t + 123),
            Some(Error),
        ),
        (
            "1.2.3.4 - - [01/Dec/2026:22:14:39 +0100] \"GET / HTTP/1.1\" 500 1",
            Access,
            Some(t),
            None,
        ),
        (
            "21:14:39.123 [main] ERROR c.x - x",
            TimeOnly,
            None,
            Some(Error),
        ),
        (
            r#"{"ts":"2026-12-01T21:14:39Z","level":"warn","msg":"x"}"#,
            Json,
            Some(t),
            Some(Warn),
        ),
        (
            r#"{"@timestamp":"2026-12-01T21:14:39.001Z","log.level":"ERROR"}"#,
            Json,
            Some(t + 1),
            Some(Error),
        ),
        (
            r#"{"time":1796159679,"level":30}"#,
            Json,
            Some(t),
            Some(Info),
        ),
        (
            r#"{"timestamp":1796159679123,"severity":"fatal"}"#,
            Json,
            Some(t + 123),
            Some(Fatal),
        ),
        (
            r#"{"time":"1796159679.5","lvl":"dbg"}"#,
            Json,
            Some(t + 500),
            Some(Debug),
        ),
        (
            r#"{"log":"2026-12-01 21:14:39 ERROR x\n","stream":"stderr","time":"2026-12-01T21:14:39.5Z"}"#,
            Docker,
            Some(t + 500),
            Some(Error),
        ),
        (
            "time=2026-12-01T21:14:39Z level=warn msg=\"disk full\"",
            Logfmt,
            Some(t),
            Some(Warn),
        ),
        ("ts=1796159679 lvl=error a=b", Logfmt, Some(t), Some(Error)),
        (
            "\u{feff}\x1b[32m2026-12-01T21:14:39Z\x1b[0m INFO coloured",
            Iso,
            Some(t),
            Some(Info),
        ),
    ];
    for &(line, shape, ts, level) in table {
        let f = facts_in("UTC", line);
        assert_eq!(
            (f.shape, f.ts, f.level, f.start),
            (Some(shape), ts, level, true),
            "{line}"
        );
    }
}

#[test]
fn zone_less_stamps_are_read_in_the_timezone() {
    let f = facts_in("Europe/Berlin", "2026-12-01 22:14:39 x");
    assert_eq!(f.ts, Some(utc(2026, 12, 1, 21, 14, 39, 0)));
    let f = facts_in("Europe/Berlin", "2026-12-01T22:14:39Z x");
    assert_eq!(f.ts, Some(utc(2026, 12, 1, 22, 14, 39, 0)));
    let f = facts_in("Asia/Kolkata", "Dec  1 21:14:39 h x");
    assert_eq!(f.ts, Some(utc(2026, 12, 1, 15, 44, 39, 0)));
}

#[test]
fn yearless_stamps_take_the_latest_year_not_after_a_day_past_the_reference() {
    let p = Parser::new(Zone::utc());
    let jan1 = utc(2027, 1, 1, 0, 0, 30, 0);
    let year = |line: &str, r: i64| p.facts(line.as_bytes(), r).ts.map(zone::utc_year);
    // Delivered on 1 January: last night's line is last year's, this morning's this year's.
    assert_eq!(year("Dec 31 23:59:59 h x", jan1), Some(2026));
    assert_eq!(year("Jan  1 00:00:10 h x", jan1), Some(2027));
    // A reference on 31 December reads a 1 January stamp as tomorrow.
    assert_eq!(
        year("Jan  1 00:01:00 h x", utc(2026, 12, 31, 12, 0, 0, 0)),
        Some(2027)
    );
    // One day, one month, eleven months after the stamp.
    for later in [1, 31, 334] {
        let r = utc(2026, 3, 1, 0, 0, 0, 0) + i64::from(later) * zone::DAY_MS;
        assert_eq!(year("Mar  1 00:00:00 h x", r), Some(2026), "{later}");
    }
    // Feb 29 goes back to the last leap year.
    assert_eq!(
        year("Feb 29 12:00:00 h x", utc(2026, 6, 1, 0, 0, 0, 0)),
        Some(2024)
    );
    assert_eq!(
        year(
            "I0229 12:00:00.000000 1 a.go:1] x",
            utc(2026, 6, 1, 0, 0, 0, 0)
        ),
        Some(2024)
    );
}

#[test]
fn impossible_stamps_start_a_record_without_a_time() {
    for line in [
        "2026-13-45 12:00:00 x",
        "2026-02-30T10:00:00Z x",
        "2026-01-01T24:00:00Z x",
        "2026-01-01T10:00:60Z x",
        "1969-12-31T23:59:59Z x",
        "Feb 30 10:00:00 h x",
        "<13>Feb 31 10:00:00 h x",
    ] {
        let f = facts_in("UTC", line);
        assert!(
            f.start && f.shape.is_some() && f.ts.is_none(),
            "{line}: {f:?}"
        );
    }
}

#[test]
fn continuations_and_prose_start_nothing() {
    for line in [
        "\tat com.example.Foo.bar(Foo.java:10)",
        "Caused by: java.io.IOException: error reading",
        "Traceback (most recent call last):",
        "  File \"app.py\", line 3, in <module>",
        "ValueError: bad",
        "",
        "{not json",
        "a=b but prose",
    ] {
        let f = facts_in("UTC", line);
        assert!(
            !f.start && f.ts.is_none() && f.shape.is_none(),
            "{line}: {f:?}"
        );
    }
    // A level word inside a message is not the line's level; one at the start is.
    assert_eq!(
        facts_in(
            "UTC",
            "2026-12-01T21:14:39Z request for user bob failed with error 5"
        )
        .level,
        None
    );
    assert_eq!(
        facts_in("UTC", "ERROR: no stamp here").level,
        Some(Level::Error)
    );
}

#[test]
fn docker_lines_show_their_log_text_and_continue_traces() {
    let line = br#"{"log":"\tat a.B(C.java:1)\n","stream":"stdout","time":"2026-12-01T21:14:39Z"}"#;
    assert_eq!(entry_text(line).as_ref(), b"\tat a.B(C.java:1)");
    assert!(!facts_in("UTC", std::str::from_utf8(line).expect("utf8")).start);
    assert_eq!(entry_text(b"plain").as_ref(), b"plain");
}

#[test]
fn deep_huge_and_binary_lines_are_handled() {
    let deep = format!(
        "{{\"level\":\"warn\",\"a\":{}{}}}",
        "{\"a\":".repeat(10_000),
        "}".repeat(10_000)
    );
    let f = facts_in("UTC", &deep);
    assert!(f.level.is_none() || f.level == Some(Level::Warn));
    let arrays = "[".repeat(10_000);
    assert!(!facts_in("UTC", &arrays).start);
    let huge = format!("{{\"ts\":1796159679,\"msg\":\"{}\"}}", "é".repeat(1 << 19));
    assert_eq!(
        facts_in("UTC", &huge).ts,
        Some(utc(2026, 12, 1, 21, 14, 39, 0))
    );
    let p = Parser::new(Zone::utc());
    let _ = p.facts(b"\xff\xfe\x00\x01{\"level\":\x00", now());
    let _ = p.facts(b"{\"log\":\"\xff\",\"stream\":1,\"time\":2}", now());
}

#[test]
fn at_values_are_rfc3339_with_a_zone_or_epoch_ms() {
    let t = utc(2026, 12, 1, 21, 14, 39, 0);
    assert_eq!(instant("2026-12-01T21:14:39Z"), Ok(t));
    assert_eq!(instant("2026-12-01T22:14:39.250+01:00"), Ok(t + 250));
    assert_eq!(instant("1796159679000"), Ok(t));
    assert_eq!(instant("2026-12-01T21:14:39"), Err(InstantError::NoZone));
    assert_eq!(
        instant("2026-13-01T21:14:39Z"),
        Err(InstantError::OutOfRange)
    );
    assert_eq!(instant("yesterday"), Err(InstantError::Unparsable));
    assert_eq!(
        instant("2026-12-01T21:14:39Z junk"),
        Err(InstantError::Unparsable)
    );
    assert_eq!(instant(""), Err(InstantError::Unparsable));
    assert_eq!(instant("999999999999999"), Err(InstantError::OutOfRange));
}

fn shapes() -> impl Strategy<Value = String> {
    let parts = prop_oneof![
        Just("2026-12-01T21:14:39.123Z".to_owned()),
        Just("2026-12-01 21:14:39,1".to_owned()),
        Just("[2026-12-01 21:14:39]".to_owned()),
        Just("2026/12/01 21:14:39".to_owned()),
        Just("Dec  1 21:14:39".to_owned()),
        Just("<13>Dec  1 21:14:39".to_owned()),
        Just("<13>1 2026-12-01T21:14:39Z".to_owned()),
        Just("I1201 21:14:39.123456".to_owned()),
        Just("1.2.3.4 - - [01/Dec/2026:21:14:39 +0000]".to_owned()),
        Just("21:14:39".to_owned()),
        Just(r#"{"ts":1,"level":"warn"}"#.to_owned()),
        Just("ts=1 level=warn".to_owned()),
        "[ -~]{0,40}",
    ];
    (parts, "[ -~\t]{0,40}").prop_map(|(a, b)| format!("{a}{b}"))
}

proptest! {
    #[test]
    fn facts_never_panics_on_any_bytes(line in proptest::collection::vec(any::<u8>(), 0..300)) {
        let p = Parser::new(Zone::named("Europe/Berlin").expect("zone"));
        let f = p.facts(&line, now());
        prop_assert!(f.ts.is_none() || f.start || f.shape == Some(Shape::Docker));
        let _ = entry_text(&line);
        let _ = fields::Fields::of(&line).get("a.b.0");
    }

    #[test]
    fn shapes_are_mutually_exclusive(line in shapes()) {
        // Each shape recogniser tried alone accepts a line only if dispatch gives the same
        // shape: the order of trying can never change a result.
        let b = line.as_bytes();
        let p = Parser::new(Zone::utc());
        let f = p.facts(b, now());
        let alone = [
            stamp::iso(b, 0).map(|_| Shape::Iso),
            json::facts(b).map(|j| if j.docker_log.is_some() { Shape::Docker } else { Shape::Json }),
            std::str::from_utf8(b).ok().and_then(logfmt::facts).map(|_| Shape::Logfmt),
        ];
        for s in alone.into_iter().flatten() {
            prop_assert_eq!(f.shape, Some(s));
        }
    }

    #[test]
    fn near_miss_stamps_never_panic(
        y in 0u32..10_000, mo in 0u32..100, d in 0u32..100, h in 0u32..100, mi in 0u32..100,
        s in 0u32..100, frac in "[0-9]{0,12}", zone in "(Z|[+-][0-9]{2}(:?[0-9]{2})?|)",
    ) {
        let line = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{frac}{zone} x");
        let f = facts_in("Europe/Berlin", &line);
        prop_assert!(f.start);
        let valid = (1970..=9999).contains(&y) && (1..=12).contains(&mo) && d >= 1
            && d <= u32::from(zone::days_in_month(y as i32, mo as u8)) && h < 24 && mi < 60 && s < 60;
        if !valid {
            prop_assert_eq!(f.ts, None);
        }
    }
}
