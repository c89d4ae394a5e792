//! Read-your-writes: a command answers as soon as its events are stored, and a read waits
//! until the read models have applied every write acknowledged before the read began, so
//! that what anyone was told is done, on any instance, shows in what they read next. See
//! ADR 0026.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use infrastructure::event_store::{EventStore, Position};
use projections::ProjectionStatus;
use tokio::sync::watch;

/// The longest a read waits for its read models.
const WAIT: Duration = Duration::from_secs(5);

/// Where each projection stands, as the local runner last saw it.
#[derive(Debug, Clone)]
pub struct ReadModels {
    progress: watch::Receiver<BTreeMap<String, ProjectionStatus>>,
    /// The live read models' projections (the runner's standings also list a rebuild's
    /// twins, which nobody reads).
    live: Arc<[String]>,
    store: Arc<dyn EventStore>,
}

impl ReadModels {
    /// The read models `live`, whose progress `progress` reports, fed from `store`.
    #[must_use]
    pub fn new(
        progress: watch::Receiver<BTreeMap<String, ProjectionStatus>>,
        live: impl IntoIterator<Item = String>,
        store: Arc<dyn EventStore>,
    ) -> Self {
        Self {
            progress,
            live: live.into_iter().collect(),
            store,
        }
    }

    /// Waits until `projection` has applied `position` (true), or stopped on a failure or
    /// the wait ran out (false, logged: the caller goes on with what is there).
    pub async fn wait_for(&self, projection: &str, position: Position) -> bool {
        self.wait_until(position, std::slice::from_ref(&projection.to_owned()))
            .await
    }

    /// Waits until every live read model has applied every write acknowledged before this
    /// call (true), or one stopped on a failure or the wait ran out (false, logged). What a
    /// request that reads a read model does first.
    pub async fn show_acknowledged_writes(&self) -> bool {
        match self.store.acknowledged_head().await {
            Ok(head) => self.wait_until(head, &self.live).await,
            Err(error) => {
                tracing::warn!(%error, "cannot tell which writes a read must show");
                false
            }
        }
    }

    async fn wait_until(&self, position: Position, projections: &[String]) -> bool {
        let standing = |statuses: &BTreeMap<String, ProjectionStatus>, failed_too: bool| {
            projections.iter().all(|name| {
                statuses
                    .get(name)
                    .is_some_and(|s| s.position >= position || (failed_too && s.failure.is_some()))
            })
        };
        if standing(&self.progress.borrow(), false) {
            return true;
        }
        let mut progress = self.progress.clone();
        let waited =
            tokio::time::timeout(WAIT, progress.wait_for(|statuses| standing(statuses, true)))
                .await;
        let reached = matches!(waited, Ok(Ok(statuses)) if standing(&statuses, false));
        if !reached {
            tracing::warn!(?projections, %position, "a read model is behind its writes");
        }
        reached
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use domain::money::Currency;
    use domain::user::Role;
    use domain::wallet::WalletCommand;
    use serde_json::{Value, json};

    use crate::test_support::{fresh, on_wallet, person};
    use crate::web::PageTemplates;

    /// The product served on a port, with its read models fed only when the test says so.
    #[tokio::test]
    async fn a_command_answers_before_its_read_model_and_the_next_read_waits_for_it() {
        let data = tempfile::tempdir().expect("a data directory");
        let (state, runner) = fresh(&data, |_| {}).await;
        let asha = person(&state, Role::Customer, "Asha").await;
        let open = WalletCommand::Open {
            owner: asha,
            currency: Currency::parse("INR").expect("INR"),
        };
        on_wallet(&state, asha, vec![open]).await;
        runner.catch_up().await.expect("read models fed");
        let token = state
            .tokens
            .issue(asha.0, state.now())
            .await
            .expect("a token")
            .token;
        let templates = Arc::new(PageTemplates::load().expect("templates"));
        let router = crate::http::router(state.clone(), templates);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        let base = format!("http://{}", listener.local_addr().expect("bound"));
        tokio::spawn(async move { axum::serve(listener, router).await });
        let client = reqwest::Client::new();

        let recorded: Value = client
            .post(format!("{base}/api/v1/expenses"))
            .bearer_auth(&token)
            .json(&json!({ "amount": "12", "category": "Food", "description": "tea", "spent_on": state.now().date_naive().to_string() }))
            .send()
            .await
            .expect("answered")
            .json()
            .await
            .expect("json");
        assert!(recorded["expense_id"].is_string(), "{recorded}");

        // Nothing has fed the read model since: the list waits for it.
        let listing = tokio::spawn({
            let (client, base, token) = (client.clone(), base.clone(), token.clone());
            async move {
                client
                    .get(format!("{base}/api/v1/expenses"))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .expect("answered")
                    .json::<Value>()
                    .await
                    .expect("json")
            }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !listing.is_finished(),
            "the read did not wait for its write"
        );
        runner.catch_up().await.expect("read models fed");
        let listed = listing.await.expect("joined");
        assert_eq!(
            listed["items"][0]["expense_id"], recorded["expense_id"],
            "{listed}"
        );
    }
}
