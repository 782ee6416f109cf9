//! A command line as it may be shown (in `--print-config`, and in a command stream's exit
//! lines and state, which every reader sees): what looks like a secret is `***`.

use super::CommandSpec;

impl CommandSpec {
    /// The command line as it may be shown (in `--print-config`, and in the stream's exit
    /// lines and state, which every reader sees), with what looks like a secret as `***`:
    /// the value of an option or `NAME=` whose name speaks of one (`--password=…`,
    /// `--token …`, `API_KEY=…`), an `Authorization:` header's value, and the password of a
    /// URL (`postgres://user:***@host`).
    pub fn redacted(&self) -> String {
        let mut shown: Vec<String> = Vec::with_capacity(self.argv.len());
        let mut secret_next = false;
        for arg in &self.argv {
            if std::mem::take(&mut secret_next) && !arg.starts_with('-') {
                shown.push(MASK.to_owned());
                continue;
            }
            if arg.starts_with("--") && !arg.contains('=') && names_secret(arg) {
                secret_next = true;
            }
            shown.push(redact_arg(arg));
        }
        shlex::try_join(shown.iter().map(String::as_str)).unwrap_or_else(|_| shown.join(" "))
    }
}

/// What a redacted secret is shown as.
const MASK: &str = "***";

/// A variable's value as it may be shown (`--print-config`): `***` when its name speaks of a
/// secret.
pub fn shown_env_value(name: &str, value: &str) -> String {
    if names_secret(name) {
        MASK.to_owned()
    } else {
        value.to_owned()
    }
}

/// Whether an option or variable name speaks of a secret.
fn names_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "pass",
        "pwd",
        "secret",
        "token",
        "auth",
        "credential",
        "private",
        "apikey",
        "api-key",
        "api_key",
    ]
    .iter()
    .any(|word| name.contains(word))
}

/// One argument with its secret part masked, if it has one.
fn redact_arg(arg: &str) -> String {
    if arg
        .get(..14)
        .is_some_and(|h| h.eq_ignore_ascii_case("authorization:"))
    {
        return format!("{} {MASK}", &arg[..14]);
    }
    if let Some((name, _)) = arg.split_once('=') {
        if !name.contains("://") && names_secret(name) {
            return format!("{name}={MASK}");
        }
    }
    let Some(i) = arg.find("://") else {
        return arg.to_owned();
    };
    // `scheme://user:password@host…`: the password goes.
    let mut url = arg.to_owned();
    let rest = &arg[i + 3..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    if let Some(at) = authority.rfind('@') {
        if let Some(colon) = authority[..at].find(':') {
            url.replace_range(i + 3 + colon + 1..i + 3 + at, MASK);
        }
    }
    // `?token=…&…`: so do the values of query parameters named like a secret.
    let Some(q) = url.find('?') else {
        return url;
    };
    let (head, query) = url.split_at(q + 1);
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if names_secret(name) => format!("{name}={MASK}"),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{head}{}", query.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_in_a_command_line_are_shown_masked() {
        let shown = |raw: &str| CommandSpec::parse(raw).expect("valid").redacted();
        assert_eq!(
            shown("j=journalctl -f -o 'short iso'"),
            "journalctl -f -o 'short iso'"
        );
        assert_eq!(
            shown("db=psql postgres://app:hunter2@db:5432/x --password=hunter2 -c 'select 1'"),
            "psql 'postgres://app:***@db:5432/x' '--password=***' -c 'select 1'"
        );
        assert_eq!(
            shown("c=curl -sN -H 'Authorization: Bearer abc' --token abc https://u@h/p?a=b"),
            "curl -sN -H 'Authorization: ***' --token '***' 'https://u@h/p?a=b'"
        );
        assert_eq!(
            shown("e=env API_KEY=abc PATH=/bin tool"),
            "env 'API_KEY=***' 'PATH=/bin' tool"
        );
        for secret in ["hunter2", "abc"] {
            for raw in [
                "x=tool --db-password hunter2 --api-token=abc",
                "x=tool https://me:hunter2@example.com/",
                "x=curl https://example.com/feed?since=1&access_token=abc",
            ] {
                assert!(!shown(raw).contains(secret), "{raw}");
            }
        }
    }
}
