//! cometail's own log: the `tracing` subscriber the binary installs, and the one escaping rule
//! for untrusted text (request targets, file names, header values) that goes into it.
//!
//! A leaf: every layer may log through it; it imports nothing of the crate.

/// Escapes control characters (and backslashes) so that text from a request or a file name
/// cannot forge or garble lines of cometail's own log.
pub fn escape_for_log(s: &str) -> String {
    s.chars().flat_map(char::escape_default).collect()
}

/// Installs the process's subscriber: to standard error, colours only on a terminal, the
/// filter from `RUST_LOG` or `cometail=info`. Call once, from the binary (tests run the server
/// in-process and keep their own).
pub fn init() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("cometail=info")),
        )
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_cannot_start_a_new_log_line() {
        assert_eq!(
            escape_for_log("a\nb\r\x1b[31m\\"),
            "a\\nb\\r\\u{1b}[31m\\\\"
        );
    }
}
