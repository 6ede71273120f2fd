//! The revocation feed over Redis publish/subscribe: what lets `/auth` answer a session it has
//! seen from memory yet honour a logout made by any instance within a second.
//!
//! One dedicated connection is `SUBSCRIBE`d to `{scope}:revocations`; every message is a session
//! id, handed to the sink as [`FeedEvent::Revoked`]. The same connection is `PING`ed every
//! [`HEARTBEAT`]; each answer proves the subscription is alive and becomes
//! [`FeedEvent::Healthy`], which extends the trust given to cached sessions by the outage grace.
//! When the connection breaks or a ping goes unanswered, the feed warns, reconnects with a
//! backoff capped at [`MAX_BACKOFF`], and after re-subscribing sends [`FeedEvent::Lost`] before
//! the next `Healthy`: revocations published meanwhile were missed, so every cached
//! verification must be forgotten.

use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::PubSub;

use super::backend::Backend;
use crate::store::{FeedEvent, RevocationSink};

/// How often the subscription is pinged (and `Healthy` sent): under the 500 ms promised, with
/// room for the round trip.
const HEARTBEAT: Duration = Duration::from_millis(400);
/// A ping not answered within this is a dead subscription.
const PING_TIMEOUT: Duration = Duration::from_secs(1);
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Runs forever: subscribe, relay, and resubscribe after every interruption.
pub(super) async fn follow(backend: &Backend, channel: &str, sink: RevocationSink) {
    let mut backoff = FIRST_BACKOFF;
    // Whether the last attempt failed, so one outage logs one warning, not one per retry.
    let mut failing = false;
    loop {
        match subscribe(backend, channel).await {
            Ok((pubsub, addr)) => {
                if failing {
                    tracing::info!(redis = %addr, "revocation feed reconnected");
                } else {
                    tracing::debug!(redis = %addr, "revocation feed subscribed");
                }
                failing = false;
                backoff = FIRST_BACKOFF;
                // Sent after every (re)subscription, the first included: entries verified
                // before the subscription existed may have missed a revocation.
                sink(FeedEvent::Lost);
                let why = relay(pubsub, &sink).await;
                tracing::warn!(redis = %addr, reason = %why, "revocation feed interrupted; reconnecting");
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(error = %e, "revocation feed cannot subscribe; retrying");
                }
                failing = true;
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

async fn subscribe(
    backend: &Backend,
    channel: &str,
) -> Result<(PubSub, String), crate::store::StoreError> {
    let (mut pubsub, addr) = backend.pubsub().await?;
    match tokio::time::timeout(PING_TIMEOUT, pubsub.subscribe(channel)).await {
        Ok(Ok(())) => Ok((pubsub, addr)),
        Ok(Err(e)) => Err(super::unavailable(format!("{addr}: SUBSCRIBE: {e}"))),
        Err(_) => Err(super::unavailable(format!(
            "{addr}: SUBSCRIBE not confirmed"
        ))),
    }
}

/// Relays messages and heartbeats until the subscription fails; returns why.
async fn relay(pubsub: PubSub, sink: &RevocationSink) -> String {
    let (mut control, mut messages) = pubsub.split();
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            msg = messages.next() => match msg {
                Some(msg) => match msg.get_payload::<String>() {
                    Ok(sid) => sink(FeedEvent::Revoked(sid)),
                    Err(e) => tracing::warn!(error = %e, "unreadable revocation message ignored"),
                },
                None => return "connection closed".into(),
            },
            _ = heartbeat.tick() => {
                match tokio::time::timeout(PING_TIMEOUT, control.ping::<redis::Value>()).await {
                    Ok(Ok(_)) => sink(FeedEvent::Healthy),
                    Ok(Err(e)) => return format!("ping failed: {e}"),
                    Err(_) => return "ping unanswered".into(),
                }
            }
        }
    }
}
