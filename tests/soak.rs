//! The soak: idgate behind Nginx on Redis and MongoDB, under a steady open-loop load at about
//! half of its measured peak, with the rest of a day's traffic mixed in — logins through the
//! IdP, silent renewals (a 5 s access token), logouts, and group changes in the users collection
//! that the next renewal must carry — for `SOAK_SECONDS` (default 40: the short version that
//! `scripts/test` runs, at 200 requests a second; `scripts/soak MINUTES` runs it long, on a
//! release build, at half the peak; `SOAK_RATE` sets the rate).
//!
//! Prints, per interval, requests, errors, p50/p99, RSS and open descriptors, then the whole
//! run's figures. Fails on any error (a request of a logged-in user answered anything but 200,
//! a login, logout or group change that did not work) and on RSS growth after the warm-up above
//! `SOAK_MAX_RSS_GROWTH` percent (default 5 for runs of 5 minutes and more, 20 for shorter ones,
//! whose allocator noise is a larger share).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::fleet::Fleet;
use common::load::{Load, Target};
use common::mongo::Mongo;
use common::redis::RedisServer;
use common::*;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}={v}: not a number"))
        })
        .unwrap_or(default)
}

/// Requests a second a closed loop of 32 concurrent clients gets through Nginx for `for_`.
async fn peak(url: &str, cookie: &str, for_: Duration) -> f64 {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let until = Instant::now() + for_;
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let (client, url, cookie) = (client.clone(), url.to_owned(), cookie.to_owned());
            tokio::spawn(async move {
                let mut ok = 0u64;
                while Instant::now() < until {
                    let resp = client.get(&url).header("cookie", &cookie).send().await;
                    if resp.is_ok_and(|r| r.status() == 200) {
                        ok += 1;
                    }
                }
                ok
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        ok += t.await.unwrap();
    }
    ok as f64 / for_.as_secs_f64()
}

/// One interval's resource reading.
struct Reading {
    at: Duration,
    rss_kib: u64,
    fds: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_steady_load_with_logins_renewals_logouts_and_group_changes() {
    let seconds = env_u64("SOAK_SECONDS", 40);
    let max_growth = env_u64("SOAK_MAX_RSS_GROWTH", if seconds >= 300 { 5 } else { 20 });
    // Intervals: 10 of them, at least 4 s and at most a minute each.
    let interval = Duration::from_secs((seconds / 10).clamp(4, 60));
    let warm_up = interval;

    let tmp = tempfile::tempdir().unwrap();
    let redis = RedisServer::start(tmp.path(), &[]);
    let mongo = Mongo::start();
    let fleet = Fleet::start(
        Setup {
            access_ttl: "5s",
            store: Some(format!(
                "[store]\nkind = \"redis\"\nurls = [\"{}\"]\nscope = \"soak\"",
                redis.url()
            )),
            users: Some(format!(
                "[users]\nkind = \"mongodb\"\nuri = \"{}\"\ndatabase = \"idgate\"\ncollection = \"users\"",
                mongo.uri()
            )),
            ..Setup::default()
        },
        1,
    );
    let site = fleet.site();
    let users = mongo
        .client()
        .await
        .database("idgate")
        .collection::<mongodb::bson::Document>("users");

    // The steady users, and the measured peak.
    let mut steady = Vec::new();
    for n in 0..8 {
        let browser = fleet.login(&format!("steady{n}")).await;
        steady.push(Target {
            url: format!("{site}/soak/{n}"),
            cookie: fleet.cookie_header(&browser),
        });
    }
    // The long soak (scripts/soak, release build) runs at half the peak; the short version in
    // the test suite is a smoke test of the same mix at a modest rate (a debug build sharing
    // two cores with the load generator has no headroom at half its peak).
    let rate = match env_u64("SOAK_RATE", 0) {
        0 if seconds >= 300 => {
            let peak = peak(&steady[0].url, &steady[0].cookie, Duration::from_secs(5)).await;
            eprintln!("SOAK peak through Nginx (32 clients, closed loop): {peak:.0} req/s");
            ((peak / 2.0) as u32).max(20)
        }
        0 => 200,
        set => set as u32,
    };
    eprintln!("SOAK soaking at {rate} req/s for {seconds} s");

    let targets = Arc::new(Mutex::new(steady));
    let load = Load::start_shared(rate, targets.clone());
    let started = Instant::now();
    let mut readings = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    let (mut logins, mut logouts, mut group_changes) = (0, 0, 0);
    // Users who came in during the soak, oldest first: (login, browser, target index).
    let mut churn: Vec<(String, Browser)> = Vec::new();
    let mut next_reading = Duration::ZERO;
    let mut round = 0u64;
    while started.elapsed() < Duration::from_secs(seconds) {
        if started.elapsed() >= next_reading {
            let proc = &fleet.stack.idgate.proc;
            readings.push(Reading {
                at: started.elapsed(),
                rss_kib: proc.rss_kib(),
                fds: proc.open_fds(),
            });
            next_reading += interval;
        }
        round += 1;
        // A login, every round.
        let login = format!("churn{round}");
        let browser = fleet.login(&login).await;
        logins += 1;
        targets.lock().unwrap().push(Target {
            url: format!("{site}/soak/{login}"),
            cookie: fleet.cookie_header(&browser),
        });
        churn.push((login, browser));
        // A logout of the oldest newcomer, once there are a few: out of the load first, then
        // a second for its requests in flight, then the logout.
        if churn.len() > 4 {
            let (login, browser) = churn.remove(0);
            targets
                .lock()
                .unwrap()
                .retain(|t| !t.url.ends_with(&format!("/{login}")));
            tokio::time::sleep(Duration::from_secs(1)).await;
            let resp = browser
                .client
                .post(format!("{site}/logout"))
                .send()
                .await
                .unwrap();
            if resp.status() != 200 {
                errors.push(format!("logout of {login}: {}", resp.status()));
            }
            let after = browser.navigate(&format!("{site}/soak/after")).await;
            if after.status() != 302 {
                errors.push(format!("{login} after logout: {}", after.status()));
            }
            logouts += 1;
        }
        // A group change every other round, on a newcomer still logged in: the next renewal
        // (the access token lives 5 s) must carry it to the upstream.
        if round.is_multiple_of(2) {
            let (login, browser) = churn.last().unwrap();
            let group = format!("g{round}");
            users
                .update_one(
                    mongodb::bson::doc! {"providerUserId": login},
                    mongodb::bson::doc! {"$set": {"groups": ["users", &group]}},
                )
                .await
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                let resp = browser.navigate(&format!("{site}/soak/groups")).await;
                let status = resp.status();
                let body = resp.text().await.unwrap_or_default();
                if status == 200 && echoed(&body)["miausergroups"].contains(&group) {
                    group_changes += 1;
                    break;
                }
                if Instant::now() > deadline {
                    errors.push(format!(
                        "{login}'s new group {group} never reached the upstream: {status} {body}"
                    ));
                    break;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let report = load.stop().await;
    let proc = &fleet.stack.idgate.proc;
    readings.push(Reading {
        at: started.elapsed(),
        rss_kib: proc.rss_kib(),
        fds: proc.open_fds(),
    });

    eprintln!(
        "SOAK {:>8} {:>8} {:>7} {:>10} {:>10} {:>9} {:>5}",
        "from s", "sent", "errors", "p50", "p99", "RSS MiB", "fds"
    );
    for pair in readings.windows(2) {
        let w = report.window(pair[0].at, pair[1].at);
        eprintln!(
            "SOAK {:>8.0} {:>8} {:>7} {:>10.2?} {:>10.2?} {:>9.1} {:>5}",
            pair[0].at.as_secs_f64(),
            w.sent(),
            w.failed().len(),
            w.latency(0.5),
            w.latency(0.99),
            pair[1].rss_kib as f64 / 1024.0,
            pair[1].fds
        );
    }
    let base = readings
        .iter()
        .find(|r| r.at >= warm_up)
        .unwrap_or(&readings[0]);
    let last = readings.last().unwrap();
    let growth = (last.rss_kib as f64 - base.rss_kib as f64) / base.rss_kib as f64 * 100.0;
    eprintln!("SOAK {}", report.summary("whole run"));
    eprintln!(
        "SOAK logins {logins}, logouts {logouts}, group changes {group_changes}; RSS {:.1} MiB after the warm-up, {:.1} MiB at the end ({growth:+.1} %); descriptors {} -> {}",
        base.rss_kib as f64 / 1024.0,
        last.rss_kib as f64 / 1024.0,
        readings[0].fds,
        last.fds
    );
    assert!(errors.is_empty(), "{errors:#?}");
    report.assert_all_ok("soak", &fleet.nginx_errors());
    assert!(logins > 0 && logouts > 0 && group_changes > 0);
    assert!(
        growth < max_growth as f64,
        "RSS grew {growth:.1} % after the warm-up (limit {max_growth} %)"
    );
}
