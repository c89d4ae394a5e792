//! What only SQLite needs shown: its committer remembers the log instead of reading it
//! before every batch, so a second writer on the same file (an admin command run beside the
//! server) must never make it lose, double or misnumber an event.

use infrastructure::event_store::{AppendError, EventStore, ExpectedVersion, Position};
use infrastructure::testing::TestDatabase;

use crate::support::{numbered, open, positions, read_everything, request, stream};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_writer_on_the_same_file_never_misleads_the_first() {
    let database = TestDatabase::sqlite();
    let server = open(&database).await;
    let admin_command = open(&database).await;

    server
        .append(request("wallet-a", ExpectedVersion::NoStream, numbered(1)))
        .await
        .expect("the server appends");
    // Behind the server's back: the stream grows and the head moves.
    admin_command
        .append(request("wallet-a", ExpectedVersion::Exact(1), numbered(1)))
        .await
        .expect("the other writer appends to the same stream");
    admin_command
        .append(request("users", ExpectedVersion::NoStream, numbered(2)))
        .await
        .expect("the other writer appends elsewhere");

    let stale = server
        .append(request("wallet-a", ExpectedVersion::Exact(1), numbered(1)))
        .await;
    assert!(
        matches!(stale, Err(AppendError::Conflict { actual: 2, .. })),
        "the server learns the real version: {stale:?}"
    );
    let current = server
        .append(request("wallet-a", ExpectedVersion::Exact(2), numbered(1)))
        .await
        .expect("the right version appends although the server remembered 1");
    assert_eq!(
        (current.last_version, current.first_position),
        (3, Position(5))
    );
    let elsewhere = server
        .append(request("wallet-b", ExpectedVersion::NoStream, numbered(1)))
        .await
        .expect("a new stream gets the next free position");
    assert_eq!(elsewhere.first_position, Position(6));

    let all = read_everything(&server).await;
    assert_eq!(positions(&all), (1..=6).collect::<Vec<_>>());
    let versions: Vec<u64> = server
        .read_stream(&stream("wallet-a"), 0)
        .await
        .expect("read")
        .iter()
        .map(|e| e.version)
        .collect();
    assert_eq!(versions, vec![1, 2, 3]);
}
