//! Time as the flow sees it: whole Unix seconds (JWT `exp` resolution) from a replaceable clock.
//!
//! The flow machine and the token cell never read the system clock directly, so tests move time by hand and
//! never sleep.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A point in time, in whole seconds since the Unix epoch. A plain number on the wire.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct UnixTime(pub u64);

impl UnixTime {
    /// Seconds since the Unix epoch.
    #[must_use]
    pub fn as_secs(self) -> u64 {
        self.0
    }

    /// This time plus `secs` seconds (saturating).
    #[must_use]
    pub fn plus_secs(self, secs: u64) -> UnixTime {
        UnixTime(self.0.saturating_add(secs))
    }

    /// How long from `self` until `later`; zero if `later` is not after `self`.
    #[must_use]
    pub fn until(self, later: UnixTime) -> Duration {
        Duration::from_secs(later.0.saturating_sub(self.0))
    }
}

/// Why a text is not an RFC 3339 date-time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not an RFC 3339 date-time (YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)) at or after 1970")]
pub struct Rfc3339Error;

// Howard Hinnant's civil calendar algorithms: dates without a date crate.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

impl UnixTime {
    /// The time as RFC 3339 in UTC, whole seconds: `2026-11-28T01:02:03Z`.
    #[must_use]
    pub fn to_rfc3339(self) -> String {
        let secs = i64::try_from(self.0).unwrap_or(i64::MAX);
        let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
        let rem = secs.rem_euclid(86_400);
        format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
    }

    /// Parses an RFC 3339 date-time (fractions of a second are dropped; the offset is applied).
    ///
    /// # Errors
    /// [`Rfc3339Error`] for anything else, or a time before 1970.
    pub fn parse_rfc3339(text: &str) -> Result<UnixTime, Rfc3339Error> {
        let bytes = text.as_bytes();
        let num = |range: std::ops::Range<usize>| -> Result<i64, Rfc3339Error> {
            let part = text.get(range).ok_or(Rfc3339Error)?;
            if part.bytes().all(|b| b.is_ascii_digit()) {
                part.parse().map_err(|_| Rfc3339Error)
            } else {
                Err(Rfc3339Error)
            }
        };
        if bytes.len() < 20
            || bytes[4] != b'-'
            || bytes[7] != b'-'
            || !matches!(bytes[10], b'T' | b't' | b' ')
            || bytes[13] != b':'
            || bytes[16] != b':'
        {
            return Err(Rfc3339Error);
        }
        let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
        let month_days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
        let max_day =
            usize::try_from(month - 1).ok().and_then(|m| month_days.get(m)).copied().ok_or(Rfc3339Error)?;
        if !(1..=max_day).contains(&day) || hour > 23 || minute > 59 || second > 60 {
            return Err(Rfc3339Error);
        }
        let mut rest = &text[19..];
        if let Some(fraction) = rest.strip_prefix('.') {
            let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(Rfc3339Error);
            }
            rest = &fraction[digits..];
        }
        let offset = match rest {
            "Z" | "z" => 0,
            _ => {
                let sign = match rest.as_bytes().first() {
                    Some(b'+') => 1,
                    Some(b'-') => -1,
                    _ => return Err(Rfc3339Error),
                };
                let rest_bytes = rest.as_bytes();
                if rest.len() != 6 || rest_bytes[3] != b':' {
                    return Err(Rfc3339Error);
                }
                let hours: i64 = rest[1..3].parse().map_err(|_| Rfc3339Error)?;
                let minutes: i64 = rest[4..6].parse().map_err(|_| Rfc3339Error)?;
                if hours > 23 || minutes > 59 {
                    return Err(Rfc3339Error);
                }
                sign * (hours * 3600 + minutes * 60)
            }
        };
        let secs =
            days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second.min(59) - offset;
        u64::try_from(secs).map(UnixTime).map_err(|_| Rfc3339Error)
    }
}

impl fmt::Display for UnixTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A source of the current time.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time.
    fn now(&self) -> UnixTime;
}

/// A shared clock handle.
pub type SharedClock = Arc<dyn Clock>;

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixTime {
        // A clock set before 1970 reads as the epoch: every token then looks valid for longer, never shorter,
        // and the server still checks expiry itself.
        UnixTime(SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()))
    }
}

