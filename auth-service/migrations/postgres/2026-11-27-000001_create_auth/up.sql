-- Portable types only (TEXT ids, TIMESTAMP in UTC, BIGINT), mirrored by the SQLite tree.

CREATE TABLE users (
    id                 TEXT PRIMARY KEY,
    username           TEXT NOT NULL,
    -- NFKC + case folding of username: what uniqueness is decided on.
    username_key       TEXT NOT NULL,
    email              TEXT NOT NULL,
    -- Lower-cased email.
    email_key          TEXT NOT NULL,
    password_hash      TEXT NOT NULL,
    -- Space-separated role names.
    roles              TEXT NOT NULL,
    is_active          BOOLEAN NOT NULL,
    -- Access tokens issued before this instant are revoked (log out everywhere, deactivation).
    tokens_valid_after TIMESTAMP,
    created_at         TIMESTAMP NOT NULL,
    updated_at         TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX users_username_key_idx ON users (username_key);
CREATE UNIQUE INDEX users_email_key_idx ON users (email_key);

CREATE TABLE sessions (
    id                   TEXT PRIMARY KEY,
    user_id              TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- jti of the one refresh token that may be rotated now.
    refresh_jti          TEXT NOT NULL,
    -- jti of the token it replaced, accepted again within the grace window.
    previous_refresh_jti TEXT,
    -- Rotations so far.
    generation           BIGINT NOT NULL,
    -- When the current refresh token was issued (its iat).
    refreshed_at         TIMESTAMP NOT NULL,
    -- jti of the newest access token, denied with the session when it is revoked.
    access_jti           TEXT NOT NULL,
    created_at           TIMESTAMP NOT NULL,
    last_used_at         TIMESTAMP NOT NULL,
    expires_at           TIMESTAMP NOT NULL,
    revoked_at           TIMESTAMP,
    revoked_reason       TEXT,
    user_agent           TEXT NOT NULL,
    ip                   TEXT NOT NULL
);
CREATE INDEX sessions_user_id_idx ON sessions (user_id, created_at);

-- Outbox of revocations: written in the same transaction as the change that caused them,
-- published to the revocation store afterwards, retried until it is.
CREATE TABLE revocations (
    id           TEXT PRIMARY KEY,
    -- token | session | user
    kind         TEXT NOT NULL,
    subject      TEXT NOT NULL,
    -- The cut-off (seconds since the epoch) for kind = user; 0 otherwise.
    not_before   BIGINT NOT NULL,
    -- When every token it covers has expired; the row is deleted after that.
    expires_at   TIMESTAMP NOT NULL,
    published_at TIMESTAMP
);
CREATE INDEX revocations_pending_idx ON revocations (expires_at) WHERE published_at IS NULL;
CREATE INDEX revocations_expires_at_idx ON revocations (expires_at);

-- Failed-login counters in fixed windows, per account and per account + client address.
CREATE TABLE login_attempts (
    key               TEXT PRIMARY KEY,
    failures          INTEGER NOT NULL,
    window_started_at TIMESTAMP NOT NULL
);
CREATE INDEX login_attempts_window_idx ON login_attempts (window_started_at);
