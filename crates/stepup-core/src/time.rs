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
    fn until_saturates() {
        assert_eq!(UnixTime(10).until(UnixTime(15)), Duration::from_secs(5));
        assert_eq!(UnixTime(15).until(UnixTime(10)), Duration::ZERO);
    }
}
