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

/// The application on a fresh PostgreSQL database, or `None` when PostgreSQL tests are
/// skipped (see `infrastructure::testing`).
pub async fn spawn_app_on_postgres(test_name: &str) -> Option<TestApp> {
    let database = TestDatabase::postgres(test_name).await?;
    Some(start(Some(database)).await)
}

async fn start(database: Option<TestDatabase>) -> TestApp {
    let data = tempfile::tempdir().expect("a data directory");
    let config = Config::for_tests(
        data.path().to_path_buf(),
        database.as_ref().map(|d| d.url().to_owned()),
    );
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
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("the request is answered")
    }

    pub async fn healthz(&self) -> reqwest::Response {
        self.get("/healthz").await
    }

    pub async fn readyz(&self) -> reqwest::Response {
        self.get("/readyz").await
    }

    /// The test database, when the app runs on PostgreSQL.
    pub fn postgres(&self) -> Option<&TestDatabase> {
        self.database.as_ref()
    }

    /// Asks the server to stop as ctrl-c or SIGTERM would, and waits for it to finish.
    pub async fn shut_down(mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let server = self.server.take().expect("the server runs until shut down");
        tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .expect("the server stops within 10 s")
            .expect("the server task")
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
