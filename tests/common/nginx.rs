//! A real nginx in front of cometail, as an operator would put it: `/logs/` proxied to
//! cometail's `--base-path /logs/`, HTTP/1.1 upstream, no buffering (so SSE flows), the
//! client's address in `X-Forwarded-For`.
//!
//! It runs unprivileged-style from the test: its own config, pid, logs and temp paths in a
//! temp dir, one process (`master_process off`), on a free loopback port. A missing nginx is a
//! test failure, never a skip (`scripts/test.sh` installs it).

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Debian's nginx.
pub const NGINX: &str = "/usr/sbin/nginx";

/// A running nginx; killed on drop.
pub struct Nginx {
    child: Child,
    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub url: String,
    _dir: tempfile::TempDir,
}

impl Nginx {
    /// Starts nginx proxying `/logs/` to `upstream` (`127.0.0.1:PORT`).
    pub fn start(upstream: &str) -> Self {
        assert!(
            Path::new(NGINX).exists(),
            "this test needs {NGINX} (apt-get install nginx; scripts/test.sh does)"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path().display();
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let conf = format!(
            r#"daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location /logs/ {{
            proxy_pass http://{upstream};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_buffering off;
            proxy_read_timeout 1h;
        }}
    }}
}}
"#
        );
        let path = dir.path().join("nginx.conf");
        std::fs::File::create(&path)
            .and_then(|mut f| f.write_all(conf.as_bytes()))
            .expect("write nginx.conf");
        let mut child = Command::new(NGINX)
            .arg("-p")
            .arg(dir.path())
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .arg("-c")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start nginx");
        let up = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            let exited = matches!(child.try_wait(), Ok(Some(_)));
            if exited || Instant::now() > up {
                let _ = child.kill();
                let _ = child.wait();
                let log = std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default();
                panic!("nginx did not listen on port {port} within 10 s: {log}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
