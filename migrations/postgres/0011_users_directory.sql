-- The `users` read model: the directory of accounts admins see. Derived from the user
-- streams like every rm_ table, and rebuilt from them.
--
-- Personal data stays sealed here as it is in the log (ADR 0006): `profile` is the sealed
-- value copied from the registration, opened with the person's key only when an admin
-- reads the directory. Erasing a person clears it; once their key is gone it would not
-- open anyway.
CREATE TABLE rm_users (
    user_id          TEXT    PRIMARY KEY,
    -- 'customer', 'agent', 'admin' or 'auditor'.
    role             TEXT    NOT NULL,
    -- The sealed profile (name, email, mobile, gender, username); NULL once erased.
    profile          TEXT,
    -- 0 while an admin keeps the account deactivated.
    active           BIGINT NOT NULL,
    erased           BIGINT NOT NULL,
    -- 'self_sign_up', 'admin' (with the admin's id) or 'operator'.
    registered_by    TEXT    NOT NULL,
    registered_by_id TEXT,
    registered_at_us BIGINT NOT NULL,
    -- The log position of the registration: the directory's stable order.
    registered_at    BIGINT NOT NULL,
    password_changed_at_us BIGINT
);
CREATE INDEX rm_users_by_role ON rm_users (role, registered_at);
