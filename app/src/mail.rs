//! Mail the product sends: the templates (tera, a text and an HTML part each, embedded in
//! the binary and checked at start), and the dispatcher that sends what the outbox holds.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use infrastructure::clock::SharedClock;
use infrastructure::mail::{MailError, Mailer, OutgoingMail};
use infrastructure::outbox::Outbox;
use serde_json::Value;
use tokio::sync::{Notify, watch};

/// The outbox kind of a password-reset mail; its payload is `{to, name, link}`.
pub const PASSWORD_RESET: &str = "password_reset";

/// To a customer whose spending crossed a limit: `{to, name, limit, limit_amount, spent,
/// currency, period_start, ticket_link, agent_name?}`.
pub const LIMIT_EXCEEDED: &str = "limit_exceeded";
/// To the agent given a new ticket: `{to, name, customer_name, limit, limit_amount, spent,
/// currency, period_start, ticket_link}`.
pub const TICKET_ASSIGNED: &str = "ticket_assigned";
/// To each admin when a ticket finds no active agent: `{to, name, customer_name, limit,
/// ticket_link}`.
pub const TICKET_WAITING: &str = "ticket_waiting";
/// To a customer at 80% of a limit: `{to, name, limit, limit_amount, spent, currency,
/// period_start}`.
pub const LIMIT_WARNING: &str = "limit_warning";
/// To a customer when a reminder falls due: `{to, name, title, due, skipped, next_due?,
/// link}`.
pub const REMINDER_DUE: &str = "reminder_due";
/// To a customer some days before a recurring payment is recorded: `{to, name, category,
/// description, amount, currency, due, link}`.
pub const PAYMENT_UPCOMING: &str = "payment_upcoming";

/// Every mail's subject (a template too, on one line) and its two templates.
const MAILS: &[(&str, &str, &str, &str)] = &[
    (
        PASSWORD_RESET,
        "Reset your Expense Tracker password",
        include_str!("../templates/mail/password_reset.txt"),
        include_str!("../templates/mail/password_reset.html"),
    ),
    (
        LIMIT_EXCEEDED,
        "You crossed a spending limit",
        include_str!("../templates/mail/limit_exceeded.txt"),
        include_str!("../templates/mail/limit_exceeded.html"),
    ),
    (
        TICKET_ASSIGNED,
        "A new ticket is yours",
        include_str!("../templates/mail/ticket_assigned.txt"),
        include_str!("../templates/mail/ticket_assigned.html"),
    ),
    (
        TICKET_WAITING,
        "A ticket waits for an agent",
        include_str!("../templates/mail/ticket_waiting.txt"),
        include_str!("../templates/mail/ticket_waiting.html"),
    ),
    (
        LIMIT_WARNING,
        "You are close to a spending limit",
        include_str!("../templates/mail/limit_warning.txt"),
        include_str!("../templates/mail/limit_warning.html"),
    ),
    (
        REMINDER_DUE,
        "Reminder: {{ title }}",
        include_str!("../templates/mail/reminder_due.txt"),
        include_str!("../templates/mail/reminder_due.html"),
    ),
    (
        PAYMENT_UPCOMING,
        "Coming up on {{ due }}: {{ category }}, {{ amount }} {{ currency }}",
        include_str!("../templates/mail/payment_upcoming.txt"),
        include_str!("../templates/mail/payment_upcoming.html"),
    ),
];

/// The mail templates, parsed once.
#[derive(Debug)]
pub struct MailTemplates {
    tera: tera::Tera,
}

impl MailTemplates {
    /// Parses every template; a broken one stops the start.
    ///
    /// # Errors
    /// When a template does not parse.
    pub fn load() -> anyhow::Result<Self> {
        let mut tera = tera::Tera::default();
        // HTML parts are escaped; text parts are not.
        tera.autoescape_on(vec![".html"]);
        for (kind, subject, text, html) in MAILS {
            tera.add_raw_template(&format!("{kind}.subject"), subject)
                .with_context(|| format!("mail subject {kind}"))?;
            tera.add_raw_template(&format!("{kind}.txt"), text)
                .with_context(|| format!("mail template {kind}.txt"))?;
            tera.add_raw_template(&format!("{kind}.html"), html)
                .with_context(|| format!("mail template {kind}.html"))?;
        }
        Ok(Self { tera })
    }

