//! Civil time to instants: calendar arithmetic and the `--timezone` zone.
//!
//! Stamps without an offset are read in one zone, an IANA zone from the system's tzdb or
//! UTC. A local time in a DST fold or gap is resolved with jiff's *compatible*
//! disambiguation (the earlier instant in a fold, the later in a gap). Zone lookups are the
//! only costly step, so [`Zone::to_ms`] caches the last civil minute it converted:
//! offset changes happen on minute boundaries, so a cached minute is exact (a unit test
//! compares the cache with jiff over DST transitions).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use jiff::civil::DateTime;
use jiff::tz::TimeZone;

/// Milliseconds in a day.
pub const DAY_MS: i64 = 86_400_000;

/// A civil (wall-clock) time as read from a stamp, not yet validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    /// Year (validated to 1970-9999).
    pub year: i32,
    /// Month, 1-12.
    pub month: u8,
    /// Day of the month.
    pub day: u8,
    /// Hour, 0-23.
    pub hour: u8,
    /// Minute, 0-59.
    pub minute: u8,
    /// Second, 0-59 (leap seconds are refused).
    pub second: u8,
    /// Milliseconds, 0-999 (finer digits are dropped, not rounded).
    pub milli: u16,
}

impl Civil {
    /// Whether every field is in range: year 1970-9999, a real day of the month (leap years
    /// included), an hour below 24 and no leap second.
    pub fn is_valid(&self) -> bool {
        (1970..=9999).contains(&self.year)
            && (1..=12).contains(&self.month)
            && self.day >= 1
            && self.day <= days_in_month(self.year, self.month)
            && self.hour < 24
            && self.minute < 60
            && self.second < 60
            && self.milli < 1000
    }

    /// Milliseconds since the epoch of this civil time read as UTC (no validation).
    pub fn utc_ms(&self) -> i64 {
        let days = days_from_civil(self.year, self.month, self.day);
        let secs = i64::from(self.hour) * 3600 + i64::from(self.minute) * 60;
        (days * 86_400 + secs + i64::from(self.second)) * 1000 + i64::from(self.milli)
    }

    /// The same civil time in another year.
    pub fn with_year(self, year: i32) -> Self {
        Self { year, ..self }
    }
}

