//! Failed-login counting, on both databases.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use infrastructure::database::Database;
use infrastructure::login_throttle::{LoginThrottle, ThrottlePolicy};
use infrastructure::testing::TestDatabase;

const HOME: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
const CAFE: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7));

fn at(seconds: i64) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 8, 0, 0)
        .single()
        .expect("valid")
        + chrono::Duration::seconds(seconds)
}

async fn failures_lock_for_the_window_then_age_out(database: Database) {
    let throttle = LoginThrottle::new(
        database,
        ThrottlePolicy {
            window: Duration::from_secs(900),
            per_account: 3,
            per_address: 5,
        },
    );
    for second in 0..3 {
        assert_eq!(
            throttle
                .wait_before_trying("asha", HOME, at(second))
                .await
                .expect("check"),
            None
        );
        throttle
            .record_failure("asha", HOME, at(second))
            .await
            .expect("record");
    }
    // Locked until the third-newest failure (at 0 s) leaves the 900 s window.
    let wait = throttle
        .wait_before_trying("asha", CAFE, at(100))
        .await
        .expect("check");
    assert_eq!(wait, Some(Duration::from_secs(800)));
    assert_eq!(
        throttle
            .wait_before_trying("asha", CAFE, at(901))
            .await
            .expect("check"),
        None
    );

    // Two more failures from HOME on other accounts reach the address limit of 5.
    throttle
        .record_failure("ravi", HOME, at(10))
        .await
        .expect("record");
    throttle
        .record_failure("meera", HOME, at(11))
        .await
        .expect("record");
    assert!(
        throttle
            .wait_before_trying("someone", HOME, at(20))
            .await
            .expect("check")
            .is_some()
    );
    assert_eq!(
        throttle
            .wait_before_trying("someone", CAFE, at(20))
            .await
            .expect("check"),
        None
    );

    throttle.clear_account("asha").await.expect("clear");
    assert_eq!(
        throttle
            .wait_before_trying("asha", CAFE, at(100))
            .await
            .expect("check"),
        None,
        "a reset or a successful login forgets the account's failures"
    );
}

#[tokio::test]
async fn sqlite_failures_lock_for_the_window_then_age_out() {
    failures_lock_for_the_window_then_age_out(TestDatabase::sqlite().connect().await).await;
}

#[tokio::test]
async fn postgres_failures_lock_for_the_window_then_age_out() {
    let Some(database) =
        TestDatabase::postgres("postgres_failures_lock_for_the_window_then_age_out").await
    else {
        return;
    };
    failures_lock_for_the_window_then_age_out(database.connect().await).await;
}
