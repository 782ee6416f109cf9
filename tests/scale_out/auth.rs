//! Engine credentials beyond a token and a password: `.creds` files against a server in
//! operator (decentralized JWT) mode, an nkey seed file against nkey users, and mutual TLS.
//! Each logs an agent and a hub in and moves lines end to end; a wrong one is exit 2 for
//! both. The `.creds` users carry the permissions docs/SCALE-OUT.md lists (an agent only its
//! own subjects, a hub read-only), so those lists are proven sufficient, and an agent that
//! claims another host's name is stopped by them.

use std::path::Path;
use std::time::Instant;

use serde_json::{Value, json};

use super::{TRAVEL, chain, numbered, texts, write_lines};
use crate::common::nats::{Nats, Role, free_port};
use crate::common::nats_auth::{Operator, Pki, stranger_creds};

/// What an agent for `host` may do (docs/SCALE-OUT.md, "Credentials and permissions").
fn agent_permissions(host: &str) -> Value {
    json!({
        "pub": {"allow": [
            format!("cometail.{host}.>"),
            format!("$KV.cometail-hosts.{host}"),
            format!("$JS.API.DIRECT.GET.KV_cometail-hosts.$KV.cometail-hosts.{host}"),
            "$JS.API.STREAM.INFO.COMETAIL",
            "$JS.API.STREAM.INFO.KV_cometail-hosts",
            "$JS.API.STREAM.MSG.GET.COMETAIL",
            "$JS.API.STREAM.CREATE.COMETAIL",
            "$JS.API.STREAM.CREATE.KV_cometail-hosts",
        ]},
        "sub": {"allow": ["_INBOX.>"]},
    })
}

