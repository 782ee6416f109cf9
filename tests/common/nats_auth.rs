//! What a NATS operator hands out, made in the test: an operator, its accounts and users as
//! nkeys and JWTs (decentralized auth, `.creds` files) and a small PKI for mutual TLS.
//!
//! The JWTs follow the v2 claim format nats-server 2.9 decodes: header
//! `{"typ":"JWT","alg":"ed25519-nkey"}`, base64url without padding, the claims signed with the
//! issuer's nkey over `header.claims`. The server checks the signature and the issuer's key
//! type, not `jti` (a unique id here).

use std::path::{Path, PathBuf};

use base64ct::{Base64UrlUnpadded, Encoding};
use nkeys::KeyPair;
use serde_json::{Value, json};

/// Encodes and signs `claims` (with `iss` set to the issuer's public key) as a NATS JWT.
fn jwt(issuer: &KeyPair, subject: &str, name: &str, nats: &Value) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static ISSUED: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let n = ISSUED.fetch_add(1, Ordering::Relaxed);
    let claims = json!({
        "jti": format!("COMETAILTEST{}X{n}", std::process::id()),
        "iat": now,
        "iss": issuer.public_key(),
        "name": name,
        "sub": subject,
        "nats": nats,
    });
    let head = Base64UrlUnpadded::encode_string(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let body = Base64UrlUnpadded::encode_string(claims.to_string().as_bytes());
    let signed = format!("{head}.{body}");
    let signature = issuer.sign(signed.as_bytes()).expect("an nkey signs");
    format!("{signed}.{}", Base64UrlUnpadded::encode_string(&signature))
}

/// The text of a `.creds` file, as `nsc generate creds` lays it out.
fn creds(user_jwt: &str, seed: &str) -> String {
    format!(
        "-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n\n\
         ************************* IMPORTANT *************************\n\
         NKEY Seed printed below can be used to sign and prove identity.\n\
         NKEYs are sensitive and should be treated as secrets.\n\n\
         -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n"
    )
}

/// Unlimited account limits with JetStream enabled (storage limits other than 0).
fn account_claims() -> Value {
    json!({
        "limits": {
            "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
            "wildcards": true, "conn": -1, "leaf": -1,
            "mem_storage": -1, "disk_storage": -1, "streams": -1, "consumer": -1
        },
        "type": "account",
        "version": 2
    })
}

/// An operator with a system account and one application account whose users log in with
/// `.creds` files.
pub struct Operator {
    account: KeyPair,
    config: String,
}

impl Operator {
    /// New keys, and the server configuration that trusts them: `operator`, `system_account`,
    /// `resolver: MEMORY` and `resolver_preload` with both account JWTs.
    pub fn new() -> Self {
        let operator = KeyPair::new_operator();
        let system = KeyPair::new_account();
        let account = KeyPair::new_account();
        let operator_jwt = jwt(
            &operator,
            &operator.public_key(),
            "cometail-test",
            &json!({"system_account": system.public_key(), "type": "operator", "version": 2}),
        );
        let system_jwt = jwt(
            &operator,
            &system.public_key(),
            "SYS",
            &json!({"limits": {"subs": -1, "data": -1, "payload": -1, "imports": -1,
                "exports": -1, "wildcards": true, "conn": -1, "leaf": -1},
                "type": "account", "version": 2}),
        );
        let account_jwt = jwt(&operator, &account.public_key(), "LOGS", &account_claims());
        let config = format!(
            "operator: {operator_jwt}\nsystem_account: {sys}\nresolver: MEMORY\n\
             resolver_preload: {{\n  {sys}: {system_jwt}\n  {acc}: {account_jwt}\n}}\n",
            sys = system.public_key(),
            acc = account.public_key(),
        );
        Self { account, config }
    }

    /// Writes the server configuration to `dir` and returns its path (for `nats-server -c`).
    pub fn config_file(&self, dir: &Path) -> PathBuf {
        let path = dir.join("operator.conf");
        std::fs::write(&path, &self.config).unwrap();
        path
    }

    /// A user of the application account with these `pub`/`sub` permissions (`{}` for none
    /// beyond the account's), written as `dir/NAME.creds`.
    pub fn user_creds(&self, dir: &Path, name: &str, permissions: &Value) -> PathBuf {
        user_creds_signed_by(&self.account, dir, name, permissions)
    }
}

/// A user signed by an account no server trusts (a wrong `.creds` file).
pub fn stranger_creds(dir: &Path, name: &str) -> PathBuf {
    user_creds_signed_by(&KeyPair::new_account(), dir, name, &json!({}))
}

fn user_creds_signed_by(account: &KeyPair, dir: &Path, name: &str, permissions: &Value) -> PathBuf {
    let user = KeyPair::new_user();
    let mut nats = json!({"subs": -1, "data": -1, "payload": -1, "type": "user", "version": 2});
    for (key, value) in permissions.as_object().into_iter().flatten() {
        nats[key] = value.clone();
    }
    let token = jwt(account, &user.public_key(), name, &nats);
    let path = dir.join(format!("{name}.creds"));
    std::fs::write(&path, creds(&token, &user.seed().unwrap())).unwrap();
    path
}

/// A CA, a server certificate for `127.0.0.1` and a client certificate it signed, and a
/// client certificate from another CA, as PEM files in a directory.
pub struct Pki {
    /// The CA certificate.
    pub ca: PathBuf,
    /// The server's certificate and key.
    pub server: (PathBuf, PathBuf),
    /// A client certificate and key the CA signed.
    pub client: (PathBuf, PathBuf),
    /// A client certificate and key another CA signed.
    pub stranger: (PathBuf, PathBuf),
}

impl Pki {
    /// Makes the certificates in `dir`.
    pub fn new(dir: &Path) -> Self {
        use rcgen::{
            BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
            IsCa, Issuer, KeyPair as Key,
        };
        let ca_params = |cn: &str| {
            let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.distinguished_name.push(DnType::CommonName, cn);
            params
        };
        let ca =
            CertifiedIssuer::self_signed(ca_params("cometail test CA"), Key::generate().unwrap())
                .unwrap();
        let other = Issuer::new(ca_params("another CA"), Key::generate().unwrap());
        let write = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let leaf = |name: &str, sans: Vec<String>, usage, issuer: &Issuer<'_, Key>| {
            let key = Key::generate().unwrap();
            let mut params = CertificateParams::new(sans).unwrap();
            params.distinguished_name.push(DnType::CommonName, name);
            params.extended_key_usages = vec![usage];
            let cert = params.signed_by(&key, issuer).unwrap();
            (
                write(&format!("{name}.pem"), &cert.pem()),
                write(&format!("{name}.key"), &key.serialize_pem()),
            )
        };
        let server = leaf(
            "server",
            vec!["127.0.0.1".into(), "localhost".into()],
            ExtendedKeyUsagePurpose::ServerAuth,
            &ca,
        );
        let client = leaf(
            "client",
            Vec::new(),
            ExtendedKeyUsagePurpose::ClientAuth,
            &ca,
        );
        let stranger = leaf(
            "stranger",
            Vec::new(),
            ExtendedKeyUsagePurpose::ClientAuth,
            &other,
        );
        Self {
            ca: write("ca.pem", &ca.pem()),
            server,
            client,
            stranger,
        }
    }
}