    /// Renders the outbox message `kind` with its payload.
    ///
    /// # Errors
    /// When the kind is unknown or the payload lacks what the template needs.
    pub fn render(&self, kind: &str, payload: &Value) -> anyhow::Result<OutgoingMail> {
        if !MAILS.iter().any(|(known, ..)| *known == kind) {
            anyhow::bail!("no mail template for {kind:?}");
        }
        let context = tera::Context::from_serialize(payload).context("mail payload")?;
        let to = payload["to"]
            .as_str()
            .context("the payload names no recipient")?
            .to_owned();
        Ok(OutgoingMail {
            to,
            // A subject is one line whatever the payload holds.
            subject: self
                .tera
                .render(&format!("{kind}.subject"), &context)?
                .replace(['\r', '\n'], " "),
            text: self.tera.render(&format!("{kind}.txt"), &context)?,
            html: self.tera.render(&format!("{kind}.html"), &context)?,
            key: None,
        })
    }
}

/// What one step of the dispatcher did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dispatched {
    /// This many messages were handled (sent, or failed and rescheduled or parked).
    Processed(usize),
    /// Nothing was due.
    Idle,
}

/// Sends what the outbox holds.
#[derive(Debug, Clone)]
pub struct MailDispatcher {
    outbox: Outbox,
    mailer: Arc<dyn Mailer>,
    templates: Arc<MailTemplates>,
    wake: Arc<Notify>,
    clock: SharedClock,
    metrics: Arc<infrastructure::metrics::Metrics>,
}

/// Messages leased per step.
const BATCH: u32 = 20;
/// How often the dispatcher looks for due retries when nobody wakes it.
const TICK: Duration = Duration::from_secs(5);

impl MailDispatcher {
    /// A dispatcher; `wake` is notified whenever a command put a message in the outbox.
    #[must_use]
    pub fn new(
        outbox: Outbox,
        mailer: Arc<dyn Mailer>,
        templates: Arc<MailTemplates>,
        wake: Arc<Notify>,
        clock: SharedClock,
    ) -> Self {
        Self {
            outbox,
            mailer,
            templates,
            wake,
            clock,
            metrics: Arc::default(),
        }
    }

    /// Counts failed sends into `metrics` (the process's set).
    #[must_use]
    pub fn with_metrics(self, metrics: Arc<infrastructure::metrics::Metrics>) -> Self {
        Self { metrics, ..self }
    }

    /// One step: lease due messages, send each, record the outcome.
    ///
    /// # Errors
    /// When the outbox cannot be read or written.
    pub async fn process_batch(&self, now: DateTime<Utc>) -> anyhow::Result<Dispatched> {
        let due = self.outbox.lease_due(now, BATCH).await?;
        if due.is_empty() {
            return Ok(Dispatched::Idle);
        }
        for message in &due {
            let rendered = self.templates.render(&message.kind, &message.payload);
            let sent = match rendered.map(|mail| OutgoingMail {
                key: Some(message.message_id.to_string()),
                ..mail
            }) {
                Ok(mail) => self
                    .mailer
                    .send(&mail)
                    .await
                    .map_err(|e| (e.to_string(), permanent(&e))),
                Err(error) => Err((format!("{error:#}"), true)),
            };
            match sent {
                Ok(()) => self.outbox.mark_sent(message.message_id, now).await?,
                Err((error, permanent)) => {
                    self.metrics.mail_failed();
                    tracing::warn!(message_id = %message.message_id, kind = %message.kind, %error, "mail not sent");
                    if permanent {
                        self.outbox.park(message, &error, now).await?;
                    } else {
                        self.outbox.mark_failed(message, &error, now).await?;
                    }
                }
            }
        }
        Ok(Dispatched::Processed(due.len()))
    }

    /// Runs until `stop` turns true: sends whatever is due, then waits to be woken (or for
    /// the next tick, for retries).
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        // Whatever a dispatcher before this one held when it died is due at once.
        match self.outbox.reclaim_leases(self.clock.now()).await {
            Ok(0) => {}
            Ok(reclaimed) => tracing::info!(reclaimed, "took over mail another dispatcher held"),
            Err(error) => {
                tracing::warn!(%error, "cannot take over mail held by another dispatcher")
            }
        }
        loop {
            loop {
                match self.process_batch(self.clock.now()).await {
                    Ok(Dispatched::Processed(_)) => {}
                    Ok(Dispatched::Idle) => break,
                    Err(error) => {
                        tracing::error!(
                            error = format!("{error:#}"),
                            "mail dispatcher step failed"
                        );
                        break;
                    }
                }
            }
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(TICK) => {}
                _ = stop.wait_for(|stopped| *stopped) => return,
            }
        }
    }
}

