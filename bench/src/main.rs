//! `cometail-bench`: measures a real cometail process (and frontail, side by side) from a
//! separate load-generating process over loopback sockets, and prints the figures as a table
//! (and optionally JSON).
//!
//! ```text
//! cargo run --release --locked -p cometail-bench -- latency --clients 1,1000 --servers cometail,frontail
//! cargo run --release -p cometail-bench -- all --repeat 3 --json-out target/bench.json
//! ```
//!
//! Module map: `http` (minimal HTTP/1.1 client), `sse` (event-stream parser), `ws` (WebSocket
//! frames for frontail's socket.io), `marks` (the line format), `client` (simulated viewers),
//! `writer` (the appender), `server` (the process under test), `scenario` (what is measured),
//! `timed` (seek and grep in a large timestamped file),
//! `stats` and `report` (figures). Only loopback addresses are ever connected to.

mod client;
mod files;
mod http;
mod marks;
mod memory;
mod merged;
mod parsing;
mod report;
mod scaleout;
mod scenario;
mod search;
mod server;
mod solo;
mod sse;
mod stats;
mod timed;
mod writer;
mod ws;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, Result};
use clap::Parser;

use crate::client::Mode;
use crate::report::Row;
use crate::scenario::Ctx;
use crate::server::{Kind, Launch};

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Scenario {
    /// Append-to-receipt latency, lost and doubled lines, for N clients.
    Latency,
    /// Highest append rate with every line delivered to every client and p99 < 1 s.
    Throughput,
    /// Server memory per idle SSE client and CPU while idle.
    Idle,
    /// N clients connect at once: time until all have their first entry.
    Storm,
    /// Lines/s from one growing file into the stream, no clients (cometail only).
    Ingest,
    /// `last=1000` and `before` pages in a large file (cometail only).
    History,
    /// Resident memory while many files get lines at once; set `COMETAIL_MEMORY` to compare
    /// budgets (cometail only).
    Memory,
    /// Spawn to listening line and to first HTTP 200.
    Startup,
    /// CPU, threads and RSS while following many quiet files in one directory, with and
    /// without a busy unfollowed neighbour (cometail only).
    Files,
    /// CPU per line of the parsing engine (facts, records, a query), in-process, per format.
    Parse,
    /// `at=` seeks anywhere in a large timestamped file: time and bytes read (cometail only).
    Seek,
    /// `q=level>=error` through a large file (1 % matches), forwards and backwards, plain and
    /// JSON, and plain as a rotated `app.log.1`, beside `grep -c` (cometail only).
    Grep,
    /// Whole-history search beside `grep -c`, `grep -ci`, `grep -cE` and `zgrep -c` on the
    /// same files, and `before=` pages inside a `.gz` (cometail only).
    Search,
    /// Every scenario above.
    All,
    /// Agents and hubs on a real nats-server (`/usr/sbin/nats-server`): agent CPU, engine
    /// messages per line, hubs' engine reads with N viewers, latency, failover. Not in `all`.
    ScaleOut,
    /// Two timestamped files at `--rate` lines/s each (default 1,000) merged by event time on
    /// one SSE connection: append-to-client latency against `--merge-delay`, order, lost and
    /// doubled lines (cometail only). Not in `all`.
    Merged,
}

