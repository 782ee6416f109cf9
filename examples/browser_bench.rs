//! Browser benchmark (not a test): streams 10,000 lines/s for 10 s into the page in a real
//! headless Chromium and reports how smoothly the page kept up.
//!
//! ```sh
//! cargo build --release && cargo run --release --example browser_bench
//! ```
//!
//! For each scenario it runs three times (fresh server, fresh browser) and prints the figures
//! of each run and their median:
//! - frames: requestAnimationFrame callbacks during the stream, and frame-time percentiles;
//! - dropped frames: frames missed at 60 Hz (a 50 ms gap counts 2 dropped);
//! - long tasks: PerformanceObserver `longtask` entries (main-thread tasks over 50 ms);
//! - lag: from the last line written to the last line shown;
//! - DOM rows and retained entries at the end, and the JS heap.
//!
//! Set `COMETAIL_BIN` to benchmark another build. Chromium and chromedriver must be installed.

#[allow(dead_code, unreachable_pub)]
#[path = "../tests/browser/support.rs"]
mod support;

use std::io::Write;
use std::time::{Duration, Instant};

use serde_json::Value as Json;
use support::{Browser, Server, run};

const RATE: u64 = 10_000; // lines per second
const SECONDS: u64 = 10;
const TICK_MS: u64 = 10; // the writer appends RATE / 100 lines every 10 ms
const RUNS: usize = 3;

/// Installed just before the stream starts.
const RECORDER: &str = r#"
window.__bench = { frames: [], longtasks: [], stop: false };
try {
  new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__bench.longtasks.push(e.duration); })
    .observe({ type: "longtask" });
} catch (e) { window.__bench.noLongtask = String(e); }
let last = performance.now();
const tick = (t) => {
  window.__bench.frames.push(t - last);
  last = t;
  if (!window.__bench.stop) requestAnimationFrame(tick);
};
requestAnimationFrame(tick);
"#;

#[derive(Debug, Clone, Default)]
struct Figures {
    frames: f64,
    p50: f64,
    p95: f64,
    p99: f64,
    max_frame: f64,
    dropped: f64,
    long_tasks: f64,
    long_total_ms: f64,
    long_max_ms: f64,
    lag_ms: f64,
    dom_rows: f64,
    retained: f64,
    heap_mb: f64,
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

async fn one_run(query: &str) -> Figures {
    let srv = Server::start(
        |d| std::fs::write(d.join("bench.log"), "start\n").expect("write"),
        &["bench.log"],
    );
    let b = Browser::start(1280, 800).await;
    b.open(&format!("{}?s=bench.log{query}", srv.url)).await;
    b.wait_js(
        "live",
        "return /^live/.test(document.querySelector('#status-text').textContent)",
        Duration::from_secs(10),
    )
    .await;
    b.js(RECORDER).await;

    // The writer: RATE lines/s in batches every TICK_MS, on its own thread, paced against
    // the clock (not against the page).
    let path = srv.path("bench.log");
    let total = RATE * SECONDS;
    let writer = std::thread::spawn(move || {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .expect("open");
        let per_tick = RATE * TICK_MS / 1000;
        let start = Instant::now();
        let mut n = 0u64;
        let mut tick = 0u64;
        while n < total {
            let mut batch = String::with_capacity(per_tick as usize * 90);
            for _ in 0..per_tick {
                n += 1;
                let lvl = if n % 13 == 0 {
                    "\x1b[31mERROR\x1b[0m"
                } else {
                    "\x1b[32mINFO\x1b[0m"
                };
                batch.push_str(&format!(
                    "2026-11-25T00:00:00Z {lvl} bench line {n:06} GET /api/items/{} 200 {}ms\n",
                    n % 977,
                    n % 89
                ));
            }
            f.write_all(batch.as_bytes()).expect("write");
            tick += 1;
            let due = start + Duration::from_millis(tick * TICK_MS);
            if let Some(d) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(d);
            }
        }
        // A last line every scenario shows (it matches the filter scenario's regex too).
        f.write_all(b"bench done ERROR items/999\n").expect("write");
        Instant::now()
    });
    let written = tokio::task::spawn_blocking(move || writer.join().expect("writer"))
        .await
        .expect("join");
    let last_line = "bench done ERROR items/999";
    b.wait_js(
        "the last line",
        &format!(
            "return [...document.querySelectorAll('#log .row .txt')].some(e => e.textContent.includes({}))",
            Json::from(last_line)
        ),
        Duration::from_secs(60),
    )
    .await;
    let lag_ms = written.elapsed().as_secs_f64() * 1000.0;
    let v = b
        .js("window.__bench.stop = true; const m = performance.memory; return [window.__bench.frames, window.__bench.longtasks, window.__cometail.rowsInDom(), window.__cometail.retained(), m ? m.usedJSHeapSize : 0, window.__bench.noLongtask || null]")
        .await;
    if !v[5].is_null() {
        eprintln!("longtask observer unavailable: {}", v[5]);
    }
    let nums = |j: &Json| -> Vec<f64> {
        j.as_array()
            .map(|a| a.iter().filter_map(Json::as_f64).collect())
            .unwrap_or_default()
    };
    let mut frames = nums(&v[0]);
    frames.remove(0); // the first delta is from installation to the first frame
    let long = nums(&v[1]);
    let budget = 1000.0 / 60.0;
    let dropped: f64 = frames
        .iter()
        .map(|dt| ((dt / budget).round() - 1.0).max(0.0))
        .sum();
    let mut sorted = frames.clone();
    sorted.sort_by(f64::total_cmp);
    let f = Figures {
        frames: frames.len() as f64,
        p50: pct(&sorted, 0.5),
        p95: pct(&sorted, 0.95),
        p99: pct(&sorted, 0.99),
        max_frame: sorted.last().copied().unwrap_or(0.0),
        dropped,
        long_tasks: long.len() as f64,
        long_total_ms: long.iter().sum::<f64>() + 0.0, // an empty f64 sum is -0.0
        long_max_ms: long.iter().copied().fold(0.0, f64::max),
        lag_ms,
        dom_rows: v[2].as_f64().unwrap_or(0.0),
        retained: v[3].as_f64().unwrap_or(0.0),
        heap_mb: v[4].as_f64().unwrap_or(0.0) / 1e6,
    };
    b.close().await;
    drop(srv);
    f
}

fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn print(label: &str, f: &Figures) {
    println!(
        "{label:<8} frames {:>4.0}  frame ms p50 {:>5.1} p95 {:>5.1} p99 {:>5.1} max {:>6.1}  dropped {:>4.0}  \
         long tasks {:>3.0} (total {:>6.0} ms, max {:>5.0} ms)  lag {:>5.0} ms  DOM rows {:>4.0}  retained {:>6.0}  heap {:>5.1} MB",
        f.frames,
        f.p50,
        f.p95,
        f.p99,
        f.max_frame,
        f.dropped,
        f.long_tasks,
        f.long_total_ms,
        f.long_max_ms,
        f.lag_ms,
        f.dom_rows,
        f.retained,
        f.heap_mb
    );
}

fn main() {
    println!(
        "browser_bench: {RATE} lines/s for {SECONDS} s into headless Chromium (1280x800), {RUNS} runs per scenario"
    );
    for (name, query) in [
        ("following, no filter", ""),
        (
            "following, regex filter `ERROR|items/9\\d\\d`",
            "&re=1&q=ERROR%7Citems%2F9%5Cd%5Cd",
        ),
    ] {
        println!("\n== {name}");
        let mut runs = Vec::new();
        for i in 0..RUNS {
            let f = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let mut out = None;
                run(async { out = Some(one_run(query).await) });
                out.expect("run finished")
            }))
            .unwrap_or_else(|_| panic!("run {i} failed"));
            print(&format!("run {}", i + 1), &f);
            runs.push(f);
        }
        let m = |g: fn(&Figures) -> f64| median(&runs.iter().map(g).collect::<Vec<_>>());
        let med = Figures {
            frames: m(|f| f.frames),
            p50: m(|f| f.p50),
            p95: m(|f| f.p95),
            p99: m(|f| f.p99),
            max_frame: m(|f| f.max_frame),
            dropped: m(|f| f.dropped),
            long_tasks: m(|f| f.long_tasks),
            long_total_ms: m(|f| f.long_total_ms),
            long_max_ms: m(|f| f.long_max_ms),
            lag_ms: m(|f| f.lag_ms),
            dom_rows: m(|f| f.dom_rows),
            retained: m(|f| f.retained),
            heap_mb: m(|f| f.heap_mb),
        };
        print("median", &med);
    }
}
