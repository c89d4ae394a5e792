//! `spawn_app()` and one helper per endpoint.

use std::path::PathBuf;
use std::time::Duration;

use app::{Application, Config};
use infrastructure::testing::TestDatabase;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running application and a client for it.
#[derive(Debug)]
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub data_dir: PathBuf,
    database: Option<TestDatabase>,
    _data: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

/// The application on a fresh SQLite database in its own data directory, configured the
/// way a first run is: no database URL at all.
pub async fn spawn_app() -> TestApp {
    start(None).await
}

/// The email and password of the admin that [`spawn_app_with_admin`] creates at start.
pub const ADMIN_EMAIL: &str = "admin@example.com";
pub const ADMIN_PASSWORD: &str = "admin password long enough";

/// The application with a first admin created from the start settings, as
/// `ADMIN_EMAIL`/`ADMIN_PASSWORD` would.
pub async fn spawn_app_with_admin() -> TestApp {
    start_with(None, |config| {
        config.admin_email = Some(ADMIN_EMAIL.into());
        config.admin_password = Some(ADMIN_PASSWORD.into());
    })
    .await
}

/// The application sending its mail to a real SMTP server started for the test.
pub async fn spawn_app_with_smtp() -> (TestApp, crate::smtp::SmtpCatcher) {
    let smtp = crate::smtp::SmtpCatcher::start().await;
    let url = smtp.url.clone();
    let app = start_with(None, |config| {
        config.smtp_url = Some(url);
        config.base_url = Some("https://expenses.example.com".into());
    })
    .await;
    (app, smtp)
}

/// The application with a first admin, sending mail to a real SMTP server of the test's.
pub async fn spawn_app_with_admin_and_smtp() -> (TestApp, crate::smtp::SmtpCatcher) {
    let smtp = crate::smtp::SmtpCatcher::start().await;
    let url = smtp.url.clone();
    let app = start_with(None, |config| {
        config.smtp_url = Some(url);
        config.admin_email = Some(ADMIN_EMAIL.into());
        config.admin_password = Some(ADMIN_PASSWORD.into());
    })
    .await;
    (app, smtp)
}

/// The application on a fresh PostgreSQL database, or `None` when PostgreSQL tests are
/// skipped (see `infrastructure::testing`).
pub async fn spawn_app_on_postgres(test_name: &str) -> Option<TestApp> {
    let database = TestDatabase::postgres(test_name).await?;
    Some(start(Some(database)).await)
}

/// The application with settings changed by `configure`, on a fresh PostgreSQL database,
/// or `None` when PostgreSQL tests are skipped.
pub async fn spawn_app_on_postgres_configured(
    test_name: &str,
    configure: impl FnOnce(&mut Config),
) -> Option<TestApp> {
    let database = TestDatabase::postgres(test_name).await?;
    Some(start_with(Some(database), configure).await)
}

/// The application with settings changed by `configure`, on a fresh SQLite database.
pub async fn spawn_app_configured(configure: impl FnOnce(&mut Config)) -> TestApp {
    start_with(None, configure).await
}

async fn start(database: Option<TestDatabase>) -> TestApp {
    start_with(database, |_| {}).await
}

async fn start_with(
    database: Option<TestDatabase>,
    configure: impl FnOnce(&mut Config),
) -> TestApp {
    let data = tempfile::tempdir().expect("a data directory");
    start_in(data, database, configure).await
}

