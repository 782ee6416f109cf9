//! The `cometail` binary: parse the command line, bind, run, map errors to exit codes
//! (0: clean shutdown, 1: could not run, 2: bad usage).

use std::io::Write;
use std::process::ExitCode;

use cometail::config::{self, LoadError};
use cometail::http::activation::Passed;
use cometail::{Config, shutdown};
use tokio_util::sync::CancellationToken;

fn main() -> ExitCode {
    // `cometail agent …` and `cometail hub …` are the scale-out roles; anything else is the
    // standalone command line, unchanged (a file named `agent` is written `./agent`).
    let role_args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    match role_args.first().and_then(|a| a.to_str()) {
        Some("agent") => return roles::agent(role_args),
        Some("hub") => return roles::hub(role_args),
        _ => {}
    }
    let args: Vec<_> = std::env::args_os().collect();
    let loaded = match config::load(&args, config::DEFAULT_PATH.as_ref()) {
        Ok(loaded) => loaded,
        // clap prints usage errors (and --help, --version) itself and exits with code 2 (0).
        Err(LoadError::Usage(e)) => e.exit(),
        Err(e) => {
            eprintln!("cometail: error: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(shell) = loaded.cli.completions {
        let mut command = <cometail::cli::Cli as clap::CommandFactory>::command();
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut command, "cometail", &mut script);
        // A closed stdout (e.g. piped to `head`) is not an error.
        let _ = std::io::stdout().write_all(&script);
        return ExitCode::SUCCESS;
    }
    if loaded.cli.man {
        let command = <cometail::cli::Cli as clap::CommandFactory>::command();
        let mut page = Vec::new();
        if let Err(e) = clap_mangen::Man::new(command).render(&mut page) {
            eprintln!("cometail: error: cannot render the manual page: {e}");
            return ExitCode::from(1);
        }
        // A closed stdout (e.g. piped to `head`) is not an error.
        let _ = std::io::stdout().write_all(&page);
        return ExitCode::SUCCESS;
    }
    let print = loaded.cli.print_config;
    let (config, origin) = loaded.into_config();
    let config = match config.and_then(|c| c.require_sources().map(|()| c)) {
        Ok(config) => config,
        Err(e) => {
            let at = e.flag().and_then(|flag| origin.locate(flag));
            let at = at.map(|at| format!(" (set in {at})")).unwrap_or_default();
            eprintln!("cometail: error: {e}{at}");
            return ExitCode::from(2);
        }
    };
    if print {
        // A closed stdout (e.g. piped to `head`) is not an error.
        let _ = std::io::stdout().write_all(origin.print().as_bytes());
        return ExitCode::SUCCESS;
    }
    let passed = match take_sockets(&config) {
        Ok(passed) => passed,
        Err(code) => return code,
    };
    cometail::logging::init();
    match serve(config, passed) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cometail: error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// The sockets systemd passed (socket activation), if any; exit code 2 for one that cannot be
/// served. Call it before any thread starts: taking the sockets edits the environment.
fn take_sockets(config: &Config) -> Result<Option<Passed>, ExitCode> {
    cometail::http::activation::take(config).map_err(|e| {
        eprintln!("cometail: error: {e}");
        ExitCode::from(2)
    })
}

fn serve(config: Config, passed: Option<Passed>) -> anyhow::Result<()> {
    run_with(config, passed, |config, listeners, token| async move {
        cometail::run_listeners(config, listeners, token).await?;
        Ok(())
    })
}

/// Binds (or adopts the sockets systemd passed), prints the URLs, and runs `body` until a
/// signal; shared by every role.
fn run_with<F, Fut>(config: Config, passed: Option<Passed>, body: F) -> anyhow::Result<()>
where
    F: FnOnce(Config, cometail::Listeners, CancellationToken) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let served = runtime.block_on(async {
        let from_systemd = passed.as_ref().is_some_and(Passed::serves_app);
        let (listeners, metrics, unix) = bind(&config, passed.unwrap_or_default())?;
        let token = CancellationToken::new();
        shutdown::on_signal(token.clone())?;
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
        if from_systemd {
            let _ = writeln!(
                stdout,
                "cometail: serving on the sockets systemd passed (LISTEN_FDS), not on --bind or \
                 --unix-socket"
            );
        }
        for listener in &listeners {
            let addr = listener.local_addr()?;
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
            // A closed stdout (e.g. piped to `head`) must not stop the server.
            let _ = writeln!(
                stdout,
                "cometail: serving on {scheme}://{host}:{}{}{query}",
                addr.port(),
                config.base_path
            );
            if addr.ip().is_unspecified() {
                let _ = writeln!(stdout, "cometail: listening on every interface ({addr})");
            }
        }
        for socket in &unix {
            let _ = writeln!(
                stdout,
                "cometail: serving on unix:{} (path {})",
                socket.path().display(),
                config.base_path
            );
        }
        if let Some(addr) = metrics.as_ref().and_then(|l| l.local_addr().ok()) {
            let _ = writeln!(stdout, "cometail: metrics on http://{addr}/metrics");
        }
        let _ = stdout.flush();
        drop(stdout);
        let listeners = cometail::Listeners {
            http: listeners,
            metrics,
            unix,
        };
        body(config, listeners, token).await
    });
    // Dropping the runtime would wait for every blocking thread, however long it is stuck.
    runtime.shutdown_timeout(shutdown::RUNTIME_DEADLINE);
    served
}

/// The main listeners (TCP, Unix) and the metrics listener: the sockets systemd passed for a
/// role, or else those its flags name.
type Bound = (
    Vec<tokio::net::TcpListener>,
    Option<tokio::net::TcpListener>,
    Vec<cometail::http::UnixSocket>,
);

/// Binds what `config` names, but for each role systemd passed sockets for (`passed`): the
/// application's (`--bind`, `--unix-socket`) and the metrics' (`--metrics-bind`).
fn bind(config: &Config, passed: Passed) -> anyhow::Result<Bound> {
    use cometail::http::{UnixSocket, activation, listen, listen_unix};
    let adopted = |e| anyhow::anyhow!("cannot serve on a socket systemd passed: {e}");
    let (mut listeners, mut unix) = (Vec::new(), Vec::new());
    if passed.serves_app() {
        for tcp in passed.http {
            listeners.push(activation::into_tokio(tcp).map_err(adopted)?);
        }
        for socket in passed.unix {
            unix.push(UnixSocket::adopt(socket).map_err(adopted)?);
        }
    } else {
        for addr in &config.addrs {
            let listener =
                listen(*addr).map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
            listeners.push(listener);
        }
        if let Some((path, mode)) = &config.unix_socket {
            unix.push(listen_unix(path, *mode).map_err(|e| {
                anyhow::anyhow!("cannot listen on {} (--unix-socket): {e}", path.display())
            })?);
        }
    }
    let metrics = match (passed.metrics, config.metrics_addr) {
        (Some(tcp), _) => Some(activation::into_tokio(tcp).map_err(adopted)?),
        (None, Some(addr)) => Some(
            listen(addr)
                .map_err(|e| anyhow::anyhow!("cannot listen on {addr} (--metrics-bind): {e}"))?,
        ),
        (None, None) => None,
    };
    Ok((listeners, metrics, unix))
}

/// The scale-out roles' entry points: parse, validate (exit 2), run (exit 1 on failure).
mod roles {
    use std::ffi::OsString;
    use std::process::ExitCode;

    use cometail::config::ConfigError;
    use cometail::roles::Parsed;

    fn usage(e: &ConfigError) -> ExitCode {
        eprintln!("cometail: error: {e}");
        ExitCode::from(2)
    }

    /// Starts logging, and warns of each setting the environment gave that the role ignores.
    fn init_logging(ignored: &[String]) {
        cometail::logging::init();
        for warning in ignored {
            tracing::warn!("{warning}");
        }
    }

    fn exit(result: anyhow::Result<()>) -> ExitCode {
        match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("cometail: error: {e:#}");
                // A stream the engine holds with other settings is the operator's to fix.
                if e.downcast_ref::<cometail::engine::EngineError>().is_some() {
                    ExitCode::from(2)
                } else {
                    ExitCode::from(1)
                }
            }
        }
    }

    pub(super) fn agent(args: Vec<OsString>) -> ExitCode {
        let Parsed {
            config,
            settings,
            engine,
            ignored,
        } = match cometail::roles::agent(args) {
            Ok(v) => v,
            Err(e) => return usage(&e),
        };
        init_logging(&ignored);
        // The agent listens on nothing.
        let config = cometail::Config {
            addrs: Vec::new(),
            ..config
        };
        exit(super::run_with(
            config,
            None,
            |config, _listeners, token| async move {
                println!(
                    "cometail: agent of host {} publishing to {}",
                    settings.host, engine.url
                );
                cometail::agent::run(config, settings, engine, token)
                    .await
                    .map_err(|e| match e {
                        cometail::agent::AgentError::Engine(e) => anyhow::Error::new(e),
                        other => anyhow::Error::new(other),
                    })
            },
        ))
    }

    pub(super) fn hub(args: Vec<OsString>) -> ExitCode {
        let Parsed {
            config,
            settings,
            engine,
            ignored,
        } = match cometail::roles::hub(args) {
            Ok(v) => v,
            Err(e) => return usage(&e),
        };
        // A hub serves the sockets systemd passed, as the standalone server does.
        let passed = match super::take_sockets(&config) {
            Ok(passed) => passed,
            Err(code) => return code,
        };
        init_logging(&ignored);
        exit(super::run_with(
            config,
            passed,
            |config, listeners, token| async move {
                cometail::run_hub(config, settings, engine, listeners, token)
                    .await
                    .map_err(anyhow::Error::new)
            },
        ))
    }
}