/// Benchmark a real cometail process over loopback.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Scenarios to run, comma-separated (`latency,idle,ingest`): one report, one run each
    /// per repetition, in the order of the list above.
    #[arg(value_enum, value_delimiter = ',', required = true)]
    scenario: Vec<Scenario>,
    /// Servers to measure, side by side (frontail: latency, throughput, idle, storm, startup).
    #[arg(long, value_delimiter = ',', default_value = "cometail")]
    servers: Vec<Kind>,
    /// The cometail binary.
    #[arg(long, default_value = "target/release/cometail")]
    cometail: PathBuf,
    /// frontail's index.js (installed by bench/peers/frontail.sh).
    #[arg(
        long,
        default_value = "bench/peers/frontail/node_modules/frontail/index.js"
    )]
    frontail: PathBuf,
    /// The node binary for frontail.
    #[arg(long, default_value = "node")]
    node: PathBuf,
    /// Client counts for the scenario run (latency, throughput, storm, idle); each scenario's
    /// own flag below wins where given. Default for latency: 1,100,1000,10000.
    #[arg(long, value_delimiter = ',')]
    clients: Option<Vec<usize>>,
    /// cometail client modes for latency (frontail always uses socket.io over WebSocket).
    #[arg(long, value_delimiter = ',', default_value = "sse,longpoll")]
    modes: Vec<Mode>,
    /// Append rate for latency, lines/s; default 100/s up to 1,000 clients, 10/s above.
    #[arg(long)]
    rate: Option<u64>,
    /// Seconds of appending per latency run.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Client counts for throughput [default: --clients, else 1,100,1000].
    #[arg(long, value_delimiter = ',')]
    throughput_clients: Option<Vec<usize>>,
    /// Seconds of appending per throughput trial.
    #[arg(long, default_value_t = 3.0)]
    throughput_duration: f64,
    /// First rate tried by the throughput search, lines/s (doubled until a trial fails).
    #[arg(long, default_value_t = 4000)]
    throughput_start: u64,
    /// Highest rate the throughput search tries, lines/s.
    #[arg(long, default_value_t = 2_000_000)]
    throughput_max: u64,
    /// Idle client counts, capped by RLIMIT_NOFILE (raise `ulimit -n` first) [default:
    /// --clients, else 10000,100000].
    #[arg(long, value_delimiter = ',')]
    idle_clients: Option<Vec<usize>>,
    /// Seconds over which idle CPU is measured (at least two 15 s keep-alive rounds).
    #[arg(long, default_value_t = 31.0)]
    idle_secs: f64,
    /// Client counts for storm [default: --clients, else 1000,10000].
    #[arg(long, value_delimiter = ',')]
    storm_clients: Option<Vec<usize>>,
    /// Lines appended by ingest.
    #[arg(long, default_value_t = 20_000_000)]
    ingest_lines: u64,
    /// Line layouts ingest runs, one row each (`plain` has no stamp: the parser rejects every
    /// line at its first byte; `ts` and `json` go through the parsing engine)
    /// [default: --line-format].
    #[arg(long, value_enum, value_delimiter = ',')]
    ingest_formats: Option<Vec<marks::LineFormat>>,
    /// Size of the history file, GiB (kept under the work dir and reused).
    #[arg(long, default_value_t = 10.0)]
    history_gib: f64,
    /// Size of the timestamped file for seek and grep, GiB (kept under the work dir, reused).
    #[arg(long, default_value_t = 1.0)]
    timed_gib: f64,
    /// MiB of text in the search scenario's plain file.
    #[arg(long, default_value_t = 1024)]
    search_mib: usize,
    /// MiB of text in the search scenario's rotated `.gz`.
    #[arg(long, default_value_t = 256)]
    search_gz_mib: usize,
    /// Files for the memory scenario, all busy at once.
    #[arg(long, default_value_t = 200)]
    memory_files: usize,
    /// MiB of lines each file gets in the memory scenario.
    #[arg(long, default_value_t = 4)]
    memory_mib_per_file: usize,
    /// Spawns measured by startup.
    #[arg(long, default_value_t = 20)]
    startup_runs: usize,
    /// Followed files for the files scenario (each appended 1 line/s).
    #[arg(long, default_value_t = 2000)]
    files: usize,
    /// Writes/s to the unfollowed neighbour in the files scenario (also run without it).
    #[arg(long, default_value_t = 5000)]
    busy_rate: u64,
    /// Seconds over which the files scenario measures CPU.
    #[arg(long, default_value_t = 20.0)]
    files_secs: f64,
    /// Bytes per appended line, newline included.
    #[arg(long, default_value_t = 100)]
    line_bytes: usize,
    /// Layout of the appended lines (latency, throughput, ingest): `ts`, `json` and `logfmt`
    /// carry an event time and a level for the parsing engine.
    #[arg(long, value_enum, default_value = "plain")]
    line_format: marks::LineFormat,
    /// Lines per format parsed by the parse scenario.
    #[arg(long, default_value_t = 1_000_000)]
    parse_lines: usize,
    /// Runs of each configuration; tables show medians.
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// Clients connecting at once while a run is set up (storm ignores this).
    #[arg(long, default_value_t = 256)]
    connect_concurrency: usize,
    /// Seconds clients may take to receive the last line after the writer stops.
    #[arg(long, default_value_t = 3.0)]
    grace: f64,
    /// Load generator threads (the machine has 2 cores, shared with the server).
    #[arg(long, default_value_t = 2)]
    client_threads: usize,
    /// Scratch directory (large files for ingest and history go here).
    #[arg(long, default_value = "target/bench-work")]
    workdir: PathBuf,
    /// Print the result rows as JSON to stdout after the table.
    #[arg(long)]
    json: bool,
    /// Also write the result rows as JSON to this file.
    #[arg(long)]
    json_out: Option<PathBuf>,
    /// Less progress on stderr.
    #[arg(long, short)]
    quiet: bool,
    /// Seconds-long run of every scenario at toy sizes, to check the benchmark still works
    /// (the test suite runs it); overrides the sizes above. Its figures mean nothing.
    #[arg(long)]
    smoke: bool,
    /// Run the server on these CPUs (`taskset -c LIST`, e.g. `1`); run this process under
    /// `taskset -c 0` to pin the load generator apart. The header says whether they share.
    #[arg(long)]
    server_cpus: Option<String>,
    /// Scale-out: agents, one file each.
    #[arg(long, default_value_t = 4)]
    scale_agents: usize,
    /// Scale-out: lines per second per agent.
    #[arg(long, default_value_t = 500)]
    scale_rate: u64,
    /// Scale-out: SSE viewers over the two hubs, one run per count.
    #[arg(long, value_delimiter = ',', default_value = "10,1000")]
    scale_viewers: Vec<usize>,
}

