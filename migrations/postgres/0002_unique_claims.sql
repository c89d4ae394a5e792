-- Values that must belong to one stream only, such as an email address across accounts.
-- A claim is written in the same transaction as the events that use the value, by the
-- event store's committer, so two concurrent sign-ups with one address cannot both
-- succeed. Values are kept only as SHA-256 digests of their normalised form, never in
-- clear, and a claim is released (its row deleted) when the owner gives the value up or
-- has their personal data erased: unlike events, claims are current state.
CREATE TABLE unique_claims (
    -- What kind of value, e.g. 'email' or 'username'.
    scope       TEXT NOT NULL,
    -- SHA-256 of the normalised value.
    value_hash  BYTEA NOT NULL,
    -- The stream that owns the value, e.g. 'user-<uuid>'.
    stream_id   TEXT NOT NULL,
    PRIMARY KEY (scope, value_hash)
);
