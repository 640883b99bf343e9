//! Time, injectable: the real clock in production, a manual one in tests and the demo.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;

/// Where "now" comes from. Cloning shares the same clock.
#[derive(Clone, Debug)]
pub enum Clock {
    System,
    Manual(Arc<ManualClock>),
}

/// A clock that moves only when told to.
#[derive(Debug)]
pub struct ManualClock {
    now_ms: AtomicI64,
    moved: Notify,
}

impl Clock {
    /// A manual clock starting at `start`.
    pub fn manual(start: DateTime<Utc>) -> Clock {
        Clock::Manual(Arc::new(ManualClock {
            now_ms: AtomicI64::new(start.timestamp_millis()),
            moved: Notify::new(),
        }))
    }

    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Clock::System => Utc::now(),
            Clock::Manual(m) => {
                DateTime::from_timestamp_millis(m.now_ms.load(Ordering::SeqCst)).unwrap_or_default()
            }
        }
    }

    /// Moves a manual clock forward and wakes whoever waits on it. No effect on the system clock.
    pub fn advance(&self, by: std::time::Duration) {
        if let Clock::Manual(m) = self {
            m.now_ms.fetch_add(by.as_millis() as i64, Ordering::SeqCst);
            m.moved.notify_waiters();
        }
    }

    /// Resolves when a manual clock is moved; never for the system clock.
    pub async fn moved(&self) {
        match self {
            Clock::System => std::future::pending().await,
            Clock::Manual(m) => m.moved.notified().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let start = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let clock = Clock::manual(start);
        assert_eq!(clock.now(), start);
        clock.advance(Duration::from_secs(900));
        assert_eq!(clock.now(), start + chrono::Duration::minutes(15));
        let shared = clock.clone();
        shared.advance(Duration::from_secs(60));
        assert_eq!(clock.now(), start + chrono::Duration::minutes(16));
    }
}