impl Cli {
    /// Shrinks every size to a seconds-long run (`--smoke`).
    fn shrink_to_smoke(&mut self) {
        let two = Some(vec![2]);
        self.clients = self.clients.take().or(two);
        self.throughput_clients = None;
        self.idle_clients = None;
        self.storm_clients = None;
        self.duration = 1.0;
        self.throughput_duration = 0.5;
        self.throughput_start = 200;
        self.throughput_max = 400;
        self.idle_secs = 1.0;
        self.ingest_lines = 20_000;
        self.history_gib = 0.002;
        self.timed_gib = 0.002;
        self.startup_runs = 2;
        self.memory_files = 3;
        self.memory_mib_per_file = 1;
        self.search_mib = 2;
        self.search_gz_mib = 2;
        self.grace = 2.0;
    }

    /// Client counts for a scenario: its own flag, else `--clients`, else `default`.
    fn counts(&self, own: Option<&Vec<usize>>, default: &[usize]) -> Vec<usize> {
        own.or(self.clients.as_ref())
            .cloned()
            .unwrap_or_else(|| default.to_vec())
    }
}

fn main() -> Result<()> {
    let mut cli = Cli::parse();
    if cli.smoke {
        cli.shrink_to_smoke();
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.client_threads.max(1))
        .enable_all()
        .build()
        .context("building the runtime")?;
    let rows = rt.block_on(run(&cli))?;
    let cpus = server::Cpus::of_this_run();
    let rows = report::medians(&rows);
    println!("{}", report::header(&cli.cometail, &cpus));
    println!("{}", report::table(&rows));
    let json = report::json(&rows);
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&json)?);
    }
    if let Some(path) = &cli.json_out {
        std::fs::write(path, serde_json::to_string_pretty(&json)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn default_rate(clients: usize) -> u64 {
    if clients > 1000 { 10 } else { 100 }
}

async fn run(cli: &Cli) -> Result<Vec<Row>> {
    let ctx = Ctx {
        launch: Launch {
            cometail: cli.cometail.clone(),
            frontail: cli.frontail.clone(),
            node: cli.node.clone(),
            server_cpus: cli.server_cpus.clone(),
        },
        workdir: cli.workdir.clone(),
        line_bytes: cli.line_bytes.max(48),
        line_format: cli.line_format,
        connect_concurrency: cli.connect_concurrency,
        grace: Duration::from_secs_f64(cli.grace),
        verbose: !cli.quiet,
    };
    let want = |s: Scenario| cli.scenario.contains(&s) || cli.scenario.contains(&Scenario::All);
    let mut rows = Vec::new();
    let mut push = |r: Result<Row>, what: &str| match r {
        Ok(row) => {
            eprintln!("{}", report::table(std::slice::from_ref(&row)).trim_start());
            rows.push(row);
        }
        Err(e) => eprintln!("[cometail-bench] {what} failed: {e:#}"),
    };
    for rep in 0..cli.repeat.max(1) {
        if cli.repeat > 1 {
            eprintln!("[cometail-bench] repetition {} of {}", rep + 1, cli.repeat);
        }
        if want(Scenario::Startup) {
            for &k in &cli.servers {
                push(solo::startup(&ctx, k, cli.startup_runs).await, "startup");
            }
        }
        if want(Scenario::Latency) {
            for n in cli.counts(None, &[1, 100, 1000, 10_000]) {
                let rate = cli.rate.unwrap_or_else(|| default_rate(n));
                for &k in &cli.servers {
                    let modes: &[Mode] = if k == Kind::Frontail {
                        &[Mode::Socketio]
                    } else {
                        &cli.modes
                    };
                    for &m in modes {
                        let d = Duration::from_secs_f64(cli.duration);
                        push(scenario::latency(&ctx, k, m, n, rate, d).await, "latency");
                    }
                }
            }
        }
        if want(Scenario::Throughput) {
            for n in cli.counts(cli.throughput_clients.as_ref(), &[1, 100, 1000]) {
                for &k in &cli.servers {
                    let d = Duration::from_secs_f64(cli.throughput_duration);
                    let r = scenario::throughput(
                        &ctx,
                        k,
                        Mode::Sse,
                        n,
                        cli.throughput_start,
                        cli.throughput_max,
                        d,
                    )
                    .await;
                    push(r, "throughput");
                }
            }
        }
        if want(Scenario::Storm) {
            for n in cli.counts(cli.storm_clients.as_ref(), &[1000, 10_000]) {
                for &k in &cli.servers {
                    push(scenario::storm(&ctx, k, Mode::Sse, n).await, "storm");
                }
            }
        }
        if want(Scenario::Idle) {
            // Each cometail mode of `--modes` (frontail: socket.io, once).
            let idle_for = Duration::from_secs_f64(cli.idle_secs);
            for n in cli.counts(cli.idle_clients.as_ref(), &[10_000, 100_000]) {
                for (i, &m) in cli.modes.iter().enumerate() {
                    for &k in &cli.servers {
                        if k == Kind::Frontail && i > 0 {
                            continue;
                        }
                        push(scenario::idle(&ctx, k, m, n, idle_for).await, "idle");
                    }
                }
            }
        }
        if want(Scenario::Ingest) && cli.servers.contains(&Kind::Cometail) {
            let formats = cli.ingest_formats.as_deref().unwrap_or(&[]);
            let formats = if formats.is_empty() {
                &[cli.line_format][..]
            } else {
                formats
            };
            for &format in formats {
                push(solo::ingest(&ctx, cli.ingest_lines, format).await, "ingest");
            }
        }
        if want(Scenario::Files) && cli.servers.contains(&Kind::Cometail) {
            let d = Duration::from_secs_f64(cli.files_secs);
            for busy in [0, cli.busy_rate] {
                push(files::many_files(&ctx, cli.files, busy, d).await, "files");
            }
        }
        if cli.scenario.contains(&Scenario::Merged) {
            let d = Duration::from_secs_f64(cli.duration);
            let rate = cli.rate.unwrap_or(1000);
            push(merged::merged(&ctx, rate, d).await, "merged");
        }
        if cli.scenario.contains(&Scenario::ScaleOut) {
            for &viewers in &cli.scale_viewers {
                let shape = scaleout::Shape {
                    agents: cli.scale_agents,
                    rate: cli.scale_rate,
                    viewers,
                    duration: Duration::from_secs_f64(cli.duration),
                };
                push(scaleout::run(&ctx, shape).await, "scale-out");
            }
        }
        if want(Scenario::Parse) {
            for format in [
                marks::LineFormat::Plain,
                marks::LineFormat::Ts,
                marks::LineFormat::Json,
                marks::LineFormat::Logfmt,
            ] {
                let lines = cli.parse_lines;
                let line_bytes = ctx.line_bytes;
                let row =
                    tokio::task::spawn_blocking(move || parsing::parse(format, lines, line_bytes))
                        .await
                        .map_err(anyhow::Error::from)
                        .and_then(|r| r);
                push(row, "parse");
            }
        }
        if want(Scenario::History) && cli.servers.contains(&Kind::Cometail) {
            push(solo::history(&ctx, cli.history_gib).await, "history");
        }
        if want(Scenario::Seek) && cli.servers.contains(&Kind::Cometail) {
            push(timed::seek(&ctx, cli.timed_gib).await, "seek");
        }
        if want(Scenario::Grep) && cli.servers.contains(&Kind::Cometail) {
            for shape in [timed::Shape::Plain, timed::Shape::Json] {
                push(timed::grep(&ctx, cli.timed_gib, shape, false).await, "grep");
            }
            let r = timed::grep(&ctx, cli.timed_gib, timed::Shape::Plain, true).await;
            push(r, "grep");
        }
        if want(Scenario::Search) && cli.servers.contains(&Kind::Cometail) {
            let r = search::search_scenario(&ctx, cli.search_mib, cli.search_gz_mib).await;
            push(r, "search");
        }
        if want(Scenario::Memory) && cli.servers.contains(&Kind::Cometail) {
            let (n, mib) = (cli.memory_files, cli.memory_mib_per_file);
            push(memory::busy_files(&ctx, n, mib).await, "memory");
        }
    }
    Ok(rows)
}
