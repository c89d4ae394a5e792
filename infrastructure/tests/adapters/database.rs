//! Connecting, migrating and readiness.

use infrastructure::database::{Database, DatabaseError, PoolSettings};
use infrastructure::testing::TestDatabase;

async fn readiness_follows_migrations(database: &TestDatabase) {
    let connected = Database::connect(database.url(), PoolSettings::default())
        .await
        .expect("connecting");
    assert!(
        matches!(
            connected.check_ready().await,
            Err(DatabaseError::NotReady(_))
        ),
        "a database without migrations is not ready"
    );
    connected.migrate().await.expect("migrating");
    connected.check_ready().await.expect("ready once migrated");
    connected
        .migrate()
        .await
        .expect("migrating again is a no-op");
}

#[tokio::test]
async fn sqlite_is_ready_only_once_migrated() {
    readiness_follows_migrations(&TestDatabase::sqlite()).await;
}

#[tokio::test]
async fn postgres_is_ready_only_once_migrated() {
    let Some(database) = TestDatabase::postgres("postgres_is_ready_only_once_migrated").await
    else {
        return;
    };
    readiness_follows_migrations(&database).await;
}

#[tokio::test]
async fn sqlite_runs_in_wal_mode_with_full_synchronous_writes() {
    let database = TestDatabase::sqlite();
    let Database::Sqlite(sqlite) = database.connect().await else {
        unreachable!("a SQLite test database")
    };
    let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(sqlite.pool())
        .await
        .expect("journal mode");
    let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
        .fetch_one(sqlite.pool())
        .await
        .expect("synchronous");
    assert_eq!(journal, "wal");
    assert_eq!(
        synchronous, 2,
        "FULL: an acknowledged write survives a power cut"
    );
}

#[tokio::test]
async fn an_unsupported_url_is_refused_with_its_password_hidden() {
    let refused = Database::connect("mysql://app:hunter2@db/x", PoolSettings::default()).await;
    let message = refused.expect_err("mysql is not supported").to_string();
    assert!(message.contains("unsupported"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
}
