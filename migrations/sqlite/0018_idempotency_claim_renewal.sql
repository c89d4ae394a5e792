-- A claim left unanswered (its request died with its instance, or failed on the server's
-- side) is taken over by the next retry instead of being deleted, so that the key keeps
-- the instant it was first claimed: the ids a request makes, its command ids among them,
-- are derived from that instant and the key, and a retry that takes the claim over makes
-- the same ones again. The event store then recognises a command that did land before the
-- crash, and it is not applied a second time.
--
-- When the current holder took the claim; NULL means at created_at_us.
ALTER TABLE idempotency_keys ADD COLUMN claimed_at_us BIGINT;
