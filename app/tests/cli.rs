//! The auditors' commands of the real binary: `seal`, `verify` (exit status 1 and the first
//! bad position once a row is altered behind the application's back), `export` and
//! `replay`, on a demo history in a fresh data directory; in `instances`, several serving
//! instances of it on one PostgreSQL database; in `crashes`, one killed again and again
//! under load; in `least_privilege`, one served by a role that cannot change the log.

#[path = "binary/crashes.rs"]
mod crashes;
#[path = "binary/deploy.rs"]
mod deploy;
#[path = "binary/instances.rs"]
mod instances;
#[path = "binary/least_privilege.rs"]
mod least_privilege;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn run(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_expense-tracker"))
        .args(args)
        .env("DATA_DIR", data_dir)
        .env_remove("DATABASE_URL")
        .env_remove("OBJECT_STORE_URL")
        .env("RUST_LOG", "warn")
        .output()
        .expect("the binary runs")
}

#[track_caller]
fn succeeded(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).expect("utf-8")
}

/// Changes one stored event as someone with the database file would.
fn tamper(data_dir: &Path, position: u64) {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        let url = format!(
            "sqlite://{}",
            data_dir.join("expense-tracker.db").display()
        );
        let database = infrastructure::database::Database::connect(&url, Default::default())
            .await
            .expect("connect");
        let infrastructure::database::Database::Sqlite(sqlite) = &database else {
            unreachable!("the default database is SQLite")
        };
        sqlx::raw_sql(&format!(
            "DROP TRIGGER events_are_never_updated; \
             UPDATE events SET payload = json_set(payload, '$.amount', '0.01') WHERE position = {position};"
        ))
        .execute(sqlite.pool())
        .await
        .expect("the attack runs");
        database.close().await;
    });
}

#[test]
fn seal_verify_export_and_replay_work_and_verify_exits_1_naming_the_altered_event() {
    let data = tempfile::tempdir().expect("a temporary directory");
    let dir = data.path();
    succeeded(&run(
        dir,
        &["demo-data", "--customers", "2", "--events", "300"],
    ));

    let seal = succeeded(&run(dir, &["seal"])).trim().to_owned();
    let (head, chain) = seal.split_once(':').expect("POSITION:CHAIN");
    let head: u64 = head.parse().expect("a position");
    assert_eq!(chain.len(), 64);

    let report: Value =
        serde_json::from_str(&succeeded(&run(dir, &["verify", "--seal", &seal]))).expect("json");
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["checked"].as_u64(), Some(head));

    let log = dir.join("log.jsonl");
    let log_path = log.to_str().expect("utf-8");
    succeeded(&run(
        dir,
        &["export", "--format", "jsonl", "--output", log_path],
    ));
    let events: Vec<Value> = std::fs::read_to_string(&log)
        .expect("written")
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    assert_eq!(events.len() as u64, head);
    let expense = events
        .iter()
        .find(|e| e["event_type"] == "ExpenseRecorded")
        .expect("the demo spends");
    let wallet = expense["stream"].as_str().expect("stream");
    let customer = wallet.strip_prefix("wallet-").expect("a wallet stream");

    let csv = dir.join("history.csv");
    let csv_path = csv.to_str().expect("utf-8");
    succeeded(&run(
        dir,
        &[
            "export",
            "--customer",
            customer,
            "--format",
            "csv",
            "--output",
            csv_path,
        ],
    ));
    let csv = std::fs::read_to_string(&csv).expect("written");
    let mut lines = csv.lines();
    assert!(
        lines
            .next()
            .expect("a header")
            .starts_with("position,recorded_at,stream")
    );
    assert!(lines.clone().count() > 1);
    assert!(lines.all(|line| line.contains(customer)));

    let now = chrono::Utc::now().to_rfc3339();
    let state: Value = serde_json::from_str(&succeeded(&run(
        dir,
        &["replay", "--customer", customer, "--as-of", &now],
    )))
    .expect("json");
    assert_eq!(state["customer_id"], customer);
    assert!(
        state["wallet"]["expenses"]
            .as_array()
            .is_some_and(|e| !e.is_empty())
    );

    let position = expense["position"].as_u64().expect("position");
    tamper(dir, position);
    let refused = run(dir, &["verify"]);
    assert_eq!(refused.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&refused.stdout).expect("json");
    assert_eq!(report["first_bad_position"].as_u64(), Some(position));
    assert_eq!(report["first_bad_stream"], wallet);
}

#[test]
fn json_logs_are_one_object_per_line_with_the_request_id() {
    use std::io::Read as _;

    let data = tempfile::tempdir().expect("a temporary directory");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let log = data.path().join("log.jsonl");
    // As on a fresh machine: the data directory does not exist yet.
    let mut server = Command::new(env!("CARGO_BIN_EXE_expense-tracker"))
        .arg("serve")
        .env("DATA_DIR", data.path().join("data"))
        .env_remove("DATABASE_URL")
        .env_remove("OBJECT_STORE_URL")
        .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "info,tower_http=debug")
        .stdout(std::fs::File::create(&log).expect("a log file"))
        .spawn()
        .expect("the server starts");
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let answered = runtime.block_on(async {
        let client = reqwest::Client::new();
        for _ in 0..300 {
            if let Ok(response) = client
                .get(format!("http://127.0.0.1:{port}/healthz"))
                .header("x-request-id", "probe-json-1")
                .send()
                .await
            {
                return Some(response.status());
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        None
    });
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(answered, Some(reqwest::StatusCode::OK));
    let mut text = String::new();
    std::fs::File::open(&log)
        .expect("the log")
        .read_to_string(&mut text)
        .expect("readable");
    let lines: Vec<Value> = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    assert!(
        lines.iter().any(|line| line["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("listening"))),
        "{text}"
    );
    assert!(
        lines.iter().any(|line| line["spans"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|span| span["request_id"] == "probe-json-1")),
        "{text}"
    );
}

#[test]
fn on_sqlite_an_instance_that_would_only_serve_or_only_work_refuses_to_start() {
    let data = tempfile::tempdir().expect("a temporary directory");
    for role in ["web", "worker"] {
        let refused = Command::new(env!("CARGO_BIN_EXE_expense-tracker"))
            .arg("serve")
            .env("DATA_DIR", data.path())
            .env("ROLE", role)
            .env_remove("DATABASE_URL")
            .env("LISTEN_ADDR", "127.0.0.1:0")
            .output()
            .expect("the binary runs");
        assert!(!refused.status.success(), "ROLE={role} started on SQLite");
        assert!(
            String::from_utf8_lossy(&refused.stderr).contains("needs PostgreSQL"),
            "{}",
            String::from_utf8_lossy(&refused.stderr)
        );
    }
}
