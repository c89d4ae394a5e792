//! Several instances of the real binary on one PostgreSQL database (ADR 0019): commands
//! through both, one killed with `SIGKILL` in the middle, and nothing lost, doubled or
//! left behind; and one instance living through a restart of PostgreSQL.

use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use infrastructure::testing::TestDatabase;
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::Mutex;

/// The tests here stop PostgreSQL or lean on it hard: one at a time. Each takes it before
/// making its database and keeps it until that database is dropped, since another may be
/// restarting PostgreSQL meanwhile.
pub(crate) static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

pub(crate) const ADMIN_EMAIL: &str = "admin@example.com";
const PASSWORD: &str = "a long enough password";

pub(crate) struct Instance {
    pub(crate) child: Child,
    pub(crate) base: String,
    name: &'static str,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

pub(crate) fn start(name: &'static str, database_url: &str, data_dir: &Path) -> Instance {
    start_as(name, "all", database_url, data_dir)
}

/// An instance with the role `role` (`all`, `web` or `worker`).
pub(crate) fn start_as(
    name: &'static str,
    role: &str,
    database_url: &str,
    data_dir: &Path,
) -> Instance {
    start_configured(name, role, database_url, data_dir, &[])
}

/// An instance with the role `role` and `settings` added to its environment.
pub(crate) fn start_configured(
    name: &'static str,
    role: &str,
    database_url: &str,
    data_dir: &Path,
    settings: &[(&str, &str)],
) -> Instance {
    let port = free_port();
    let log = std::fs::File::create(data_dir.join(format!("{name}.log"))).expect("a log file");
    let child = Command::new(env!("CARGO_BIN_EXE_expense-tracker"))
        .arg("serve")
        .env("DATABASE_URL", database_url)
        .env("DATA_DIR", data_dir)
        .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("ADMIN_EMAIL", ADMIN_EMAIL)
        .env("ADMIN_PASSWORD", PASSWORD)
        .env_remove("SMTP_URL")
        .env_remove("OBJECT_STORE_URL")
        .env("ROLE", role)
        .env("RUST_LOG", "info,sqlx=warn")
        .envs(settings.iter().copied())
        .stdout(log)
        .spawn()
        .expect("the binary starts");
    Instance {
        child,
        base: format!("http://127.0.0.1:{port}"),
        name,
    }
}

pub(crate) fn client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .expect("a client")
}

pub(crate) async fn wait_until_ready(client: &Client, instance: &Instance) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(response) = client.get(format!("{}/readyz", instance.base)).send().await
            && response.status() == StatusCode::OK
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} never got ready",
            instance.name
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A request with a bearer token and a JSON body; `None` when the instance did not answer.
pub(crate) async fn call(
    client: &Client,
    base: &str,
    method: Method,
    token: Option<&str>,
    path: &str,
    body: Option<&Value>,
    key: Option<&str>,
) -> Option<(StatusCode, Value)> {
    let mut request = client.request(method, format!("{base}{path}"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    let response = request.send().await.ok()?;
    let status = response.status();
    let text = response.text().await.ok()?;
    Some((
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    ))
}

#[track_caller]
pub(crate) fn expect(answer: Option<(StatusCode, Value)>, status: StatusCode) -> Value {
    let (got, body) = answer.expect("the instance answers");
    assert_eq!(got, status, "{body}");
    body
}

pub(crate) async fn token(client: &Client, base: &str, email: &str) -> String {
    let body = json!({ "email": email, "password": PASSWORD });
    let login = send(
        client,
        base,
        Method::POST,
        None,
        "/api/v1/auth/login",
        &body,
        StatusCode::OK,
    )
    .await;
    login["token"].as_str().expect("a token").to_owned()
}

/// A request with a JSON body (and a bearer token, if given) that must answer `status`;
/// its JSON body.
pub(crate) async fn send(
    client: &Client,
    base: &str,
    method: Method,
    token: Option<&str>,
    path: &str,
    body: &Value,
    status: StatusCode,
) -> Value {
    expect(
        call(client, base, method, token, path, Some(body), None).await,
        status,
    )
}

/// A GET with a bearer token that must answer 200; its JSON body.
pub(crate) async fn get(client: &Client, base: &str, token: &str, path: &str) -> Value {
    expect(
        call(client, base, Method::GET, Some(token), path, None, None).await,
        StatusCode::OK,
    )
}

/// The ids of a page of expenses.
pub(crate) fn expense_ids(page: &Value) -> BTreeSet<String> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["expense_id"].as_str().expect("an id").to_owned())
        .collect()
}

