-- Receipt images and PDFs. The bytes live in the object store (local files or S3) under a
-- random, unguessable key; this table says whose each one is and what it holds, so that
-- it is shown only to its owner, the agents of their tickets and auditors.
CREATE TABLE receipts (
    receipt_id     TEXT    PRIMARY KEY,
    owner_id       TEXT    NOT NULL,
    content_type   TEXT    NOT NULL,
    size_bytes     BIGINT  NOT NULL,
    object_key     TEXT    NOT NULL,
    stored_at_us   BIGINT  NOT NULL
);
