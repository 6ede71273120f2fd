//! The systemd service manager protocol (`Type=notify`): `READY=1` once the listeners are bound
//! and the state is built, `STOPPING=1` when a shutdown signal arrives, `RELOADING=1` around a
//! config reload, and `WATCHDOG=1` at half the unit's `WatchdogSec=` while the runtime can still
//! run a task. Outside systemd (`NOTIFY_SOCKET` unset) every call does nothing. (Socket
//! activation is `server::inherited`.)
//!
//! A failed notification is logged, never fatal: the daemon serves either way, and systemd
//! reports the missing `READY=1` itself (start timeout).

use std::time::Duration;

use sd_notify::NotifyState;

fn notify(states: &[NotifyState<'_>]) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}

/// `READY=1`: listening and able to answer.
pub fn ready() {
    notify(&[NotifyState::Ready, NotifyState::Status("serving")]);
}

/// `STOPPING=1`: draining, about to exit.
pub fn stopping() {
    notify(&[NotifyState::Stopping]);
}

/// `RELOADING=1` with the monotonic timestamp systemd wants (`Type=notify-reload`-compatible);
/// follow with [`ready`].
pub fn reloading() {
    match sd_notify::NotifyState::monotonic_usec_now() {
        Ok(now) => notify(&[NotifyState::Reloading, now]),
        Err(_) => notify(&[NotifyState::Reloading]),
    }
}

/// With systemd's watchdog on (`WatchdogSec=` in the unit: `WATCHDOG_USEC`), pings it at half
/// its interval from the runtime that serves the requests (see [`watchdog`]). Call it on the
/// runtime; `None` when there is no watchdog to ping.
pub fn spawn_watchdog() -> Option<tokio::task::JoinHandle<()>> {
    std::env::var_os("NOTIFY_SOCKET")?;
    let interval = sd_notify::watchdog_enabled()?;
    tracing::info!(
        ?interval,
        "systemd watchdog on: pinging at half its interval"
    );
    Some(tokio::spawn(watchdog(interval / 2, || {
        notify(&[NotifyState::Watchdog])
    })))
}

/// Every `every`: spawns an empty task and pings once it ran. A runtime whose workers are all
/// stuck (a blocking call, a busy loop, a deadlock) runs neither this loop nor the task, so
/// the pings stop and systemd restarts the daemon (`Restart=on-failure`); a runtime that only
/// got slow pings late, within the interval's other half.
async fn watchdog(every: Duration, ping: impl Fn()) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let probe = tokio::spawn(async {});
        if matches!(tokio::time::timeout(every, probe).await, Ok(Ok(()))) {
            ping();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Barrier};

    #[test]
    fn the_watchdog_pings_while_the_runtime_runs_and_stops_when_it_is_stuck() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let pings = Arc::new(AtomicUsize::new(0));
        let counted = pings.clone();
        runtime.spawn(watchdog(Duration::from_millis(20), move || {
            counted.fetch_add(1, Ordering::SeqCst);
        }));
        let wait_for = |at_least: usize| {
            for _ in 0..1000 {
                if pings.load(Ordering::SeqCst) >= at_least {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            panic!("the watchdog never pinged {at_least} times");
        };
        wait_for(3);

        // Both workers stuck in a blocking call: no task runs, so no ping.
        let stuck = Arc::new(Barrier::new(3));
        let release = Arc::new(Barrier::new(3));
        for _ in 0..2 {
            let (stuck, release) = (stuck.clone(), release.clone());
            runtime.spawn(async move {
                stuck.wait();
                release.wait();
            });
        }
        stuck.wait();
        let before = pings.load(Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(
            pings.load(Ordering::SeqCst),
            before,
            "no ping while the runtime is stuck"
        );
        release.wait();
        wait_for(before + 2);
    }
}