/// A new customer with 1000 in the wallet, registered through `base`; their token.
async fn customer_with_1000(client: &Client, base: &str, email: &str) -> String {
    let body = json!({ "name": "Asha Rao", "email": email, "mobile": "+91 98765 43210", "password": PASSWORD });
    send(
        client,
        base,
        Method::POST,
        None,
        "/api/v1/auth/register",
        &body,
        StatusCode::CREATED,
    )
    .await;
    let token = token(client, base, email).await;
    let top_up = json!({ "amount": "1000" });
    send(
        client,
        base,
        Method::POST,
        Some(&token),
        "/api/v1/wallet/top-ups",
        &top_up,
        StatusCode::CREATED,
    )
    .await;
    token
}

/// The agent `agent@example.com`, created by `admin` through `base`, so that every ticket
/// is assigned (and announced to them).
pub(crate) async fn add_agent(client: &Client, base: &str, admin: &str) {
    let agent = json!({ "name": "Ravi Kumar", "email": "agent@example.com", "mobile": "+919845012345", "gender": "male", "username": "agent", "password": PASSWORD });
    send(
        client,
        base,
        Method::POST,
        Some(admin),
        "/api/v1/admin/agents",
        &agent,
        StatusCode::CREATED,
    )
    .await;
}

/// A customer with 1000 in the wallet and a monthly Food limit of 100 (expenses of 15
/// cross 80% at the 6th and the limit at the 7th); their token.
pub(crate) async fn customer_with_food_limit(client: &Client, base: &str, email: &str) -> String {
    let token = customer_with_1000(client, base, email).await;
    let limit = json!({ "period": "monthly", "amount": "100", "category": "Food" });
    send(
        client,
        base,
        Method::PUT,
        Some(&token),
        "/api/v1/limits",
        &limit,
        StatusCode::OK,
    )
    .await;
    token
}

/// What `/metrics` says this instance leads: worker -> leading.
async fn leads(client: &Client, base: &str) -> Option<BTreeMap<String, bool>> {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let mut leads = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("expense_tracker_worker_leader{worker=\"") {
            let (worker, value) = rest.split_once("\"} ")?;
            leads.insert(worker.to_owned(), value.trim() == "1");
        }
    }
    Some(leads)
}