/// A wall clock read from memory: its owner calls [`refresh`](Self::refresh) on a timer (the engine does, a few
/// times a second), and [`now`](Clock::now) is one atomic load.
///
/// Why: `TokenCell::get` runs on every scoped request and must cost a few nanoseconds, while reading the system
/// clock costs 30–50 ns on virtual machines. Expiry has one-second resolution, so a clock that lags by a fraction
/// of a second is as good. If it lags more (its owner stopped refreshing), a token may be attached after its
/// expiry; the server refuses it with a step-up challenge, so this costs a retry, never access.
#[derive(Debug, Clone)]
pub struct CoarseClock(Arc<AtomicU64>);

impl Default for CoarseClock {
    fn default() -> Self {
        Self::new()
    }
}

impl CoarseClock {
    /// A coarse clock showing the system time now.
    #[must_use]
    pub fn new() -> Self {
        Self(Arc::new(AtomicU64::new(SystemClock.now().0)))
    }

    /// Reads the system clock into this clock (never moves it backwards).
    pub fn refresh(&self) {
        self.0.fetch_max(SystemClock.now().0, Ordering::Relaxed);
    }
}

impl Clock for CoarseClock {
    fn now(&self) -> UnixTime {
        UnixTime(self.0.load(Ordering::Relaxed))
    }
}

/// A clock that moves only when told to; clones share the same time. For tests and simulations.
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock showing `start`.
    #[must_use]
    pub fn new(start: UnixTime) -> Self {
        Self(Arc::new(AtomicU64::new(start.0)))
    }

    /// Moves the clock forward by `secs` seconds.
    pub fn advance(&self, secs: u64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }

    /// Sets the clock to `time`.
    pub fn set(&self, time: UnixTime) {
        self.0.store(time.0, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> UnixTime {
        UnixTime(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_clones_share_time() {
        let clock = ManualClock::new(UnixTime(100));
        let other = clock.clone();
        clock.advance(5);
        assert_eq!(other.now(), UnixTime(105));
        other.set(UnixTime(7));
        assert_eq!(clock.now(), UnixTime(7));
    }

    #[test]
    fn system_clock_is_after_2024() {
        assert!(SystemClock.now() > UnixTime(1_700_000_000));
    }

    #[test]
    fn coarse_clock_follows_the_system_clock_on_refresh() {
        let clock = CoarseClock::new();
        let shared = clock.clone();
        let start = clock.now();
        assert!(start > UnixTime(1_700_000_000));
        clock.refresh();
        assert!(shared.now() >= start);
    }

    #[test]
    fn rfc3339_round_trips_and_applies_offsets() {
        for (secs, text) in [
            (0, "1970-01-01T00:00:00Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (1_700_000_000, "2023-11-14T22:13:20Z"),
            (4_102_444_800, "2100-01-01T00:00:00Z"),
        ] {
            assert_eq!(UnixTime(secs).to_rfc3339(), text);
            assert_eq!(UnixTime::parse_rfc3339(text), Ok(UnixTime(secs)));
        }
        assert_eq!(UnixTime::parse_rfc3339("2023-11-14T23:13:20.123+01:00"), Ok(UnixTime(1_700_000_000)));
        assert_eq!(UnixTime::parse_rfc3339("2023-11-14T17:13:20-05:00"), Ok(UnixTime(1_700_000_000)));
        assert_eq!(UnixTime::parse_rfc3339("2023-11-14t22:13:20z"), Ok(UnixTime(1_700_000_000)));
    }

    #[test]
    fn rfc3339_refuses_malformed_text() {
        for bad in [
            "",
            "2023-11-14",
            "2023-11-14T22:13:20",
            "2023-13-14T22:13:20Z",
            "2023-02-29T22:13:20Z",
            "2023-11-14T24:13:20Z",
            "2023-11-14T22:13:20.Z",
            "2023-11-14T22:13:20+0100",
            "1969-12-31T23:59:59Z",
            "2023-1x-14T22:13:20Z",
            "２０２３-11-14T22:13:20Z",
        ] {
            assert_eq!(UnixTime::parse_rfc3339(bad), Err(Rfc3339Error), "{bad}");
        }
    }

    #[test]
    fn until_saturates() {
        assert_eq!(UnixTime(10).until(UnixTime(15)), Duration::from_secs(5));
        assert_eq!(UnixTime(15).until(UnixTime(10)), Duration::ZERO);
    }
}
