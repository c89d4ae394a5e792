-- One encryption key per person (crypto-shredding). Name, email and mobile inside events are
-- stored encrypted with their owner's key; erasing the person destroys the key, after which
-- the events remain, verifiable byte for byte, but their personal data can never be read.
-- On erasure the key is overwritten and the table vacuumed, so no old row version keeps it.
CREATE TABLE personal_data_keys (
    -- The person: a user id.
    subject        TEXT    PRIMARY KEY,
    -- 32 random bytes (XChaCha20-Poly1305); NULL once erased.
    key            BYTEA,
    created_at_us  BIGINT  NOT NULL,
    erased_at_us   BIGINT
);