fn permanent(error: &MailError) -> bool {
    matches!(error, MailError::Invalid(_) | MailError::Settings(_))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use chrono::TimeZone;
    use infrastructure::event_store::{
        AppendRequest, EventMetadata, EventStore, ExpectedVersion, GroupCommitSettings, NewEvent,
        OutboxMessage, SqlEventStore, StreamId,
    };
    use infrastructure::outbox::RetryPolicy;
    use infrastructure::testing::TestDatabase;
    use serde_json::json;
    use uuid::Uuid;

    use super::*;

    /// Fails the first `failures` sends, then delivers; remembers what it delivered.
    #[derive(Debug, Default)]
    struct FlakyMailer {
        failures: Mutex<u32>,
        delivered: Mutex<Vec<OutgoingMail>>,
    }

    #[async_trait::async_trait]
    impl Mailer for FlakyMailer {
        async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError> {
            let mut failures = self.failures.lock().expect("lock");
            if *failures > 0 {
                *failures -= 1;
                return Err(MailError::Transport("connection refused".into()));
            }
            self.delivered.lock().expect("lock").push(mail.clone());
            Ok(())
        }
    }

    fn at(seconds: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 21, 9, 0, 0)
            .single()
            .expect("valid")
            + chrono::Duration::seconds(seconds)
    }

    const POLICY: RetryPolicy = RetryPolicy {
        first_delay: Duration::from_secs(10),
        max_delay: Duration::from_secs(60),
        max_attempts: 3,
        lease: Duration::from_secs(30),
    };

    fn reset_mail() -> Value {
        json!({ "to": "asha@example.com", "name": "Asha", "link": "https://x/reset-password?token=ab" })
    }

    /// A dispatcher over a fresh database whose outbox holds one reset mail with `payload`,
    /// appended with an event as the product does.
    async fn dispatcher_with_one_mail(
        mailer: Arc<dyn Mailer>,
        payload: Value,
    ) -> (MailDispatcher, Outbox, TestDatabase) {
        let database = TestDatabase::sqlite();
        let connected = database.connect().await;
        let store = SqlEventStore::open(connected.clone(), GroupCommitSettings::default())
            .await
            .expect("store");
        let mut request = AppendRequest::new(
            StreamId::parse("user-1").expect("valid"),
            ExpectedVersion::NoStream,
            EventMetadata {
                command_id: Uuid::new_v4(),
                correlation_id: Uuid::new_v4(),
                causation_id: None,
                actor: "test".into(),
                recorded_at: at(0),
                request_id: None,
            },
            vec![NewEvent {
                event_id: Uuid::new_v4(),
                event_type: "PasswordResetRequested".into(),
                schema_version: 1,
                payload: serde_json::value::RawValue::from_string("{}".into()).expect("json"),
            }],
        );
        request.outbox.push(OutboxMessage {
            message_id: Uuid::new_v4(),
            kind: PASSWORD_RESET.into(),
            payload,
        });
        store.append(request).await.expect("append");
        let outbox = Outbox::new(connected, POLICY);
        let templates = Arc::new(MailTemplates::load().expect("templates"));
        let dispatcher = MailDispatcher::new(
            outbox.clone(),
            mailer,
            templates,
            Arc::new(Notify::new()),
            SharedClock::default(),
        );
        (dispatcher, outbox, database)
    }

    #[tokio::test]
    async fn a_failing_mail_is_retried_later_and_then_sent_once() {
        let mailer = Arc::new(FlakyMailer {
            failures: Mutex::new(1),
            ..FlakyMailer::default()
        });
        let (dispatcher, outbox, _database) =
            dispatcher_with_one_mail(mailer.clone(), reset_mail()).await;

        assert_eq!(
            dispatcher.process_batch(at(1)).await.expect("step"),
            Dispatched::Processed(1)
        );
        assert_eq!(
            dispatcher.process_batch(at(5)).await.expect("step"),
            Dispatched::Idle,
            "not due before 10 s"
        );
        assert_eq!(
            dispatcher.process_batch(at(12)).await.expect("step"),
            Dispatched::Processed(1)
        );
        assert_eq!(
            dispatcher.process_batch(at(3600)).await.expect("step"),
            Dispatched::Idle,
            "sent once"
        );
        assert_eq!(mailer.delivered.lock().expect("lock").len(), 1);
        assert_eq!(outbox.depth().await.expect("depth"), 0);
    }

    #[tokio::test]
    async fn mail_held_by_a_dispatcher_that_died_is_sent_by_the_next_one_at_once() {
        let mailer = Arc::new(FlakyMailer::default());
        let (dispatcher, outbox, _database) =
            dispatcher_with_one_mail(mailer.clone(), reset_mail()).await;
        // A dispatcher leased the mail at 1 s and died before sending it.
        assert_eq!(outbox.lease_due(at(1), 10).await.expect("leased").len(), 1);
        assert_eq!(
            dispatcher.process_batch(at(2)).await.expect("step"),
            Dispatched::Idle,
            "held for the lease"
        );
        // The next one takes over: the mail is due at once, sent once.
        assert_eq!(outbox.reclaim_leases(at(2)).await.expect("reclaimed"), 1);
        assert_eq!(
            dispatcher.process_batch(at(2)).await.expect("step"),
            Dispatched::Processed(1)
        );
        assert_eq!(outbox.reclaim_leases(at(3)).await.expect("nothing left"), 0);
        assert_eq!(mailer.delivered.lock().expect("lock").len(), 1);
    }

    #[tokio::test]
    async fn a_mail_that_keeps_failing_is_parked_and_an_admin_can_retry_it() {
        let mailer = Arc::new(FlakyMailer {
            failures: Mutex::new(3),
            ..FlakyMailer::default()
        });
        let (dispatcher, outbox, _database) =
            dispatcher_with_one_mail(mailer.clone(), reset_mail()).await;
        for second in [1, 20, 60] {
            assert_eq!(
                dispatcher.process_batch(at(second)).await.expect("step"),
                Dispatched::Processed(1)
            );
        }
        let parked = outbox.parked().await.expect("parked");
        assert_eq!(parked.len(), 1);
        assert_eq!(parked[0].attempts, 3);
        assert!(
            parked[0]
                .last_error
                .as_deref()
                .is_some_and(|e| e.contains("connection refused"))
        );
        assert_eq!(
            dispatcher.process_batch(at(10_000)).await.expect("step"),
            Dispatched::Idle,
            "parked stays"
        );

        assert!(
            outbox
                .retry_parked(parked[0].message_id, at(10_001))
                .await
                .expect("retry")
        );
        assert_eq!(
            dispatcher.process_batch(at(10_002)).await.expect("step"),
            Dispatched::Processed(1)
        );
        assert_eq!(mailer.delivered.lock().expect("lock").len(), 1);
        assert!(outbox.parked().await.expect("parked").is_empty());
    }

    #[tokio::test]
    async fn a_mail_that_can_never_be_sent_is_parked_at_once() {
        // Without a recipient the mail cannot even be rendered: retrying cannot help.
        let mailer = Arc::new(FlakyMailer::default());
        let (dispatcher, outbox, _database) = dispatcher_with_one_mail(
            mailer.clone(),
            json!({ "name": "Asha", "link": "https://x/r" }),
        )
        .await;
        assert_eq!(
            dispatcher.process_batch(at(1)).await.expect("step"),
            Dispatched::Processed(1)
        );
        assert_eq!(outbox.parked().await.expect("parked").len(), 1);
        assert!(mailer.delivered.lock().expect("lock").is_empty());
    }

    #[test]
    fn every_template_renders_both_parts_and_escapes_html() {
        let templates = MailTemplates::load().expect("templates parse");
        let mail = templates
            .render(
                PASSWORD_RESET,
                &json!({ "to": "asha@example.com", "name": "Asha <b>", "link": "http://x/reset-password?token=abc" }),
            )
            .expect("renders");
        assert_eq!(mail.to, "asha@example.com");
        assert!(mail.text.contains("http://x/reset-password?token=abc"));
        assert!(mail.text.contains("Asha <b>"));
        assert!(mail.html.contains("Asha &lt;b&gt;"));
    }

    #[test]
    fn an_unknown_kind_or_a_payload_without_recipient_is_an_error() {
        let templates = MailTemplates::load().expect("templates parse");
        assert!(
            templates
                .render("nonsense", &json!({ "to": "a@example.com" }))
                .is_err()
        );
        assert!(
            templates
                .render(PASSWORD_RESET, &json!({ "name": "A", "link": "x" }))
                .is_err()
        );
    }
}
