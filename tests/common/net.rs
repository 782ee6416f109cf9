//! Network helpers for security tests: raw HTTP/1.1 over TCP (so a test controls every byte:
//! `Host`, traversal paths that clients would normalise, slow or oversized heads), a server
//! started without waiting on plain HTTP (TLS), and TLS clients that trust a test certificate.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use cometail::cli::Cli;
use cometail::config::Config;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A response read off the wire.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    /// Header names lowercase, in order.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of header `name`.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// Parses a status line and headers (`head` without the final blank line).
pub fn parse_head(head: &str) -> (u16, Vec<(String, String)>) {
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {head:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers)
}

/// Reads one response (head, then a `content-length` body or none) from `io`. Streaming
/// responses (chunked) return with the head and an empty body.
pub async fn read_response<S: AsyncRead + Unpin>(io: &mut S) -> Option<Resp> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match io.read(&mut byte).await {
            Ok(1) => buf.push(byte[0]),
            _ => return None,
        }
    }
    let head = String::from_utf8_lossy(&buf[..buf.len() - 4]).into_owned();
    let (status, headers) = parse_head(&head);
    let len: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    io.read_exact(&mut body).await.ok()?;
    Some(Resp {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// Sends `GET target` with the given extra headers (a `Host` among them replaces the
/// default) on a new connection and reads the answer (within 10 s).
pub async fn get(addr: SocketAddr, target: &str, headers: &[(&str, &str)]) -> Resp {
    request(addr, "GET", target, headers).await
}

/// Like [`get`] with any method.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
) -> Resp {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    send_request(&mut tcp, addr, method, target, headers).await;
    tokio::time::timeout(Duration::from_secs(10), read_response(&mut tcp))
        .await
        .expect("an answer within 10 s")
        .unwrap_or_else(|| panic!("connection closed without an answer: {method} {target}"))
}

/// `GET target` over the Unix socket at `path`: status and body.
pub async fn get_unix(path: &Path, target: &str) -> (u16, String) {
    let mut io = tokio::net::UnixStream::connect(path).await.unwrap();
    let host = "127.0.0.1:0".parse().unwrap();
    send_request(&mut io, host, "GET", target, &[("Host", "localhost")]).await;
    let r = tokio::time::timeout(Duration::from_secs(10), read_response(&mut io))
        .await
        .expect("an answer within 10 s")
        .expect("an answer");
    (r.status, r.body)
}

/// Writes a request head to `io`.
pub async fn send_request<S: AsyncWrite + Unpin>(
    io: &mut S,
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
) {
    let mut req = format!("{method} {target} HTTP/1.1\r\n");
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("Host: {addr}\r\n"));
    }
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("\r\n");
    io.write_all(req.as_bytes()).await.unwrap();
}

/// A keep-alive HTTP/1.1 connection for many small requests.
pub struct Conn {
    pub addr: SocketAddr,
    tcp: tokio::io::BufReader<TcpStream>,
}

impl Conn {
    pub async fn open(addr: SocketAddr) -> Self {
        Self {
            addr,
            tcp: tokio::io::BufReader::new(TcpStream::connect(addr).await.unwrap()),
        }
    }

    /// `GET target`; reconnects once if the server closed the connection.
    pub async fn get(&mut self, target: &str) -> Resp {
        for _ in 0..2 {
            send_request(self.tcp.get_mut(), self.addr, "GET", target, &[]).await;
            if let Ok(Some(r)) =
                tokio::time::timeout(Duration::from_secs(10), read_response(&mut self.tcp)).await
            {
                return r;
            }
            self.tcp = tokio::io::BufReader::new(TcpStream::connect(self.addr).await.unwrap());
        }
        panic!("no answer to GET {target}");
    }
}

/// Whether the peer closes `tcp` (EOF or reset) within `within`.
pub async fn closed_within(tcp: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let end = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(end, tcp.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

/// A server run in-process without waiting for a plain-HTTP answer (for TLS).
pub struct RawServer {
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    pub shutdown: CancellationToken,
    pub handle: JoinHandle<()>,
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Starts a server in `dir` with `args` (`{dir}` replaced) on `127.0.0.1:0`.
pub async fn start_raw(dir: tempfile::TempDir, args: &[&str]) -> RawServer {
    let d = dir.path().display().to_string();
    let mut argv: Vec<String> = vec!["cometail".into(), "--port".into(), "0".into()];
    argv.extend(args.iter().map(|a| a.replace("{dir}", &d)));
    let config = Config::from_cli(Cli::try_parse_from(&argv).unwrap()).unwrap();
    let listener = tokio::net::TcpListener::bind(config.addr()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    let handle = tokio::spawn(async move {
        cometail::run(config, listener, token).await.unwrap();
    });
    RawServer {
        addr,
        dir,
        shutdown,
        handle,
    }
}

/// Writes a self-signed certificate for `localhost` and `127.0.0.1` to `dir/cert.pem` and
/// `dir/key.pem`; returns the certificate (DER) for clients to trust.
pub fn write_test_cert(dir: &Path) -> rustls_pki_types::CertificateDer<'static> {
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    std::fs::write(dir.join("cert.pem"), ck.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), ck.signing_key.serialize_pem()).unwrap();
    ck.cert.der().clone()
}

/// A TLS client that trusts only `cert`, offering `alpn`.
pub fn tls_connector(
    cert: &rustls_pki_types::CertificateDer<'static>,
    alpn: &[&[u8]],
) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// Connects over TLS to `addr` as `127.0.0.1`.
pub async fn tls_connect(
    connector: &tokio_rustls::TlsConnector,
    addr: SocketAddr,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = rustls_pki_types::ServerName::IpAddress(addr.ip().into());
    tokio::time::timeout(Duration::from_secs(10), connector.connect(name, tcp))
        .await
        .expect("handshake within 10 s")
        .unwrap()
}