/// What a hub may do: read, never publish on `cometail.>`.
fn hub_permissions() -> Value {
    json!({
        "pub": {"allow": [
            "$JS.API.STREAM.INFO.COMETAIL",
            "$JS.API.STREAM.INFO.KV_cometail-hosts",
            "$JS.API.DIRECT.GET.COMETAIL",
            "$JS.API.DIRECT.GET.COMETAIL.>",
            "$JS.API.DIRECT.GET.KV_cometail-hosts.>",
        ]},
        "sub": {"allow": ["_INBOX.>", "cometail.>"]},
    })
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `cometail ROLE --nats URL ARGS…` (an agent as `web-1` of `log`) run to its end.
fn refused(role: &str, url: &str, log: &Path, args: &[&str]) -> String {
    let mut all = vec![role, "--nats", url];
    if role == "agent" {
        all.extend(["--host", "web-1", path(log)]);
    } else {
        all.extend(["--port", "0"]);
    }
    all.extend_from_slice(args);
    let started = Instant::now();
    let (code, err) = Role::run(&all);
    assert_eq!(code, Some(2), "{role} {args:?}: {err}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(15),
        "said at once, not after retries"
    );
    err
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creds_files_log_agents_and_hubs_in_with_only_their_own_subjects() {
    let dir = tempfile::tempdir().unwrap();
    let operator = Operator::new();
    let config = operator.config_file(dir.path());
    let nats = Nats::start_with(dir.path(), free_port(), &["-c", path(&config)]);
    let agent_creds = operator.user_creds(dir.path(), "agent-web-1", &agent_permissions("web-1"));
    let hub_creds = operator.user_creds(dir.path(), "hub", &hub_permissions());
    let log = dir.path().join("app.log");
    write_lines(&log, 1, 3);
    let _agent = Role::agent(
        &nats.url,
        "web-1",
        &["--nats-creds", path(&agent_creds), path(&log)],
    );
    let hub = Role::hub(&nats.url, &["--nats-creds", path(&hub_creds)]);
    assert_eq!(
        texts(&chain(&hub.url, "web-1~app.log", 3).await),
        numbered(1, 3)
    );
    write_lines(&log, 4, 50);
    assert_eq!(
        texts(&chain(&hub.url, "web-1~app.log", 50).await),
        numbered(1, 50)
    );
    // The listing reads the hosts bucket (stream info and direct gets, no consumer): the
    // hub's rights cover it. `last_seen` comes from web-1's heartbeat only.
    let listing = format!("{}/api/streams", hub.url);
    crate::common::wait_until("web-1 listed from its heartbeat", TRAVEL, || async {
        super::get(&listing).await.is_some_and(|l| {
            l["streams"][0]["id"] == "web-1~app.log" && l["streams"][0]["last_seen"].is_u64()
        })
    })
    .await;

    // A user of an account the server does not trust: refused, for both roles.
    let stranger = stranger_creds(dir.path(), "stranger");
    for role in ["agent", "hub"] {
        let err = refused(role, &nats.url, &log, &["--nats-creds", path(&stranger)]);
        assert!(err.contains("refused the credentials"), "{role}: {err}");
    }

    // web-1's credentials cannot act as another host: the engine denies its subjects, and
    // the agent says which and stops.
    let other = dir.path().join("other.log");
    write_lines(&other, 1, 1);
    let (code, err) = Role::run(&[
        "agent",
        "--nats",
        &nats.url,
        "--host",
        "web-2",
        "--nats-creds",
        path(&agent_creds),
        path(&other),
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("denied a request") && err.contains("Permissions Violation"),
        "{err}"
    );
    assert!(err.contains("cometail-hosts.web-2"), "{err}");
    let listed = super::get(&listing).await.unwrap();
    assert_eq!(
        listed["streams"].as_array().unwrap().len(),
        1,
        "no web-2: {listed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_nkey_seed_file_logs_in() {
    let dir = tempfile::tempdir().unwrap();
    let user = nkeys::KeyPair::new_user();
    let config = dir.path().join("nkey.conf");
    std::fs::write(
        &config,
        format!(
            "authorization {{ users = [ {{ nkey: {} }} ] }}\n",
            user.public_key()
        ),
    )
    .unwrap();
    let nats = Nats::start_with(dir.path(), free_port(), &["-c", path(&config)]);
    let seed = dir.path().join("user.nk");
    std::fs::write(&seed, format!("{}\n", user.seed().unwrap())).unwrap();
    let log = dir.path().join("app.log");
    write_lines(&log, 1, 20);
    let _agent = Role::agent(
        &nats.url,
        "web-1",
        &["--nats-nkey-file", path(&seed), path(&log)],
    );
    let hub = Role::hub(&nats.url, &["--nats-nkey-file", path(&seed)]);
    assert_eq!(
        texts(&chain(&hub.url, "web-1~app.log", 20).await),
        numbered(1, 20)
    );
    let unknown = dir.path().join("unknown.nk");
    std::fs::write(&unknown, nkeys::KeyPair::new_user().seed().unwrap()).unwrap();
    for role in ["agent", "hub"] {
        let err = refused(role, &nats.url, &log, &["--nats-nkey-file", path(&unknown)]);
        assert!(err.contains("refused the credentials"), "{role}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_needs_the_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let config = dir.path().join("tls.conf");
    std::fs::write(
        &config,
        format!(
            "tls {{\n  cert_file: {:?}\n  key_file: {:?}\n  ca_file: {:?}\n  verify: true\n}}\n",
            pki.server.0, pki.server.1, pki.ca
        ),
    )
    .unwrap();
    let nats = Nats::start_with(dir.path(), free_port(), &["-c", path(&config)]);
    let url = format!("tls://127.0.0.1:{}", nats.port);
    let (ca, cert, key) = (path(&pki.ca), path(&pki.client.0), path(&pki.client.1));
    let tls = ["--nats-ca", ca, "--nats-cert", cert, "--nats-key", key];
    let log = dir.path().join("app.log");
    write_lines(&log, 1, 20);
    let mut agent_args = tls.to_vec();
    agent_args.push(path(&log));
    let _agent = Role::agent(&url, "web-1", &agent_args);
    let hub = Role::hub(&url, &tls);
    assert_eq!(
        texts(&chain(&hub.url, "web-1~app.log", 20).await),
        numbered(1, 20)
    );
    // Without a client certificate, or with one another CA signed: refused, for both roles.
    let (other_cert, other_key) = (path(&pki.stranger.0), path(&pki.stranger.1));
    for role in ["agent", "hub"] {
        let err = refused(role, &url, &log, &["--nats-ca", ca]);
        assert!(err.contains("refused the credentials"), "{role}: {err}");
        let err = refused(
            role,
            &url,
            &log,
            &[
                "--nats-ca",
                ca,
                "--nats-cert",
                other_cert,
                "--nats-key",
                other_key,
            ],
        );
        assert!(err.contains("refused the credentials"), "{role}: {err}");
        // No TLS option: the server's certificate is vouched for by no CA the client knows.
        let err = refused(role, &url, &log, &[]);
        assert!(err.contains("TLS handshake failed"), "{role}: {err}");
    }
    // A client that requires TLS against a server without it: said, not retried.
    drop(nats);
    let plain = Nats::start(dir.path());
    for role in ["agent", "hub"] {
        let err = refused(role, &plain.url, &log, &["--nats-ca", ca]);
        assert!(err.contains("TLS handshake failed"), "{role}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_credential_files_are_named_before_connecting() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let d = |name: &str| dir.path().join(name);
    let seed = nkeys::KeyPair::new_user().seed().unwrap();
    // Half a .creds file (the seed block without the JWT), a mangled seed, text that is no PEM.
    std::fs::write(
        d("half.creds"),
        format!("-----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n"),
    )
    .unwrap();
    // One data character changed (the last one also holds padding bits, and the same
    // character could come back): the checksum no longer fits.
    let swap = if &seed[20..21] == "A" { "B" } else { "A" };
    let mangled = format!("{}{swap}{}", &seed[..20], &seed[21..]);
    std::fs::write(d("mangled.nk"), &mangled).unwrap();
    std::fs::write(d("not.pem"), "not a certificate\n").unwrap();
    let (missing, half, nk, not_pem) = (
        d("missing.creds"),
        d("half.creds"),
        d("mangled.nk"),
        d("not.pem"),
    );
    let (cert, key, other_key) = (
        path(&pki.client.0),
        path(&pki.client.1),
        path(&pki.stranger.1),
    );
    let cases: Vec<(Vec<&str>, &str, &str)> = vec![
        (
            vec!["--nats-creds", path(&missing)],
            "--nats-creds",
            "missing.creds",
        ),
        (
            vec!["--nats-creds", path(&half)],
            "--nats-creds",
            "not a NATS credentials file",
        ),
        (
            vec!["--nats-nkey-file", path(&nk)],
            "--nats-nkey-file",
            "mangled.nk",
        ),
        (vec!["--nats-ca", path(&not_pem)], "--nats-ca", "not.pem"),
        (vec!["--nats-cert", cert], "--nats-cert", "needs --nats-key"),
        (
            vec!["--nats-cert", path(&not_pem), "--nats-key", key],
            "--nats-cert",
            "not.pem",
        ),
        (
            vec!["--nats-cert", cert, "--nats-key", path(&not_pem)],
            "--nats-key",
            "not.pem",
        ),
        (
            vec!["--nats-cert", cert, "--nats-key", other_key],
            "--nats-key",
            "does not fit",
        ),
        (
            vec!["--nats-creds", path(&half), "--nats-nkey-file", path(&nk)],
            "--nats-nkey-file",
            "one way to log in",
        ),
    ];
    let log = d("app.log");
    for role in ["agent", "hub"] {
        for (args, flag, says) in &cases {
            let err = refused(role, "nats://127.0.0.1:1", &log, args);
            assert!(
                err.contains(flag) && err.contains(says),
                "{role} {args:?}: {err}"
            );
            assert!(!err.contains(&seed) && !err.contains(&mangled), "{err}");
        }
    }
}
