//! systemd socket activation: the listening sockets systemd passes (`LISTEN_FDS`, from fd 3 on),
//! taken once at start, checked, and sorted by role.
//!
//! The protocol is systemd's `sd_listen_fds(3)`: `LISTEN_PID` must be this process (else the
//! variables are someone else's and are ignored), `LISTEN_FDS` counts the sockets and
//! `LISTEN_FDNAMES` names them (`FileDescriptorName=` in the `.socket` unit). A socket named
//! `metrics` replaces `--metrics-bind`; every other one serves the whole application, and any of
//! them replaces `--bind` and `--unix-socket`: the `.socket` unit is then the one place the
//! addresses are written, and the configuration file a service also reads without the socket
//! unit need not change. Each passed descriptor must be a listening TCP or Unix stream socket
//! (`Accept=no`); anything else is an [`ActivationError`] (exit code 2). A passed TCP socket on
//! a non-loopback address obeys the same rule as `--bind` ([`Config::check_public`]).
//!
//! The descriptors are claimed through the `listenfd` crate, which holds the one `unsafe` step
//! (adopting a descriptor by number) that this crate forbids itself; it also marks them
//! close-on-exec and removes `LISTEN_FDS` and `LISTEN_PID` from the environment, so `--cmd`
//! sources inherit neither the sockets nor the variables (they get a cleared environment too).
//! Because it changes the environment, [`take`] must run before any other thread starts.

use std::fs;
use std::io;
use std::net::TcpListener;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixListener;

use crate::config::Config;

/// The name (`FileDescriptorName=metrics`) of a passed socket that serves `/metrics` and the
/// probes alone, like `--metrics-bind`.
pub const METRICS_NAME: &str = "metrics";

/// The sockets systemd passed, by role; blocking ones, made ready for the runtime by
/// [`into_tokio`] and `UnixSocket::adopt`.
#[derive(Debug, Default)]
pub struct Passed {
    /// TCP sockets serving the whole application (instead of `--bind`).
    pub http: Vec<TcpListener>,
    /// Unix stream sockets serving the whole application (instead of `--unix-socket`).
    pub unix: Vec<UnixListener>,
    /// The socket named `metrics` (instead of `--metrics-bind`).
    pub metrics: Option<TcpListener>,
}

impl Passed {
    /// Whether any passed socket serves the application (so `--bind` and `--unix-socket` are
    /// not bound).
    pub fn serves_app(&self) -> bool {
        !self.http.is_empty() || !self.unix.is_empty()
    }
}

/// Why the passed sockets cannot be served on. Exit code 2: the `.socket` unit (or whatever
/// passed them) is the operator's to fix, and starting again would fail the same way.
#[derive(Debug, thiserror::Error)]
pub enum ActivationError {
    /// `LISTEN_FDS` is not a count.
    #[error("LISTEN_FDS=`{0}` (systemd socket activation) is not a number of sockets")]
    Count(String),
    /// A passed descriptor is not a listening TCP or Unix stream socket.
    #[error(
        "{which}, passed by systemd (LISTEN_FDS), is {what}; cometail serves on listening TCP \
         or Unix stream sockets (ListenStream= with Accept=no in the .socket unit)"
    )]
    NotAListener {
        /// `fd 3 ("cometail.socket")`.
        which: String,
        /// What it is instead.
        what: String,
    },
    /// A passed TCP socket is public and authentication is off.
    #[error("{which}, passed by systemd (LISTEN_FDS), listens on {addr}: {reason}")]
    Public {
        /// `fd 3 ("cometail.socket")`.
        which: String,
        /// Its local address.
        addr: std::net::SocketAddr,
        /// The public-bind rule's refusal.
        reason: String,
    },
    /// The socket named `metrics` is not TCP, or there are several.
    #[error("{which}, passed by systemd (LISTEN_FDS), is named `metrics`, but {why}")]
    Metrics {
        /// `fd 4 ("metrics")`.
        which: String,
        /// What is wrong.
        why: &'static str,
    },
}

/// A passed TCP socket made ready for the accept loop (non-blocking, in the runtime).
///
/// # Errors
/// The socket cannot be made non-blocking or registered with the runtime.
pub fn into_tokio(listener: TcpListener) -> io::Result<tokio::net::TcpListener> {
    listener.set_nonblocking(true)?;
    tokio::net::TcpListener::from_std(listener)
}

