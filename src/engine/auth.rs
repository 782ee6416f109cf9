//! How the engine connection logs in and what it trusts: a token, a user and password, a
//! `.creds` file (a user JWT and its nkey seed: NATS's decentralized auth), a bare user nkey
//! seed, the CA certificates of the engine's TLS, and a client certificate and key for mutual
//! TLS.
//!
//! Secrets come from files or the environment, never argv (`roles` finds them). Every file is
//! read and checked here, before the first connect, exactly as the NATS client will use it: a
//! missing, unreadable or malformed file is a startup error naming the file (exit 2), never a
//! connection that retries forever. Certificate files are loaded again by the client on each
//! connect, so a renewed certificate is picked up on the next reconnect.

use std::path::{Path, PathBuf};

use crate::credentials::Secret;

/// How to log in to the engine and what to trust; at most one way to log in.
#[derive(Debug, Clone, Default)]
pub struct EngineAuth {
    /// A token.
    pub token: Option<Secret>,
    /// A user name and password.
    pub user: Option<(String, Secret)>,
    /// A `.creds` file's text (checked by [`read_creds`]).
    pub creds: Option<Secret>,
    /// A user nkey seed (checked by [`read_nkey`]).
    pub nkey: Option<Secret>,
    /// CA certificates (PEM) to trust for the engine; makes TLS required.
    pub ca: Option<PathBuf>,
    /// A client certificate chain and its private key (PEM) for mutual TLS; makes TLS
    /// required.
    pub client_cert: Option<(PathBuf, PathBuf)>,
}

impl EngineAuth {
    /// `connect` with these credentials and TLS files.
    ///
    /// # Errors
    /// A `.creds` text the client cannot parse (it was checked when read, so only one that
    /// changed meanwhile).
    pub(super) fn apply(
        &self,
        mut connect: async_nats::ConnectOptions,
    ) -> Result<async_nats::ConnectOptions, String> {
        if let Some(token) = &self.token {
            connect = connect.token(token.0.clone());
        }
        if let Some((user, password)) = &self.user {
            connect = connect.user_and_password(user.clone(), password.0.clone());
        }
        if let Some(creds) = &self.creds {
            connect = connect.credentials(&creds.0).map_err(|e| e.to_string())?;
        }
        if let Some(seed) = &self.nkey {
            connect = connect.nkey(seed.0.clone());
        }
        if let Some(ca) = &self.ca {
            connect = connect.add_root_certificates(ca.clone()).require_tls(true);
        }
        if let Some((cert, key)) = &self.client_cert {
            connect = connect
                .add_client_certificate(cert.clone(), key.clone())
                .require_tls(true);
        }
        Ok(connect)
    }
}

/// Reads a NATS `.creds` file (the user JWT and nkey seed blocks `nsc` writes) and checks it as
/// the client will parse it.
///
/// # Errors
/// A file that cannot be read, or that is not a credentials file; the reason names the file
/// and never quotes it.
pub fn read_creds(path: &Path) -> Result<Secret, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    async_nats::ConnectOptions::new()
        .credentials(&text)
        .map_err(|e| format!("{} is not a NATS credentials file: {e}", path.display()))?;
    Ok(Secret(text))
}

/// Reads a user nkey seed (`SU…`) from the first line of a file and checks it.
///
/// # Errors
/// A file that cannot be read, or whose first line is not a user seed; the reason names the
/// file and never quotes it.
pub fn read_nkey(path: &Path) -> Result<Secret, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let seed = text.lines().next().unwrap_or("").trim().to_owned();
    nkeys::KeyPair::from_seed(&seed)
        .map_err(|e| format!("{} does not hold an nkey seed: {e}", path.display()))?;
    if !seed.starts_with("SU") {
        return Err(format!(
            "{} holds the seed of an operator, account or server key: a client logs in with a \
             user seed (`SU…`)",
            path.display()
        ));
    }
    Ok(Secret(seed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_and_creds_are_checked_and_never_quoted() {
        let dir = tempfile::tempdir().unwrap();
        let user = nkeys::KeyPair::new_user();
        let seed = user.seed().unwrap();
        let good = dir.path().join("user.nk");
        std::fs::write(&good, format!("{seed}\n")).unwrap();
        assert_eq!(read_nkey(&good).unwrap().0, seed);

        let account = dir.path().join("account.nk");
        std::fs::write(&account, nkeys::KeyPair::new_account().seed().unwrap()).unwrap();
        let err = read_nkey(&account).unwrap_err();
        assert!(
            err.contains("account.nk") && err.contains("user seed"),
            "{err}"
        );

        let broken = dir.path().join("broken.nk");
        // One data character changed (the last one also holds padding bits, and the same
        // character could come back): the checksum no longer fits.
        let swap = if &seed[20..21] == "A" { "B" } else { "A" };
        let mangled = format!("{}{swap}{}", &seed[..20], &seed[21..]);
        std::fs::write(&broken, &mangled).unwrap();
        let err = read_nkey(&broken).unwrap_err();
        assert!(
            err.contains("broken.nk") && !err.contains(&mangled),
            "{err}"
        );

        let creds = dir.path().join("agent.creds");
        std::fs::write(&creds, format!("-----BEGIN USER NKEY SEED-----\n{seed}\n")).unwrap();
        let err = read_creds(&creds).unwrap_err();
        assert!(
            err.contains("agent.creds") && err.contains("not a NATS credentials file"),
            "{err}"
        );
        assert!(!err.contains(&seed), "{err}");

        let err = read_creds(&dir.path().join("missing.creds")).unwrap_err();
        assert!(
            err.contains("cannot read") && err.contains("missing.creds"),
            "{err}"
        );
    }
}
