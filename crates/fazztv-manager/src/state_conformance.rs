//! Checks every [`StateStore`] must pass, whatever keeps its state: the in-memory store runs
//! them, and so does the gateway's Redis store; a store of your own should too. Each check
//! panics, naming what went wrong, when the store misbehaves.
//!
//! Calendar windows are read at `day`, the start of a UTC day the caller picks (a shared store
//! may expire a window's keys by its own clock, so it may want one in the future). Amounts are
//! binary fractions, so sums compare exactly.

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use crate::state::{Refused, StateStore, Window};

const MINUTE: Duration = Duration::from_secs(60);

/// A reservation holds its room until settled; settling to less frees the rest, settling to
/// 0 frees it all, and the next day counts from zero.
pub async fn reservations_hold_room_until_settled_and_windows_reset(
    store: &dyn StateStore,
    day: SystemTime,
) {
    let held = store
        .reserve("k", Window::Day, day, 1.0, 0.625)
        .await
        .expect("room for 0.625 of 1");
    let Err(Refused::Full(refused)) = store.reserve("k", Window::Day, day, 1.0, 0.625).await else {
        panic!("0.625 more was let through with 0.625 of 1 held");
    };
    assert_eq!(refused.remaining, 0.375, "what is left");
    assert_eq!(
        refused.resets_at,
        Window::Day.bounds(day).1,
        "when it resets"
    );
    // Settled to less than held: the rest is free again.
    store.settle(held, 0.125);
    store.flush().await;
    assert_eq!(store.used("k", Window::Day, day).await, Ok(0.125));
    let second = store
        .reserve("k", Window::Day, day, 1.0, 0.625)
        .await
        .expect("room again once settled to less");
    store.settle(second, 0.0);
    store.flush().await;
    assert_eq!(store.used("k", Window::Day, day).await, Ok(0.125));
    let tomorrow = day + Duration::from_secs(86_400);
    assert_eq!(store.used("k", Window::Day, tomorrow).await, Ok(0.0));
    assert!(
        store
            .reserve("k", Window::Day, tomorrow, 1.0, 1.0)
            .await
            .is_ok(),
        "the next day counts from zero"
    );
}

/// A reservation settled after its window reset counts in its own window, never the new one.
pub async fn a_settlement_after_its_window_reset_does_not_touch_the_new_window(
    store: &dyn StateStore,
    day: SystemTime,
) {
    let held = store
        .reserve("s", Window::Minute, day + Duration::from_secs(10), 1.0, 0.5)
        .await
        .expect("room");
    let later = day + Duration::from_secs(70);
    let fresh = store
        .reserve("s", Window::Minute, later, 1.0, 0.25)
        .await
        .expect("room in the next minute");
    store.settle(held, 0.5);
    store.flush().await;
    assert_eq!(store.used("s", Window::Minute, later).await, Ok(0.25));
    store.settle(fresh, 0.25);
    store.flush().await;
}

/// A correction replaces what an acquisition took; a request above the whole limit goes
/// through alone rather than never.
pub async fn a_correction_replaces_the_estimate(store: &dyn StateStore) {
    let now = Instant::now();
    let taken = store
        .acquire("t", MINUTE, now, 100, 90)
        .await
        .expect("room for 90 of 100");
    assert!(
        store.acquire("t", MINUTE, now, 100, 20).await.is_err(),
        "20 more was let through with 90 of 100 taken"
    );
    store.correct(taken, 10);
    store.flush().await;
    assert!(
        store.acquire("t", MINUTE, now, 100, 20).await.is_ok(),
        "the correction to 10 freed room"
    );
    assert!(store.acquire("u", MINUTE, now, 100, 500).await.is_ok());
    assert!(store.acquire("u", MINUTE, now, 100, 1).await.is_err());
}
