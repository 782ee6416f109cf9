//! Secrets and the primitives every credential check is built from: the [`Secret`] type that
//! `Debug` never prints, token generation, the argon2 hash-string check, and digest comparison
//! in constant time.
//!
//! This is a leaf: `config` uses it to validate the token and users files, `http::auth` to check
//! requests. It knows nothing of HTTP, flags or files. Secrets are compared by comparing SHA-256
//! digests of both sides with a fold that does not stop at the first difference, so neither the
//! content nor the length of a guess leaks through timing.

use argon2::password_hash::{PasswordHash, PasswordVerifier};
use ring::digest::SHA256;
use ring::rand::{SecureRandom, SystemRandom};

/// A secret that `Debug` does not print.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// A SHA-256 digest.
pub type Digest = [u8; 32];

/// Fills `bytes` from the system's CSPRNG.
///
/// # Panics
/// When the operating system has no random source at all (cometail cannot run safely then).
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system random source works");
    bytes
}

/// A random token: 32 bytes from the system's CSPRNG, hex-encoded.
///
/// # Panics
/// When the operating system has no random source at all (cometail cannot run safely then).
pub fn generate_token() -> String {
    hex(&random_bytes::<32>())
}

/// Checks that `phc` is an argon2 PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`).
///
/// # Errors
/// What is wrong with it, without repeating it.
pub fn check_hash(phc: &str) -> Result<(), String> {
    let hash = PasswordHash::new(phc).map_err(|e| format!("not a PHC hash string ({e})"))?;
    if !matches!(hash.algorithm.as_str(), "argon2id" | "argon2i" | "argon2d") {
        return Err("only argon2 hashes are supported".into());
    }
    argon2::Params::try_from(&hash).map_err(|e| format!("bad argon2 parameters ({e})"))?;
    if hash.hash.is_none() {
        return Err("the hash string has no hash".into());
    }
    Ok(())
}

/// Whether `password` matches the PHC hash string `phc`. Slow on purpose (argon2): call it on
/// a blocking thread.
pub fn verify_password(phc: &str, password: &[u8]) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| {
        argon2::Argon2::default()
            .verify_password(password, &h)
            .is_ok()
    })
}

/// A hash string with `phc`'s algorithm and parameters but another salt: verifying against it
/// costs as much as verifying against `phc`, and nothing matches it.
pub fn decoy_of(phc: &str) -> Option<String> {
    let parsed = PasswordHash::new(phc).ok()?;
    Some(phc.replace(parsed.salt?.as_str(), "ZGVjb3lkZWNveWRlY295ZGVjb3k"))
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of the concatenation of `parts`.
pub fn sha256(parts: &[&[u8]]) -> Digest {
    let mut ctx = ring::digest::Context::new(&SHA256);
    for p in parts {
        ctx.update(p);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// Whether two digests are equal, in time that does not depend on where they differ.
pub fn digest_eq(a: &Digest, b: &Digest) -> bool {
    let diff = a
        .iter()
        .zip(b)
        .fold(0u8, |acc, (x, y)| std::hint::black_box(acc | (x ^ y)));
    diff == 0
}

/// Whether `presented` equals `expected` (given as its digest), in constant time.
pub fn secret_eq(presented: &[u8], expected: &Digest) -> bool {
    digest_eq(&sha256(&[presented]), expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_compare_equal_only_when_equal() {
        let t = sha256(&[b"secret-token-0123"]);
        assert!(secret_eq(b"secret-token-0123", &t));
        assert!(!secret_eq(b"secret-token-0124", &t));
        assert!(!secret_eq(b"", &t));
    }

    #[test]
    fn generated_tokens_are_long_and_differ() {
        let (a, b) = (generate_token(), generate_token());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
    }

    #[test]
    fn only_argon2_hash_strings_pass() {
        assert!(check_hash("plain").is_err());
        assert!(check_hash("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ").is_err());
        assert!(
            check_hash("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$YWJjZGVmZ2hpamtsbW5vcA").is_ok()
        );
    }
}
