//! The adapters' tests, on real databases: the event store's contract, run against SQLite
//! and against PostgreSQL, each test on a fresh database, and the database plumbing.
//! PostgreSQL runs need `TEST_POSTGRES_URL` (see `infrastructure::testing`).

mod access_tokens;
mod database;
mod event_store_contract;
mod idempotency;
mod login_throttle;
mod postgres_only;
mod sqlite_only;
mod support;
mod tamper_evidence;
mod web_sessions;

/// Generates one test per contract function and backend.
macro_rules! contract_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let database = infrastructure::testing::TestDatabase::sqlite();
                    crate::$name(crate::support::open(&database).await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(database) = infrastructure::testing::TestDatabase::postgres(stringify!($name)).await else {
                        return;
                    };
                    crate::$name(crate::support::open(&database).await).await;
                }
            )*
        }
    };
}

use event_store_contract::*;
use tamper_evidence::*;

contract_tests!(
    a_new_stream_gets_versions_from_one_and_the_next_positions,
    payload_and_metadata_come_back_exactly_as_appended,
    a_wrong_expected_version_is_a_conflict_and_writes_nothing,
    any_version_appends_whatever_the_stream_holds,
    retrying_a_command_returns_the_original_outcome_and_writes_nothing,
    a_retried_command_with_any_version_is_stored_once,
    the_same_command_id_on_another_stream_is_a_new_append,
    an_empty_batch_is_refused,
    a_stored_event_id_fails_only_the_append_that_reuses_it,
    reading_a_stream_from_a_version_skips_the_earlier_events,
    the_global_log_is_read_in_pages_in_position_order,
    racing_appenders_on_one_stream_produce_exactly_one_winner,
    sixty_four_concurrent_appenders_give_contiguous_positions_and_versions,
    a_follower_running_during_concurrent_appends_sees_every_event_once_in_order,
    the_head_watch_wakes_a_waiting_reader,
    the_schema_refuses_updates_and_deletes_of_events,
    a_value_claimed_by_one_stream_refuses_another_stream,
    concurrent_claims_on_one_value_let_exactly_one_through,
    a_released_value_can_be_claimed_again,
    a_stream_may_claim_what_it_already_owns,
    claims_keep_no_readable_value,
    an_untouched_log_verifies_and_its_seal_matches,
    an_altered_event_is_named_by_its_position_and_stream,
    an_event_inserted_behind_the_application_is_named,
    a_removed_event_is_named_by_its_position,
    removing_the_newest_events_is_caught_against_the_last_seal,
    a_rewritten_chain_is_caught_by_a_seal_kept_outside,
    events_stored_before_the_chain_are_chained_once_at_start,
    a_chain_value_cannot_be_changed_through_the_application_role,
);