/// Whether `year` is a Gregorian leap year.
pub fn is_leap(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// Days in `month` (1-12) of `year`; 0 for a month out of range.
pub fn days_in_month(year: i32, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
pub fn days_from_civil(year: i32, month: u8, day: u8) -> i64 {
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil year of an instant in UTC (for year inference).
pub fn utc_year(ms: i64) -> i32 {
    // Inverse of days_from_civil, year only.
    let z = ms.div_euclid(DAY_MS) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let y = yoe + era * 400 + i64::from(mp >= 10);
    i32::try_from(y).unwrap_or(i32::MAX)
}

/// The zone that stamps without an offset are read in. Shared by every stream's reader
/// threads, so its one-entry cache is a single atomic word.
pub struct Zone {
    tz: TimeZone,
    /// UTC needs no lookup at all.
    utc: bool,
    /// The last civil minute converted, packed by [`pack`]; [`EMPTY`] when none.
    cache: AtomicU64,
}

/// An empty cache word.
const EMPTY: u64 = u64::MAX;
/// Bias that makes an offset in seconds (within ±26 hours) a 24-bit unsigned number.
const OFFSET_BIAS: i64 = 1 << 23;

/// Packs a civil minute (minutes since 1970-01-01T00:00 civil, below 2^40 through year 9999)
/// with the UTC offset in seconds that applies to it, into one word.
fn pack(minute: i64, offset_secs: i64) -> Option<u64> {
    let minute = u64::try_from(minute).ok().filter(|&m| m < 1 << 40)?;
    let offset = u64::try_from(offset_secs + OFFSET_BIAS)
        .ok()
        .filter(|&o| o < 1 << 24)?;
    Some(minute << 24 | offset)
}

fn unpack(word: u64) -> (i64, i64) {
    ((word >> 24) as i64, (word & 0xFF_FFFF) as i64 - OFFSET_BIAS)
}

impl Clone for Zone {
    fn clone(&self) -> Self {
        Self::from_tz(self.tz.clone())
    }
}

impl fmt::Debug for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Zone").field("name", &self.name()).finish()
    }
}

/// A `--timezone` value that names no zone.
#[derive(Debug, thiserror::Error)]
#[error("unknown time zone {0:?} (use an IANA name such as Europe/Berlin, or UTC)")]
pub struct UnknownZone(pub String);

impl Zone {
    /// UTC.
    pub fn utc() -> Self {
        Self::from_tz(TimeZone::UTC)
    }

    /// The server's own zone (the system tzdb's idea of local time; UTC if it has none).
    pub fn system() -> Self {
        Self::from_tz(TimeZone::system())
    }

    /// A zone by IANA name (`Europe/Berlin`) or `UTC`.
    ///
    /// # Errors
    /// A name the system's tzdb does not know.
    pub fn named(name: &str) -> Result<Self, UnknownZone> {
        if name.eq_ignore_ascii_case("utc") || name == "Z" {
            return Ok(Self::utc());
        }
        TimeZone::get(name)
            .map(Self::from_tz)
            .map_err(|_| UnknownZone(name.to_owned()))
    }

    fn from_tz(tz: TimeZone) -> Self {
        let utc = tz == TimeZone::UTC;
        Self {
            tz,
            utc,
            cache: AtomicU64::new(EMPTY),
        }
    }

    /// The zone's name as reported by `/api/streams` (`UTC`, `Europe/Berlin`, or `local`).
    pub fn name(&self) -> &str {
        if self.utc {
            "UTC"
        } else {
            self.tz.iana_name().unwrap_or("local")
        }
    }

    /// Epoch ms of a valid civil time read in this zone.
    pub fn to_ms(&self, c: &Civil) -> Option<i64> {
        if self.utc {
            return Some(c.utc_ms());
        }
        // Every instant jiff picks for a civil time is that time minus some offset, so the
        // cache keeps the minute and its offset; a word read whole is never torn.
        let civil_minute_ms = c.utc_ms() - i64::from(c.second) * 1000 - i64::from(c.milli);
        let key = civil_minute_ms.div_euclid(60_000);
        let word = self.cache.load(Ordering::Relaxed);
        let offset_secs = match (word != EMPTY).then(|| unpack(word)) {
            Some((cached, offset)) if cached == key => offset,
            _ => {
                let offset = (civil_minute_ms - self.uncached_minute(c)?) / 1000;
                if let Some(w) = pack(key, offset) {
                    self.cache.store(w, Ordering::Relaxed);
                }
                offset
            }
        };
        Some(c.utc_ms() - offset_secs * 1000)
    }

    /// Epoch ms of the first instant of `c`'s civil minute, straight from jiff.
    fn uncached_minute(&self, c: &Civil) -> Option<i64> {
        let dt = DateTime::new(
            i16::try_from(c.year).ok()?,
            i8::try_from(c.month).ok()?,
            i8::try_from(c.day).ok()?,
            i8::try_from(c.hour).ok()?,
            i8::try_from(c.minute).ok()?,
            0,
            0,
        )
        .ok()?;
        let ts = self.tz.to_ambiguous_timestamp(dt).compatible().ok()?;
        Some(ts.as_millisecond())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn civil(year: i32, month: u8, day: u8, hour: u8, minute: u8, second: u8) -> Civil {
        Civil {
            year,
            month,
            day,
            hour,
            minute,
            second,
            milli: 0,
        }
    }

    #[test]
    fn calendar_arithmetic_matches_known_instants() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(civil(2026, 12, 1, 21, 14, 39).utc_ms(), 1_796_159_679_000);
        assert_eq!(utc_year(1_796_159_679_000), 2026);
        assert_eq!(utc_year(civil(2024, 12, 31, 23, 59, 59).utc_ms()), 2024);
        assert_eq!(utc_year(civil(2025, 1, 1, 0, 0, 0).utc_ms()), 2025);
        assert!(civil(2024, 2, 29, 0, 0, 0).is_valid());
        assert!(!civil(2026, 2, 29, 0, 0, 0).is_valid());
        assert!(!civil(2026, 13, 45, 0, 0, 0).is_valid());
        assert!(!civil(2026, 1, 1, 24, 0, 0).is_valid());
    }

    #[test]
    fn dst_fold_and_gap_take_the_compatible_instant() {
        let berlin = Zone::named("Europe/Berlin").expect("tzdb has Berlin");
        // 2026-10-25 02:30 happens twice (fold): the earlier, CEST (+02:00), is taken.
        let fold = berlin.to_ms(&civil(2026, 10, 25, 2, 30, 0));
        assert_eq!(fold, Some(civil(2026, 10, 25, 0, 30, 0).utc_ms()));
        // 2026-03-29 02:30 does not exist (gap): the later reading, 03:30 CEST, is taken.
        let gap = berlin.to_ms(&civil(2026, 3, 29, 2, 30, 0));
        assert_eq!(gap, Some(civil(2026, 3, 29, 1, 30, 0).utc_ms()));
        assert!(Zone::named("Mars/Olympus").is_err());
        assert_eq!(Zone::named("utc").expect("utc").name(), "UTC");
    }

    #[test]
    fn minute_cache_equals_uncached() {
        let zone = Zone::named("America/New_York").expect("tzdb has New York");
        // Walk two days around a DST change minute by minute, seconds varying.
        let mut c = civil(2026, 3, 7, 0, 0, 0);
        for i in 0..(48 * 60) {
            c.day = 7 + (i / (24 * 60)) as u8;
            c.hour = ((i / 60) % 24) as u8;
            c.minute = (i % 60) as u8;
            for second in [0, 31, 59] {
                c.second = second;
                let fresh = Zone::named("America/New_York").expect("zone");
                assert_eq!(zone.to_ms(&c), fresh.to_ms(&c), "{c:?}");
            }
        }
    }
}
