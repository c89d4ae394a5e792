-- One encryption key per person (crypto-shredding). Name, email and mobile inside events are
-- stored encrypted with their owner's key; erasing the person destroys the key, after which
-- the events remain, verifiable byte for byte, but their personal data can never be read.
-- The key is overwritten and its page wiped (secure_delete, WAL checkpoint) on erasure.
CREATE TABLE personal_data_keys (
    -- The person: a user id.
    subject        TEXT    PRIMARY KEY,
    -- 32 random bytes (XChaCha20-Poly1305); NULL once erased.
    key            BLOB,
    created_at_us  INTEGER NOT NULL,
    erased_at_us   INTEGER
);