/// The application in the data directory `data`, on `database` when given.
async fn start_in(
    data: tempfile::TempDir,
    database: Option<TestDatabase>,
    configure: impl FnOnce(&mut Config),
) -> TestApp {
    let mut config = Config::for_tests(
        data.path().to_path_buf(),
        database.as_ref().map(|d| d.url().to_owned()),
    );
    configure(&mut config);
    let application = Application::build(&config)
        .await
        .expect("the application starts");
    let address = format!(
        "http://{}",
        application.local_addr().expect("bound address")
    );
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(application.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    TestApp {
        address,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("an HTTP client"),
        data_dir: data.path().to_path_buf(),
        database,
        _data: data,
        stop: Some(stop),
        server: Some(server),
    }
}

impl TestApp {
    /// A second instance of the product on this one's PostgreSQL database, as a
    /// scaled-out deployment runs them (on SQLite the product is one instance).
    pub async fn another_instance(&self) -> TestApp {
        let url = self
            .database
            .as_ref()
            .expect("several instances share a PostgreSQL database")
            .url()
            .to_owned();
        start_with(None, |config| config.database_url = Some(url)).await
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("the request is answered")
    }

    /// `GET path` as `token`'s holder, answered 200 with JSON: that JSON.
    pub async fn read(&self, token: &str, path: &str) -> serde_json::Value {
        let response = self
            .call(reqwest::Method::GET, Some(token), path, None)
            .await;
        assert_eq!(response.status(), reqwest::StatusCode::OK, "{path}");
        response.json().await.expect("json")
    }

    pub async fn healthz(&self) -> reqwest::Response {
        self.get("/healthz").await
    }

    pub async fn readyz(&self) -> reqwest::Response {
        self.get("/readyz").await
    }

    pub async fn post_json(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.address))
            .json(body)
            .send()
            .await
            .expect("the request is answered")
    }

    pub async fn register(
        &self,
        name: &str,
        email: &str,
        mobile: &str,
        password: &str,
    ) -> reqwest::Response {
        self.post_json(
            "/api/v1/auth/register",
            &serde_json::json!({ "name": name, "email": email, "mobile": mobile, "password": password }),
        )
        .await
    }

    /// Registers a customer with valid details and the given email; panics unless 201.
    pub async fn register_customer(&self, email: &str, password: &str) -> String {
        let response = self
            .register("Asha Rao", email, "+91 98765 43210", password)
            .await;
        assert_eq!(response.status(), reqwest::StatusCode::CREATED);
        let body: serde_json::Value = response.json().await.expect("json");
        body["user_id"].as_str().expect("a user id").to_owned()
    }

    pub async fn login(&self, email: &str, password: &str) -> reqwest::Response {
        self.post_json(
            "/api/v1/auth/login",
            &serde_json::json!({ "email": email, "password": password }),
        )
        .await
    }

    /// Logs in; panics unless 200. Returns the bearer token.
    pub async fn token_for(&self, email: &str, password: &str) -> String {
        let response = self.login(email, password).await;
        assert_eq!(response.status(), reqwest::StatusCode::OK);
        let body: serde_json::Value = response.json().await.expect("json");
        body["token"].as_str().expect("a token").to_owned()
    }

    pub async fn me(&self, token: Option<&str>) -> reqwest::Response {
        let mut request = self.client.get(format!("{}/api/v1/me", self.address));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("the request is answered")
    }

    /// A POST with a bearer token (or none).
    pub async fn post_as(
        &self,
        token: Option<&str>,
        path: &str,
        body: &serde_json::Value,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .post(format!("{}{path}", self.address))
            .json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("the request is answered")
    }

    /// A request with any method, a bearer token (or none) and a JSON body (or none).
    pub async fn call(
        &self,
        method: reqwest::Method,
        token: Option<&str>,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.address));
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("the request is answered")
    }

    pub async fn logout(&self, token: &str) -> reqwest::Response {
        self.client
            .post(format!("{}/api/v1/auth/logout", self.address))
            .bearer_auth(token)
            .send()
            .await
            .expect("the request is answered")
    }

    /// Every event stored so far (straight from the database).
    pub async fn event_count(&self) -> i64 {
        let url = match &self.database {
            Some(database) => database.url().to_owned(),
            None => format!(
                "sqlite://{}",
                self.data_dir.join("expense-tracker.db").display()
            ),
        };
        let database = infrastructure::database::Database::connect(&url, Default::default())
            .await
            .expect("connecting to the app's database");
        let count = match &database {
            infrastructure::database::Database::Sqlite(sqlite) => {
                sqlx::query_scalar("SELECT COUNT(*) FROM events")
                    .fetch_one(sqlite.pool())
                    .await
            }
            infrastructure::database::Database::Postgres(pool) => {
                sqlx::query_scalar("SELECT COUNT(*) FROM events")
                    .fetch_one(pool)
                    .await
            }
        }
        .expect("counting events");
        database.close().await;
        count
    }

    /// Waits (at most 10 s) until the one unsent mail has failed once, then parks it as the
    /// dispatcher parks a mail after its last attempt. Returns its id.
    pub async fn park_pending_mail_after_a_failed_attempt(&self) -> String {
        let database = self.own_database().await;
        let infrastructure::database::Database::Sqlite(sqlite) = &database else {
            unreachable!("a SQLite app")
        };
        for _ in 0..500 {
            let parked: Option<String> = sqlx::query_scalar(
                "UPDATE outbox SET parked_at_us = next_attempt_at_us \
                 WHERE sent_at_us IS NULL AND attempts >= 1 AND parked_at_us IS NULL \
                 RETURNING lower(substr(hex(message_id), 1, 8) || '-' || substr(hex(message_id), 9, 4) || '-' \
                 || substr(hex(message_id), 13, 4) || '-' || substr(hex(message_id), 17, 4) || '-' \
                 || substr(hex(message_id), 21))",
            )
            .fetch_optional(sqlite.pool())
            .await
            .expect("parking");
            if let Some(id) = parked {
                database.close().await;
                return id;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the mail never failed");
    }

    /// Moves the support process manager back to `position` in the log, as if it had
    /// crashed after acting on the events since and before saving that it had (SQLite).
    pub async fn rewind_support_process(&self, position: i64) {
        let database = self.own_database().await;
        let infrastructure::database::Database::Sqlite(sqlite) = &database else {
            panic!("the app runs on SQLite");
        };
        sqlx::query("UPDATE process_checkpoints SET position = $1 WHERE name = 'support'")
            .bind(position)
            .execute(sqlite.pool())
            .await
            .expect("rewound");
        database.close().await;
    }

    /// The last event the support process manager handled (SQLite).
    pub async fn support_position(&self) -> i64 {
        let database = self.own_database().await;
        let infrastructure::database::Database::Sqlite(sqlite) = &database else {
            panic!("the app runs on SQLite");
        };
        let position: Option<i64> =
            sqlx::query_scalar("SELECT position FROM process_checkpoints WHERE name = 'support'")
                .fetch_optional(sqlite.pool())
                .await
                .expect("read");
        database.close().await;
        position.unwrap_or(0)
    }

    /// Waits (at most 10 s) until the support process manager has handled every event
    /// stored, so that it writes nothing more on its own.
    pub async fn wait_until_support_handled_everything(&self) {
        for _ in 0..500 {
            if self.support_position().await == self.event_count().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the support process never caught up with the log");
    }

    /// Makes every remembered answer unanswered and its claim long abandoned, as when the
    /// instance handling each request died after its work landed and before its answer was
    /// stored, and the retry comes after the claim timed out (SQLite).
    pub async fn lose_remembered_answers_as_a_crash_would(&self) {
        let database = self.own_database().await;
        let infrastructure::database::Database::Sqlite(sqlite) = &database else {
            panic!("the app runs on SQLite");
        };
        let lost = sqlx::query(
            "UPDATE idempotency_keys SET status = NULL, content_type = NULL, body = NULL, claimed_at_us = 0",
        )
        .execute(sqlite.pool())
        .await
        .expect("answers lost");
        assert!(lost.rows_affected() > 0, "no answer was remembered");
        database.close().await;
    }

    /// The app's SQLite file, opened beside it, as an operator (or an attacker) with the
    /// file would.
    pub async fn own_database(&self) -> infrastructure::database::Database {
        let url = format!(
            "sqlite://{}",
            self.data_dir.join("expense-tracker.db").display()
        );
        infrastructure::database::Database::connect(&url, Default::default())
            .await
            .expect("connecting to the app's database")
    }

    /// Every byte of every file in the data directory (the SQLite database, its WAL, mail).
    pub fn data_files_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        let mut directories = vec![self.data_dir.clone()];
        while let Some(directory) = directories.pop() {
            for entry in std::fs::read_dir(&directory).expect("a readable directory") {
                let path = entry.expect("an entry").path();
                if path.is_dir() {
                    directories.push(path);
                } else {
                    bytes.extend(std::fs::read(&path).expect("a readable file"));
                }
            }
        }
        bytes
    }

    /// The test database, when the app runs on PostgreSQL.
    pub fn postgres(&self) -> Option<&TestDatabase> {
        self.database.as_ref()
    }

    /// Asks the server to stop as ctrl-c or SIGTERM would, and waits for it to finish.
    pub async fn shut_down(mut self) -> std::io::Result<()> {
        self.stop_server().await
    }

    async fn stop_server(&mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let server = self.server.take().expect("the server runs until shut down");
        tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .expect("the server stops within 10 s")
            .expect("the server task")
    }

    /// Stops the product as SIGTERM would, lets `while_down` run while nothing serves,
    /// and starts it again on the same data directory and database with the settings
    /// `configure` makes (on a new port).
    pub async fn restart(
        mut self,
        while_down: impl FnOnce(),
        configure: impl FnOnce(&mut Config),
    ) -> TestApp {
        self.stop_server().await.expect("a clean stop");
        while_down();
        let database = self.database.take();
        start_in(self._data, database, configure).await
    }
}

/// A problem+json answer, checked and parsed.
pub async fn problem(response: reqwest::Response) -> serde_json::Value {
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    response.json().await.expect("a problem document")
}
