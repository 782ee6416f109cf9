//! The `cometail` binary: parse the command line, bind, run, map errors to exit codes
//! (0: clean shutdown, 1: could not run, 2: bad usage).

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use cometail::cli::Cli;
use cometail::{Config, shutdown};
use tokio_util::sync::CancellationToken;

fn main() -> ExitCode {
    // clap prints usage errors itself and exits with code 2.
    let cli = Cli::parse();
    let config = match Config::from_cli(cli) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("cometail: error: {e}");
            return ExitCode::from(2);
        }
    };
    cometail::logging::init();
    match serve(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cometail: error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn serve(config: Config) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let served = runtime.block_on(async {
        let listener = cometail::http::listen(config.addr)
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.addr))?;
        let addr = listener.local_addr()?;
        let token = CancellationToken::new();
        shutdown::on_signal(token.clone())?;
        let host = if addr.ip().is_unspecified() {
            "127.0.0.1".to_owned()
        } else {
            addr.ip().to_string()
        };
        let host = if addr.is_ipv6() && !addr.ip().is_unspecified() {
            format!("[{host}]")
        } else {
            host
        };
        let scheme = if config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        // A generated token is printed once, in the URL the user opens (like Jupyter); a
        // token from a file or the environment is the user's already and is not repeated.
        let query = match (&config.auth.token, config.auth.token_generated) {
            (Some(token), true) => format!("?token={}", token.0),
            _ => String::new(),
        };
        let mut stdout = std::io::stdout().lock();
        // A closed stdout (e.g. piped to `head`) must not stop the server.
        let _ = writeln!(
            stdout,
            "cometail: serving on {scheme}://{host}:{}/{query}",
            addr.port()
        );
        if addr.ip().is_unspecified() {
            let _ = writeln!(stdout, "cometail: listening on every interface ({addr})");
        }
        let _ = stdout.flush();
        drop(stdout);
        cometail::run(config, listener, token).await?;
        Ok(())
    });
    // Dropping the runtime would wait for every blocking thread, however long it is stuck.
    runtime.shutdown_timeout(shutdown::RUNTIME_DEADLINE);
    served
}