/// Takes the sockets systemd passed to this process, if it passed any (`None`: bind as the
/// flags say).
///
/// Call it once, before any other thread starts: it removes `LISTEN_FDS` and `LISTEN_PID`
/// from the environment.
///
/// # Errors
/// A passed descriptor that is not a listening TCP or Unix stream socket, a public TCP socket
/// without authentication, or a `metrics` socket that is not one TCP socket.
pub fn take(config: &Config) -> Result<Option<Passed>, ActivationError> {
    let Some(count) = std::env::var_os("LISTEN_FDS") else {
        return Ok(None);
    };
    let ours = std::env::var("LISTEN_PID").ok() == Some(std::process::id().to_string());
    let names = std::env::var("LISTEN_FDNAMES").unwrap_or_default();
    // listenfd's extension (systemfd): the sockets may start at another descriptor than 3.
    let first_fd: usize = std::env::var("LISTEN_FDS_FIRST_FD")
        .ok()
        .and_then(|fd| fd.parse().ok())
        .unwrap_or(3);
    // Removes LISTEN_FDS and LISTEN_PID whoever they were meant for, as sd_listen_fds does.
    let mut fds = listenfd::ListenFd::from_env();
    if !ours {
        // Another process's sockets (a shell between systemd and cometail did not `exec`):
        // not ours to take, and the flags say where to listen.
        return Ok(None);
    }
    let count = count.to_string_lossy();
    let count: usize = count
        .parse()
        .map_err(|_| ActivationError::Count(count.to_string()))?;
    let mut passed = Passed::default();
    for index in 0..count.min(fds.len()) {
        let name = names
            .split(':')
            .nth(index)
            .filter(|n| !n.is_empty())
            .unwrap_or("unknown");
        let fd = first_fd + index;
        let which = format!("fd {fd} (\"{}\")", name.escape_debug());
        let socket = adopt(&mut fds, index, fd).map_err(|what| ActivationError::NotAListener {
            which: which.clone(),
            what,
        })?;
        match (socket, name == METRICS_NAME) {
            (Socket::Tcp(tcp), true) if passed.metrics.is_none() => passed.metrics = Some(tcp),
            (Socket::Tcp(_), true) => {
                return Err(ActivationError::Metrics {
                    which,
                    why: "another socket has that name already (one metrics socket at most)",
                });
            }
            (Socket::Unix(_), true) => {
                return Err(ActivationError::Metrics {
                    which,
                    why: "it is a Unix socket (the metrics socket is TCP, like --metrics-bind)",
                });
            }
            (Socket::Tcp(tcp), false) => {
                let addr = tcp
                    .local_addr()
                    .map_err(|e| ActivationError::NotAListener {
                        which: which.clone(),
                        what: format!("a socket without an address ({e})"),
                    })?;
                config
                    .check_public(addr.ip())
                    .map_err(|reason| ActivationError::Public {
                        which,
                        addr,
                        reason,
                    })?;
                passed.http.push(tcp);
            }
            (Socket::Unix(unix), false) => passed.unix.push(unix),
        }
    }
    Ok(Some(passed))
}

/// A passed socket, by family.
enum Socket {
    Tcp(TcpListener),
    Unix(UnixListener),
}

/// Adopts the descriptor at `index` (number `fd`) if it is a listening TCP or Unix stream socket; else says
/// what it is.
fn adopt(fds: &mut listenfd::ListenFd, index: usize, fd: usize) -> Result<Socket, String> {
    let socket = match fds.take_tcp_listener(index) {
        Ok(Some(tcp)) => Socket::Tcp(tcp),
        Ok(None) => return Err("gone (taken twice)".to_owned()),
        Err(_) => match fds.take_unix_listener(index) {
            Ok(Some(unix)) => Socket::Unix(unix),
            Ok(None) => return Err("gone (taken twice)".to_owned()),
            Err(_) => return Err(describe(fd)),
        },
    };
    let (listening, family) = match &socket {
        Socket::Tcp(tcp) => (socket2::SockRef::from(tcp).is_listener(), "TCP"),
        Socket::Unix(unix) => (socket2::SockRef::from(unix).is_listener(), "Unix stream"),
    };
    match listening {
        Ok(true) => Ok(socket),
        Ok(false) => Err(format!(
            "a {family} socket that is not listening (a connection: Accept=yes?)"
        )),
        Err(e) => Err(format!("a {family} socket that cannot be asked ({e})")),
    }
}

/// What the descriptor `fd` is, for an error message: it is not a TCP or Unix stream socket.
fn describe(fd: usize) -> String {
    // `/proc/self/fd/N` names the open file; `metadata` follows it to the file itself.
    match fs::metadata(format!("/proc/self/fd/{fd}")) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => "not open".to_owned(),
        Err(e) => format!("not usable ({e})"),
        Ok(meta) => {
            let kind = meta.file_type();
            if kind.is_socket() {
                "a socket of another kind (datagram or sequential-packet?)".to_owned()
            } else if kind.is_file() {
                "a regular file".to_owned()
            } else if kind.is_fifo() {
                "a pipe".to_owned()
            } else if kind.is_dir() {
                "a directory".to_owned()
            } else {
                "a device or another kind of file, not a socket".to_owned()
            }
        }
    }
}
