//! The failure throttle: failed authentication attempts counted per key, the client address
//! ([`address`]: IPv6 by /64, one host usually has a whole /64) or a Basic user name.
//!
//! The first [`FREE_FAILURES`] − 1 failures cost nothing; then each failure blocks the key for
//! 1 s, 2 s, 4 s, … up to [`MAX_BLOCK`]. A block slows failures, never the right credential:
//! the authentication layer decides what a block means (see `auth.rs`). The table is bounded
//! ([`MAX_TRACKED`]), forgets a key [`FORGET_AFTER`] after its last failure, and lives only in
//! memory.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// Failed attempts an address may make before it is slowed down.
pub(crate) const FREE_FAILURES: u32 = 5;
/// Longest an address is made to wait after repeated failures.
pub(crate) const MAX_BLOCK: Duration = Duration::from_secs(60);
/// An address's failures are forgotten after this long without one.
const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);
/// Most addresses whose failures are remembered (bounds the table an attacker can grow).
const MAX_TRACKED: usize = 65_536;

/// Failed attempts per key.
#[derive(Debug)]
pub(crate) struct Throttle<K> {
    table: Mutex<HashMap<K, Failures>>,
}

impl<K> Default for Throttle<K> {
    fn default() -> Self {
        Self {
            table: Mutex::new(HashMap::new()),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
    blocked_until: Option<Instant>,
}

/// The address failures are counted under: IPv4 as is (also when IPv4-mapped), IPv6 by /64.
pub(crate) fn address(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

impl<K: Eq + Hash> Throttle<K> {
    fn table(&self) -> MutexGuard<'_, HashMap<K, Failures>> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How long `key` must still wait, if it is blocked.
    pub(crate) fn blocked(&self, key: &K) -> Option<Duration> {
        let now = Instant::now();
        let until = self.table().get(key)?.blocked_until?;
        (until > now).then(|| until - now)
    }

    /// Records a failure; returns the wait it earned, if any.
    pub(crate) fn fail(&self, key: K) -> Option<Duration> {
        let now = Instant::now();
        let mut table = self.table();
        if table.len() >= MAX_TRACKED && !table.contains_key(&key) {
            table.retain(|_, f| now.duration_since(f.last) < FORGET_AFTER);
            if table.len() >= MAX_TRACKED {
                // Forgetting some addresses beats growing without bound.
                table.retain(|_, f| f.blocked_until.is_some_and(|u| u > now));
                if table.len() >= MAX_TRACKED {
                    table.clear();
                }
            }
        }
        let f = table.entry(key).or_insert(Failures {
            count: 0,
            last: now,
            blocked_until: None,
        });
        if now.duration_since(f.last) >= FORGET_AFTER {
            f.count = 0;
        }
        f.count = f.count.saturating_add(1);
        f.last = now;
        if f.count < FREE_FAILURES {
            return None;
        }
        // 1 s after the fifth failure, doubling with each further one, up to MAX_BLOCK.
        let exp = (f.count - FREE_FAILURES).min(16);
        let wait = Duration::from_secs(1u64 << exp).min(MAX_BLOCK);
        f.blocked_until = Some(now + wait);
        Some(wait)
    }

    /// Forgets `key`'s failures (it authenticated).
    pub(crate) fn succeed(&self, key: &K) {
        self.table().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_free_then_slowed_down() {
        let t = Throttle::default();
        let ip = IpAddr::from([10, 0, 0, 1]);
        for _ in 1..FREE_FAILURES {
            assert_eq!(t.fail(ip), None);
        }
        assert_eq!(t.fail(ip), Some(Duration::from_secs(1)));
        assert!(t.blocked(&ip).is_some());
        assert_eq!(t.fail(ip), Some(Duration::from_secs(2)));
        assert!(t.blocked(&IpAddr::from([10, 0, 0, 2])).is_none());
        t.succeed(&ip);
        assert!(t.blocked(&ip).is_none());
        let v6a: IpAddr = "2001:db8::1".parse().expect("valid");
        let v6b: IpAddr = "2001:db8::2".parse().expect("valid");
        assert_eq!(address(v6a), address(v6b), "one /64 is one address");
    }
}
