//! Least privilege on PostgreSQL (ADR 0024), set up as deploy/README.md says: a DBA makes
//! an owner role that migrates and a login role in `expense_tracker_app` that serves. The
//! served product works in full (commands, the support process and its mail, blue/green
//! rebuilds of every read model), and the serving role may read and append the log but
//! not change, delete or truncate it, nor touch the schema.

use std::collections::BTreeMap;
use std::process::Command;

use infrastructure::testing::TestDatabase;
use sqlx::{Connection, PgConnection};

use crate::instances::{
    ADMIN_EMAIL, ONE_AT_A_TIME, add_agent, call, caught_up, client, customer_with_food_limit,
    every_read_model_equals_a_rebuild, get, start, token, wait_until_ready,
};

/// The roles of the set-up; they own nothing once the test database is dropped, so they
/// are made once per server and kept.
const OWNER: &str = "expense_tracker_test_owner";
const SERVER: &str = "expense_tracker_test_server";

/// The DBA's part of deploy/README.md, as a superuser.
async fn set_up_roles(superuser: &mut PgConnection, database: &str) {
    for statement in [
        "DO $$ BEGIN CREATE ROLE expense_tracker_app NOLOGIN; \
         EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
            .to_owned(),
        format!(
            "DO $$ BEGIN CREATE ROLE {OWNER} LOGIN; \
             EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
        ),
        format!(
            "DO $$ BEGIN CREATE ROLE {SERVER} LOGIN; \
             EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
        ),
        format!("GRANT expense_tracker_app TO {OWNER}, {SERVER}"),
        format!("ALTER DATABASE {database} OWNER TO {OWNER}"),
    ] {
        sqlx::query(&statement)
            .execute(&mut *superuser)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
}

fn as_role(url: &str, role: &str) -> String {
    let mut url = reqwest::Url::parse(url).expect("a URL");
    url.set_username(role).expect("a user name");
    url.to_string()
}

/// What the serving role may do to each table: privileges, or `owner`.
fn written_matrix() -> BTreeMap<&'static str, &'static str> {
    let mut matrix = BTreeMap::new();
    matrix.insert("_sqlx_migrations", "SELECT");
    for log in ["events", "seals", "audit_reads"] {
        matrix.insert(log, "SELECT INSERT");
    }
    matrix.insert("unique_claims", "SELECT INSERT DELETE");
    for working in [
        "access_tokens",
        "idempotency_keys",
        "login_failures",
        "outbox",
        "password_resets",
        "personal_data_keys",
        "process_checkpoints",
        "projection_checkpoints",
        "receipts",
        "web_sessions",
    ] {
        matrix.insert(working, "SELECT INSERT UPDATE DELETE");
    }
    for read_model in [
        "rm_categories",
        "rm_expenses",
        "rm_goals",
        "rm_limits",
        "rm_recurring_payments",
        "rm_reminders",
        "rm_ticket_comments",
        "rm_tickets",
        "rm_users",
        "rm_wallets",
    ] {
        matrix.insert(read_model, "owner");
    }
    matrix
}

/// What the serving role may actually do to each table of the schema.
async fn actual_matrix(server: &mut PgConnection) -> BTreeMap<String, String> {
    let rows: Vec<(String, bool, bool, bool, bool, bool, bool)> = sqlx::query_as(
        "SELECT c.relname, \
                pg_has_role(current_user, c.relowner, 'USAGE'), \
                has_table_privilege(c.oid, 'SELECT'), has_table_privilege(c.oid, 'INSERT'), \
                has_table_privilege(c.oid, 'UPDATE'), has_table_privilege(c.oid, 'DELETE'), \
                has_table_privilege(c.oid, 'TRUNCATE') \
         FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r'",
    )
    .fetch_all(server)
    .await
    .expect("the privileges");
    rows.into_iter()
        .map(|(table, owner, select, insert, update, delete, truncate)| {
            let granted = if owner {
                "owner".to_owned()
            } else {
                [
                    (select, "SELECT"),
                    (insert, "INSERT"),
                    (update, "UPDATE"),
                    (delete, "DELETE"),
                    (truncate, "TRUNCATE"),
                ]
                .iter()
                .filter(|(has, _)| *has)
                .map(|(_, name)| *name)
                .collect::<Vec<_>>()
                .join(" ")
            };
            (table, granted)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_serving_role_reads_and_appends_the_log_but_cannot_change_it() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let Some(database) = TestDatabase::postgres("least_privilege").await else {
        return;
    };
    let name = reqwest::Url::parse(database.url())
        .expect("a URL")
        .path()
        .trim_start_matches('/')
        .to_owned();
    let mut superuser = PgConnection::connect(database.url())
        .await
        .expect("connecting as the DBA");
    set_up_roles(&mut superuser, &name).await;

    let owner_url = as_role(database.url(), OWNER);
    let server_url = as_role(database.url(), SERVER);
    let data = tempfile::tempdir().expect("a data directory");
    let migrated = Command::new(env!("CARGO_BIN_EXE_expense-tracker"))
        .arg("migrate")
        .env("DATABASE_URL", &owner_url)
        .env("DATA_DIR", data.path())
        .env("RUST_LOG", "warn")
        .output()
        .expect("the binary runs");
    assert!(
        migrated.status.success(),
        "{}",
        String::from_utf8_lossy(&migrated.stderr)
    );

    // The whole product, served by the least-privileged role.
    let client = client();
    let instance = start("least-privilege", &server_url, data.path());
    wait_until_ready(&client, &instance).await;
    let base = instance.base.clone();
    let admin = token(&client, &base, ADMIN_EMAIL).await;
    add_agent(&client, &base, &admin).await;
    let customer = customer_with_food_limit(&client, &base, "asha@example.com").await;
    let expense =
        serde_json::json!({ "amount": "15", "category": "Food", "spent_on": "2026-11-10" });
    for n in 0..8 {
        let key = format!("e{n}");
        let answer = call(
            &client,
            &base,
            reqwest::Method::POST,
            Some(&customer),
            "/api/v1/expenses",
            Some(&expense),
            Some(&key),
        )
        .await;
        assert_eq!(
            answer.map(|(status, _)| status),
            Some(reqwest::StatusCode::CREATED)
        );
    }
    // The support process manager opens the ticket on its own time.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let tickets = get(&client, &base, &customer, "/api/v1/tickets").await;
        if tickets["items"].as_array().map(Vec::len) == Some(1) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no ticket: {tickets}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    caught_up(&client, &base, &admin).await;
    every_read_model_equals_a_rebuild(&client, &base, &admin).await;
    drop(instance);
    let log = std::fs::read_to_string(data.path().join("least-privilege.log")).expect("the log");
    assert!(
        !log.contains("permission denied") && !log.contains("must be owner"),
        "the serving role lacked a privilege:\n{log}"
    );

    // What the serving role may do, table by table, is what the matrix says; a new table
    // fails here until its privileges are decided.
    let mut server = PgConnection::connect(&server_url)
        .await
        .expect("connecting as the serving role");
    let expected: BTreeMap<String, String> = written_matrix()
        .into_iter()
        .map(|(table, granted)| (table.to_owned(), granted.to_owned()))
        .collect();
    assert_eq!(actual_matrix(&mut server).await, expected);
    // The rebuilt read models belong to the group, as the migrated ones did, not to the
    // serving role that rebuilt them: the owner role's next migration may alter them.
    let owners: Vec<(String, String)> = sqlx::query_as(
        "SELECT c.relname::TEXT, pg_get_userbyid(c.relowner)::TEXT FROM pg_class c \
         WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r' \
         AND c.relname LIKE 'rm\\_%' ORDER BY 1",
    )
    .fetch_all(&mut server)
    .await
    .expect("the owners");
    assert!(owners.len() >= 5, "{owners:?}");
    for (table, owner) in owners {
        assert_eq!(owner, "expense_tracker_app", "{table}");
    }

    // And the database itself refuses it, before any trigger is asked.
    for statement in [
        "UPDATE events SET payload = payload",
        "UPDATE events SET chain = NULL",
        "DELETE FROM events",
        "TRUNCATE events",
        "DELETE FROM seals",
        "TRUNCATE audit_reads",
        "ALTER TABLE events DISABLE TRIGGER ALL",
        "DROP TABLE events",
        "DROP TRIGGER events_are_never_deleted ON events",
        "CREATE OR REPLACE FUNCTION events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$",
    ] {
        let refused = sqlx::query(statement)
            .execute(&mut server)
            .await
            .expect_err(statement);
        let code = refused
            .as_database_error()
            .and_then(|e| e.code())
            .map(|c| c.into_owned());
        assert_eq!(code.as_deref(), Some("42501"), "{statement}: {refused}");
        assert!(
            !refused.to_string().contains("append-only"),
            "{statement} reached the trigger: {refused}"
        );
    }
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events")
        .fetch_one(&mut server)
        .await
        .expect("the log is readable");
    assert!(count > 10, "{count} events");
    server.close().await.expect("closed");
    superuser.close().await.expect("closed");
}