/// The `To:` address of every mail the file mailer wrote, with how many each got.
pub(crate) fn mail_by_recipient(data_dir: &Path) -> BTreeMap<String, usize> {
    let mut count = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(data_dir.join("mail")) else {
        return count;
    };
    for entry in entries.flatten() {
        let path: PathBuf = entry.path();
        if path.extension().is_none_or(|e| e != "eml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("a mail");
        let to = text
            .lines()
            .find_map(|line| line.strip_prefix("To: "))
            .expect("a recipient")
            .trim()
            .to_owned();
        *count.entry(to).or_insert(0) += 1;
    }
    count
}

/// Waits until every read model has applied the whole log, as `base` reports it.
pub(crate) async fn caught_up(client: &Client, base: &str, admin: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some((StatusCode::OK, list)) = call(
            client,
            base,
            Method::GET,
            Some(admin),
            "/api/v1/admin/projections",
            None,
            None,
        )
        .await
            && list["items"].as_array().is_some_and(|items| {
                items
                    .iter()
                    .all(|i| i["behind"] == 0 && i["status"] == "running")
            })
        {
            return;
        }
        assert!(Instant::now() < deadline, "the read models never caught up");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Rebuilds every read model on `base` and checks each rebuilt table equals the live one.
pub(crate) async fn every_read_model_equals_a_rebuild(client: &Client, base: &str, admin: &str) {
    let list = get(client, base, admin, "/api/v1/admin/projections").await;
    let names: Vec<String> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["name"].as_str().expect("a name").to_owned())
        .collect();
    assert!(names.len() >= 4, "{list}");
    for name in &names {
        send(
            client,
            base,
            Method::POST,
            Some(admin),
            &format!("/api/v1/admin/projections/{name}/rebuild"),
            &json!({}),
            StatusCode::ACCEPTED,
        )
        .await;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let list = get(client, base, admin, "/api/v1/admin/projections").await;
            let item = list["items"]
                .as_array()
                .expect("items")
                .iter()
                .find(|i| i["name"] == name.as_str())
                .expect("the read model")
                .clone();
            if item["rebuilding"] == false && !item["last_rebuild"].is_null() {
                assert!(item["last_rebuild"]["error"].is_null(), "{item}");
                assert_eq!(
                    item["last_rebuild"]["differing_tables"],
                    json!([]),
                    "{item}"
                );
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the rebuild of {name} never ended"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

struct Customer {
    email: String,
    token: String,
    home: usize,
}

const CUSTOMERS: usize = 8;
const EXPENSES_EACH: usize = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_the_work_and_one_killed_loses_nothing_and_doubles_nothing() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let Some(database) =
        TestDatabase::postgres("two_instances_share_the_work_and_one_killed_loses_nothing").await
    else {
        return;
    };
    let data = tempfile::tempdir().expect("a data directory");
    let client = client();
    // The first instance creates the admin; the second starts once it is there.
    let first = start("first", database.url(), data.path());
    wait_until_ready(&client, &first).await;
    let second = start("second", database.url(), data.path());
    wait_until_ready(&client, &second).await;
    let mut instances = [Some(first), Some(second)];
    let bases: Vec<String> = instances
        .iter()
        .map(|i| i.as_ref().expect("started").base.clone())
        .collect();

    // Each worker runs on exactly one of the two.
    let deadline = Instant::now() + Duration::from_secs(10);
    let leaders = loop {
        let a = leads(&client, &bases[0]).await.unwrap_or_default();
        let b = leads(&client, &bases[1]).await.unwrap_or_default();
        let workers: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
        let settled = workers.len() == 5
            && workers.iter().all(|w| {
                a.get(*w).copied().unwrap_or(false) != b.get(*w).copied().unwrap_or(false)
            });
        if settled {
            break (a, b);
        }
        assert!(
            Instant::now() < deadline,
            "leadership never settled: {a:?} {b:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // An agent, so that every ticket is assigned (and announced to the agent).
    let admin = token(&client, &bases[1], ADMIN_EMAIL).await;
    add_agent(&client, &bases[1], &admin).await;

    // Customers, each served by one instance, half by each.
    let mut customers = Vec::new();
    for n in 0..CUSTOMERS {
        let home = n % 2;
        let base = &bases[home];
        let email = format!("customer{n}@example.com");
        let token = customer_with_food_limit(&client, base, &email).await;
        customers.push(Customer { email, token, home });
    }

    // Read-your-writes held on both instances, the one that runs the projections and the
    // one that only follows them: no read had to give up waiting for its read models.
    for name in ["first", "second"] {
        let log = std::fs::read_to_string(data.path().join(format!("{name}.log"))).expect("a log");
        assert!(
            !log.contains("a read model is behind its writes"),
            "{name} gave up waiting for its read models to show a write:\n{log}"
        );
    }
    // And a write on the follower is read back at once, on either instance.
    let follower = usize::from(leaders.0.get("projections").copied().unwrap_or(false));
    let reader = customers
        .iter()
        .find(|c| c.home == follower)
        .expect("a customer there");
    let body = json!({ "amount": "1", "category": "Travel", "description": "bus", "spent_on": "2026-11-09" });
    let written = send(
        &client,
        &bases[follower],
        Method::POST,
        Some(&reader.token),
        "/api/v1/expenses",
        &body,
        StatusCode::CREATED,
    )
    .await;
    // First on the other instance, which heard of the write from nobody but the database,
    // then on the follower itself.
    for reading in [1 - follower, follower] {
        let listed = get(
            &client,
            &bases[reading],
            &reader.token,
            "/api/v1/expenses?category=Travel",
        )
        .await;
        assert_eq!(
            listed["items"][0]["expense_id"], written["expense_id"],
            "{listed}"
        );
    }

    // Every customer spends ten times 15 in Food (crossing 80% at the 6th, the limit at
    // the 7th), on its own instance; the instance that runs the support process manager
    // is killed with SIGKILL after a third of the expenses. A command whose instance did
    // not answer is sent again to the other with the same idempotency key.
    let victim = usize::from(!leaders.0.get("support").copied().unwrap_or(false));
    let acknowledged = Arc::new(std::sync::Mutex::new(BTreeMap::<usize, Vec<String>>::new()));
    let sent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let unanswered = Arc::new(std::sync::Mutex::new(BTreeMap::<usize, usize>::new()));
    let mut tasks = tokio::task::JoinSet::new();
    for (n, customer) in customers.iter().enumerate() {
        let (client, bases, token, home) = (
            client.clone(),
            bases.clone(),
            customer.token.clone(),
            customer.home,
        );
        let (acknowledged, sent, unanswered) = (
            Arc::clone(&acknowledged),
            Arc::clone(&sent),
            Arc::clone(&unanswered),
        );
        tasks.spawn(async move {
            for e in 0..EXPENSES_EACH {
                let body = json!({ "amount": "15", "category": "Food", "description": "market", "spent_on": "2026-11-10" });
                let mut base = home;
                let mut attempt = 0;
                let answer = loop {
                    // A request the killed instance never answered may or may not have
                    // landed; its key stays claimed by the dead request, so the client
                    // goes on with a new one, as a person pressing the button again would.
                    let key = format!("customer{n}-expense{e}-attempt{attempt}");
                    match call(&client, &bases[base], Method::POST, Some(&token), "/api/v1/expenses", Some(&body), Some(&key)).await {
                        Some(answer) if answer.0 != StatusCode::SERVICE_UNAVAILABLE => break answer,
                        _ => {
                            attempt += 1;
                            assert!(attempt < 100, "no instance took customer{n}'s expense {e}");
                            unanswered.lock().expect("lock").entry(n).and_modify(|c| *c += 1).or_insert(1);
                            base = 1 - home;
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                };
                assert_eq!(answer.0, StatusCode::CREATED, "customer{n}'s expense {e}: {}", answer.1);
                let id = answer.1["expense_id"].as_str().expect("an id").to_owned();
                acknowledged.lock().expect("lock").entry(n).or_default().push(id);
                sent.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        });
    }
    while sent.load(std::sync::atomic::Ordering::SeqCst) < CUSTOMERS * EXPENSES_EACH / 3 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut killed = instances[victim].take().expect("running");
    killed.child.kill().expect("SIGKILL");
    let _ = killed.child.wait();
    let killed_at = Instant::now();
    let survivor = &bases[1 - victim];

    // Every worker moves to the survivor within 10 seconds.
    let failover = loop {
        let leading = leads(&client, survivor).await.unwrap_or_default();
        if leading.len() == 5 && leading.values().all(|l| *l) {
            break killed_at.elapsed();
        }
        assert!(
            killed_at.elapsed() < Duration::from_secs(10),
            "the workers did not move within 10 s: {leading:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    println!("workers moved to the survivor {failover:?} after the SIGKILL");
    while let Some(done) = tasks.join_next().await {
        done.expect("a customer's expenses");
    }

    // Every acknowledged expense is there once, and the balances are exact.
    caught_up(&client, survivor, &admin).await;
    let acknowledged = acknowledged.lock().expect("lock").clone();
    let unanswered = unanswered.lock().expect("lock").clone();
    println!(
        "{} expenses acknowledged, {} requests unanswered by the killed instance",
        acknowledged.values().map(Vec::len).sum::<usize>(),
        unanswered.values().sum::<usize>()
    );
    for (n, customer) in customers.iter().enumerate() {
        let listed = expense_ids(
            &get(
                &client,
                survivor,
                &customer.token,
                "/api/v1/expenses?limit=100&category=Food",
            )
            .await,
        );
        let mine: BTreeSet<String> = acknowledged[&n].iter().cloned().collect();
        assert_eq!(mine.len(), EXPENSES_EACH, "{}", customer.email);
        assert!(
            mine.is_subset(&listed),
            "{}: an acknowledged expense is missing",
            customer.email
        );
        // Beyond those, only requests that got no answer may have landed.
        let extra = listed.len() - mine.len();
        assert!(
            extra <= unanswered.get(&n).copied().unwrap_or(0),
            "{}: {extra} expenses nobody sent",
            customer.email
        );
        let spent = 15 * i64::try_from(listed.len()).expect("a count")
            + i64::from(customer.email == reader.email);
        let wallet = get(&client, survivor, &customer.token, "/api/v1/wallet").await;
        assert_eq!(
            wallet["balance"],
            format!("{}.00", 1000 - spent),
            "{}",
            customer.email
        );
        // The support process opens the ticket after the crossing, in its own time.
        let deadline = Instant::now() + Duration::from_secs(30);
        let tickets = loop {
            let tickets = get(&client, survivor, &customer.token, "/api/v1/tickets").await;
            if !tickets["items"].as_array().is_some_and(Vec::is_empty) || Instant::now() > deadline
            {
                break tickets;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(
            tickets["items"].as_array().map(Vec::len),
            Some(1),
            "one ticket for {}'s crossing: {tickets}",
            customer.email
        );
    }

    // One mail of each kind per crossing: the warning and the crossing to the customer,
    // the assignment to the agent; none lost, none doubled.
    let expected: BTreeMap<String, usize> = customers
        .iter()
        .map(|c| (c.email.clone(), 2))
        .chain([("agent@example.com".to_owned(), CUSTOMERS)])
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while mail_by_recipient(data.path()) != expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Nothing more comes later either.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(mail_by_recipient(data.path()), expected);

    every_read_model_equals_a_rebuild(&client, survivor, &admin).await;
}

/// Stops PostgreSQL for the length of a closure and always starts it again.
struct PostgresServer {
    version: String,
}

impl PostgresServer {
    /// The local cluster `pg_ctlcluster` manages, when there is one.
    fn local() -> Option<Self> {
        let version = std::fs::read_dir("/etc/postgresql")
            .ok()?
            .flatten()
            .next()?
            .file_name()
            .to_string_lossy()
            .into_owned();
        Command::new("pg_ctlcluster")
            .arg("--help")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .ok()?;
        Some(Self { version })
    }

    fn control(&self, action: &str) {
        let status = Command::new("pg_ctlcluster")
            .args(["--skip-systemctl-redirect", &self.version, "main", action])
            .status()
            .expect("pg_ctlcluster runs");
        assert!(status.success(), "pg_ctlcluster {action}");
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        // Whatever happened in the test, the server is left running for the next ones.
        let _ = Command::new("pg_ctlcluster")
            .args(["--skip-systemctl-redirect", &self.version, "main", "start"])
            .stderr(Stdio::null())
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_lives_through_a_postgresql_restart_and_loses_nothing() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let Some(database) =
        TestDatabase::postgres("an_instance_lives_through_a_postgresql_restart").await
    else {
        return;
    };
    let Some(server) = PostgresServer::local() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must be able to restart its PostgreSQL with pg_ctlcluster"
        );
        eprintln!("*** SKIPPED: no pg_ctlcluster to restart PostgreSQL with ***");
        return;
    };
    let data = tempfile::tempdir().expect("a data directory");
    let client = client();
    let instance = start("only", database.url(), data.path());
    wait_until_ready(&client, &instance).await;
    let base = instance.base.clone();
    let asha = customer_with_1000(&client, &base, "asha@example.com").await;

    // Light load: one expense after another, each sent again under its key until it is
    // acknowledged, while PostgreSQL stops and starts.
    let (stop_load, mut load_stopped) = tokio::sync::watch::channel(false);
    let acked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let load = {
        let (client, base, asha, acked) = (
            client.clone(),
            base.clone(),
            asha.clone(),
            Arc::clone(&acked),
        );
        tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            for n in 0.. {
                if *load_stopped.borrow_and_update() {
                    break;
                }
                let key = format!("expense{n}");
                let body = json!({ "amount": "1", "category": "Travel", "description": "bus", "spent_on": "2026-11-10" });
                // A request that failed while the database was away may leave its key
                // claimed; the key is free again once the claim is abandoned (30 s).
                let deadline = Instant::now() + Duration::from_secs(90);
                loop {
                    assert!(Instant::now() < deadline, "{key} was never acknowledged");
                    if let Some((StatusCode::CREATED, answer)) = call(
                        &client,
                        &base,
                        Method::POST,
                        Some(&asha),
                        "/api/v1/expenses",
                        Some(&body),
                        Some(&key),
                    )
                    .await
                    {
                        acknowledged.push(answer["expense_id"].as_str().expect("an id").to_owned());
                        acked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            acknowledged
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    server.control("stop");
    // Not ready while the database is away...
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ready = client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .map(|r| r.status());
        if matches!(ready, Ok(StatusCode::SERVICE_UNAVAILABLE)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz stayed {ready:?} with the database down"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    server.control("start");
    // ...and ready again once it is back.
    wait_until_ready(&client, &instance).await;
    let before = acked.load(std::sync::atomic::Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _ = stop_load.send(true);
    let acknowledged = load.await.expect("the load");
    assert!(
        acknowledged.len() > before,
        "no expense was acknowledged once PostgreSQL was back ({before} before)"
    );

    let admin = token(&client, &base, ADMIN_EMAIL).await;
    caught_up(&client, &base, &admin).await;
    let listed = expense_ids(&get(&client, &base, &asha, "/api/v1/expenses?limit=200").await);
    let sent: BTreeSet<String> = acknowledged.iter().cloned().collect();
    assert_eq!(
        sent.len(),
        acknowledged.len(),
        "an expense acknowledged twice"
    );
    assert_eq!(listed, sent);
    let wallet = get(&client, &base, &asha, "/api/v1/wallet").await;
    let spent = i64::try_from(acknowledged.len()).expect("a count");
    assert_eq!(wallet["balance"], format!("{}.00", 1000 - spent));
    every_read_model_equals_a_rebuild(&client, &base, &admin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_instance_hands_its_workers_over_at_once() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let Some(database) =
        TestDatabase::postgres("a_stopping_instance_hands_its_workers_over_at_once").await
    else {
        return;
    };
    let data = tempfile::tempdir().expect("a data directory");
    let client = client();
    let mut first = start("first", database.url(), data.path());
    wait_until_ready(&client, &first).await;
    let second = start("second", database.url(), data.path());
    wait_until_ready(&client, &second).await;
    // The first one started alone, so it runs every worker.
    let deadline = Instant::now() + Duration::from_secs(10);
    while leads(&client, &first.base)
        .await
        .is_none_or(|l| l.len() != 5 || !l.values().all(|leading| *leading))
    {
        assert!(
            Instant::now() < deadline,
            "the first instance never ran the workers"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // SIGTERM: it drains, stops its workers at a safe point and gives the leases back.
    let asked = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &first.child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let exit = loop {
        if let Some(exit) = first.child.try_wait().expect("the process") {
            break exit;
        }
        assert!(
            asked.elapsed() < Duration::from_secs(10),
            "no clean stop within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success(), "{exit:?}");
    let handed_over = loop {
        let leading = leads(&client, &second.base).await.unwrap_or_default();
        if leading.len() == 5 && leading.values().all(|l| *l) {
            break asked.elapsed();
        }
        // A released lease is taken on the next try, a second apart.
        assert!(
            asked.elapsed() < Duration::from_secs(5),
            "the workers did not move within 5 s: {leading:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    println!("workers handed over {handed_over:?} after SIGTERM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_instance_serves_while_a_worker_instance_runs_every_worker() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let Some(database) =
        TestDatabase::postgres("a_web_instance_serves_while_a_worker_instance_runs").await
    else {
        return;
    };
    let data = tempfile::tempdir().expect("a data directory");
    let client = client();
    let worker = start_as("worker", "worker", database.url(), data.path());
    wait_until_ready(&client, &worker).await;
    let web = start_as("web", "web", database.url(), data.path());
    wait_until_ready(&client, &web).await;

    // The worker instance runs every worker and answers nothing but operations.
    let deadline = Instant::now() + Duration::from_secs(10);
    while leads(&client, &worker.base)
        .await
        .is_none_or(|l| l.len() != 5 || !l.values().all(|leading| *leading))
    {
        assert!(
            Instant::now() < deadline,
            "the worker instance never ran the workers"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, body) = call(
        &client,
        &worker.base,
        Method::GET,
        None,
        "/api/v1/me",
        None,
        None,
    )
    .await
    .expect("answered");
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(
        leads(&client, &web.base).await,
        Some(BTreeMap::new()),
        "a web instance runs no worker"
    );

    // The web instance serves commands, and reads its writes at once, while the
    // projections run on the other instance.
    let asha = customer_with_1000(&client, &web.base, "asha@example.com").await;
    let expense = json!({ "amount": "15", "category": "Food", "description": "tea", "spent_on": "2026-11-10" });
    let written = send(
        &client,
        &web.base,
        Method::POST,
        Some(&asha),
        "/api/v1/expenses",
        &expense,
        StatusCode::CREATED,
    )
    .await;
    let listed = get(&client, &web.base, &asha, "/api/v1/expenses").await;
    assert_eq!(listed["items"][0]["expense_id"], written["expense_id"]);
    let wallet = get(&client, &web.base, &asha, "/api/v1/wallet").await;
    assert_eq!(wallet["balance"], "985.00");
    let log = std::fs::read_to_string(data.path().join("web.log")).expect("a log");
    assert!(
        !log.contains("a read model is behind its writes"),
        "the web instance gave up waiting for its read model to show the write:\n{log}"
    );
}
