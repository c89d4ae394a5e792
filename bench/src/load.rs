//! A small HTTP/1.1 load generator: one hyper connection per simulated client, each
//! sending its request again as soon as the answer is in (closed loop), or on a schedule
//! (open loop, for latency at a given rate). It shares the machine with the server, so it
//! is kept lean: no pool, no redirects, no TLS, the headers written once per connection.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderMap, HeaderValue};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// What one connection sends, again and again; its headers are written once.
#[derive(Debug, Clone)]
pub struct Call {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
    /// The status that counts as done.
    expect: StatusCode,
}

impl Call {
    /// `GET path`, expecting 200.
    ///
    /// # Errors
    /// When the path or the token cannot go into a request.
    pub fn get(path: &str, token: Option<&str>) -> anyhow::Result<Self> {
        Self::new(Method::GET, path, token, None, StatusCode::OK)
    }

    /// `POST path` with a JSON body, expecting 201.
    ///
    /// # Errors
    /// When the path or the token cannot go into a request.
    pub fn post(path: &str, token: &str, body: &serde_json::Value) -> anyhow::Result<Self> {
        Self::new(
            Method::POST,
            path,
            Some(token),
            Some(body),
            StatusCode::CREATED,
        )
    }

    fn new(
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&serde_json::Value>,
        expect: StatusCode,
    ) -> anyhow::Result<Self> {
        let mut headers = HeaderMap::new();
        if let Some(token) = token {
            headers.insert(
                AUTHORIZATION,
                HeaderValue::try_from(format!("Bearer {token}"))?,
            );
        }
        if body.is_some() {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        Ok(Self {
            method,
            uri: path.parse()?,
            headers,
            body: body.map(|b| Bytes::from(b.to_string())).unwrap_or_default(),
            expect,
        })
    }

    fn request(&self, headers: &HeaderMap) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(self.body.clone()));
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.uri.clone();
        *request.headers_mut() = headers.clone();
        request
    }
}

/// What a load run saw.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Answers with the expected status.
    pub done: u64,
    /// Other answers and failed requests.
    pub failed: u64,
    /// The first unexpected answer, to say what went wrong.
    pub first_failure: Option<String>,
    pub elapsed: Duration,
    /// Every done request's latency, in microseconds, sorted.
    pub latencies_us: Vec<u32>,
}

impl Outcome {
    /// Done requests per second.
    #[must_use]
    pub fn rate(&self) -> f64 {
        self.done as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The latency below which `percent` of the done requests answered, in milliseconds.
    #[must_use]
    pub fn percentile_ms(&self, percent: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let rank = ((percent / 100.0) * (self.latencies_us.len() - 1) as f64).round() as usize;
        f64::from(self.latencies_us[rank.min(self.latencies_us.len() - 1)]) / 1000.0
    }

    fn merge(&mut self, other: Self) {
        self.done += other.done;
        self.failed += other.failed;
        if self.first_failure.is_none() {
            self.first_failure = other.first_failure;
        }
        self.latencies_us.extend(other.latencies_us);
    }
}

/// How each connection paces its requests.
#[derive(Debug, Clone, Copy)]
pub enum Pace {
    /// The next request as soon as the answer is in.
    AsFastAsAnswered,
    /// `per_second` requests per second over all connections, on a fixed schedule; a
    /// request's latency counts from when it was due, so a slow answer that delays the
    /// next request is charged to that request too (no coordinated omission).
    Rate { per_second: f64 },
}

/// Sends each of `calls` on a connection of its own for `seconds`.
///
/// # Errors
/// When a connection cannot be opened.
pub async fn run(
    address: SocketAddr,
    calls: &[Call],
    seconds: f64,
    pace: Pace,
) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let until = started + Duration::from_secs_f64(seconds);
    let mut tasks = tokio::task::JoinSet::new();
    let connections = calls.len().max(1);
    for (n, call) in calls.iter().enumerate() {
        let call = call.clone();
        let interval = match pace {
            Pace::AsFastAsAnswered => None,
            Pace::Rate { per_second } => Some(Duration::from_secs_f64(
                connections as f64 / per_second.max(1e-9),
            )),
        };
        // Spread the scheduled connections' first requests over one interval.
        let offset = interval.map_or(Duration::ZERO, |i| i.mul_f64(n as f64 / connections as f64));
        tasks.spawn(connection(address, call, started + offset, until, interval));
    }
    let mut outcome = Outcome::default();
    while let Some(joined) = tasks.join_next().await {
        outcome.merge(joined??);
    }
    outcome.elapsed = started.elapsed();
    outcome.latencies_us.sort_unstable();
    Ok(outcome)
}

async fn connection(
    address: SocketAddr,
    call: Call,
    first: Instant,
    until: Instant,
    interval: Option<Duration>,
) -> anyhow::Result<Outcome> {
    let stream = TcpStream::connect(address).await?;
    stream.set_nodelay(true)?;
    let (mut sender, driver) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let driver = tokio::spawn(driver);
    let mut headers = call.headers.clone();
    headers.insert(HOST, HeaderValue::try_from(address.to_string())?);
    let mut outcome = Outcome::default();
    let mut due = first;
    loop {
        if interval.is_some() {
            tokio::time::sleep_until(due.into()).await;
        }
        if Instant::now() >= until {
            break;
        }
        let sent = if interval.is_some() {
            due
        } else {
            Instant::now()
        };
        sender.ready().await?;
        let answer = sender.send_request(call.request(&headers)).await;
        match answer {
            Ok(response) => {
                let status = response.status();
                let body = response.into_body().collect().await?.to_bytes();
                if status == call.expect {
                    outcome.done += 1;
                    let micros = sent.elapsed().as_micros();
                    outcome
                        .latencies_us
                        .push(u32::try_from(micros).unwrap_or(u32::MAX));
                } else {
                    outcome.failed += 1;
                    outcome.first_failure.get_or_insert_with(|| {
                        format!("{status}: {}", String::from_utf8_lossy(&body))
                    });
                }
            }
            Err(error) => {
                outcome.failed += 1;
                outcome
                    .first_failure
                    .get_or_insert_with(|| error.to_string());
                break;
            }
        }
        if let Some(interval) = interval {
            due += interval;
        }
    }
    drop(sender);
    driver.abort();
    Ok(outcome)
}
