//! The clock port: where the product learns the time and waits for it to pass.
//!
//! Everything that stamps, expires or schedules reads [`Clock::now`]; the scheduler waits
//! with [`Clock::sleep_until`]. The system clock serves production; a [`FakeClock`] lets
//! tests move through months in milliseconds, and the workers waiting on it wake when it
//! is moved past what they wait for.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

/// The time, and waiting for a later one.
#[async_trait::async_trait]
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;

    /// Returns once [`Self::now`] has reached `instant`.
    async fn sleep_until(&self, instant: DateTime<Utc>);
}

/// The machine's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

#[async_trait::async_trait]
impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    async fn sleep_until(&self, instant: DateTime<Utc>) {
        // A jump of the wall clock (NTP, suspend) is caught by the callers' periodic
        // re-check: nobody sleeps on it for long.
        if let Ok(wait) = (instant - Utc::now()).to_std() {
            tokio::time::sleep(wait).await;
        }
    }
}

/// A clock that stands still until told to move; shared by cloning.
#[derive(Debug, Clone)]
pub struct FakeClock {
    time: Arc<watch::Sender<DateTime<Utc>>>,
}

impl FakeClock {
    /// A clock showing `start`.
    #[must_use]
    pub fn at(start: DateTime<Utc>) -> Self {
        Self {
            time: Arc::new(watch::Sender::new(start)),
        }
    }

    /// Moves the clock to `instant` (never backwards) and wakes whoever waits for it.
    pub fn set(&self, instant: DateTime<Utc>) {
        self.time.send_if_modified(|now| {
            let later = instant > *now;
            if later {
                *now = instant;
            }
            later
        });
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: chrono::Duration) {
        self.set(self.now() + by);
    }
}

#[async_trait::async_trait]
impl Clock for FakeClock {
    fn now(&self) -> DateTime<Utc> {
        *self.time.borrow()
    }

    async fn sleep_until(&self, instant: DateTime<Utc>) {
        let mut time = self.time.subscribe();
        // The sender lives as long as this clock does, so this only ends at `instant`.
        let _ = time.wait_for(|now| *now >= instant).await;
    }
}

/// A shared clock, as settings and state carry it: the system clock unless a test says
/// otherwise.
#[derive(Debug, Clone)]
pub struct SharedClock(pub Arc<dyn Clock>);

impl Default for SharedClock {
    fn default() -> Self {
        Self(Arc::new(SystemClock))
    }
}

impl SharedClock {
    /// The current instant.
    #[must_use]
    pub fn now(&self) -> DateTime<Utc> {
        self.0.now()
    }

    /// Returns once the clock has reached `instant`.
    pub async fn sleep_until(&self, instant: DateTime<Utc>) {
        self.0.sleep_until(instant).await;
    }
}

impl From<FakeClock> for SharedClock {
    fn from(clock: FakeClock) -> Self {
        Self(Arc::new(clock))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::TimeZone;

    use super::*;

    #[tokio::test]
    async fn a_fake_clock_wakes_its_sleepers_only_once_moved_past_their_instant() {
        let start = Utc.with_ymd_and_hms(2027, 1, 1, 9, 0, 0).unwrap();
        let clock = FakeClock::at(start);
        let wake_at = start + chrono::Duration::days(3);
        let sleeper = tokio::spawn({
            let clock = clock.clone();
            async move { clock.sleep_until(wake_at).await }
        });
        clock.advance(chrono::Duration::days(2));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!sleeper.is_finished(), "woken two days early");
        clock.set(start);
        assert_eq!(
            clock.now(),
            start + chrono::Duration::days(2),
            "never backwards"
        );
        clock.advance(chrono::Duration::days(1));
        tokio::time::timeout(Duration::from_secs(5), sleeper)
            .await
            .expect("woken at its instant")
            .expect("no panic");
    }
}
