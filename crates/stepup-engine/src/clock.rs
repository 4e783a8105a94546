//! The engine's default clock: one process-wide `CoarseClock`, refreshed by one thread.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use stepup_core::{CoarseClock, SharedClock, SystemClock};

/// How often the coarse clock is brought up to the system time. Expiry has one-second resolution; a fifth of a
/// second of lag is invisible to it.
const REFRESH_EVERY: Duration = Duration::from_millis(200);

/// The clock engines use unless the builder is given one.
///
/// Why coarse: the middleware reads the token cell on every elevated request, and the cell reads the clock on
/// every read; the system clock costs 30–50 ns on virtual machines, an atomic load one. Why one per process: ten
/// thousand engines need not run ten thousand timers. Why a thread and not a task: engines live on many runtimes
/// (each `#[tokio::test]` starts its own), and the clock must outlive all of them. If the thread cannot start,
/// engines read the system clock instead.
pub(crate) fn default_clock() -> SharedClock {
    static COARSE: OnceLock<Option<CoarseClock>> = OnceLock::new();
    let coarse = COARSE.get_or_init(|| {
        let clock = CoarseClock::new();
        let ticking = clock.clone();
        let started = std::thread::Builder::new().name("stepup-clock".to_owned()).spawn(move || {
            loop {
                std::thread::sleep(REFRESH_EVERY);
                ticking.refresh();
            }
        });
        started.is_ok().then_some(clock)
    });
    match coarse {
        Some(clock) => Arc::new(clock.clone()),
        None => Arc::new(SystemClock),
    }
}

#[cfg(test)]
mod tests {
    use stepup_core::Clock;

    use super::*;

    #[test]
    fn the_default_clock_keeps_up_with_the_system_clock() {
        let clock = default_clock();
        std::thread::sleep(REFRESH_EVERY * 2);
        let (coarse, system) = (clock.now().0, SystemClock.now().0);
        assert!(system.saturating_sub(coarse) <= 1, "coarse {coarse} lags system {system}");
    }
}
