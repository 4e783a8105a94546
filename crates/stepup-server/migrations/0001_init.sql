-- One schema for SQLite and PostgreSQL, through sqlx's Any driver: TEXT and BIGINT only (flags are 0/1, times
-- are Unix seconds).
CREATE TABLE signing_keys (
    environment_id TEXT NOT NULL,
    slot TEXT NOT NULL,
    kid TEXT NOT NULL,
    secret_key TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (environment_id, slot)
);
CREATE TABLE server_secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    environment_id TEXT NOT NULL,
    email TEXT,
    phone_number TEXT,
    created_at BIGINT NOT NULL
);
CREATE TABLE credentials (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    format TEXT NOT NULL,
    email TEXT,
    phone_number TEXT,
    phone_country_code TEXT,
    iso_country_code TEXT,
    address TEXT,
    chain TEXT,
    wallet_name TEXT,
    wallet_provider TEXT,
    embedded BIGINT NOT NULL DEFAULT 0,
    sign_in_enabled BIGINT NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL
);
CREATE INDEX credentials_by_user ON credentials (user_id);
CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    environment_id TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE otp_verifications (
    id TEXT PRIMARY KEY,
    environment_id TEXT NOT NULL,
    user_id TEXT,
    channel TEXT NOT NULL,
    destination TEXT NOT NULL,
    code_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    failed_attempts BIGINT NOT NULL DEFAULT 0,
    used BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX otp_by_destination ON otp_verifications (environment_id, destination, created_at);
CREATE TABLE outbox (
    id TEXT PRIMARY KEY,
    environment_id TEXT NOT NULL,
    recipient TEXT NOT NULL,
    channel TEXT NOT NULL,
    code TEXT NOT NULL,
    verification_id TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX outbox_by_recipient ON outbox (environment_id, recipient, created_at);
CREATE TABLE mfa_devices (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    secret TEXT NOT NULL,
    verified BIGINT NOT NULL DEFAULT 0,
    last_step BIGINT,
    alias TEXT,
    created_at BIGINT NOT NULL,
    verified_at BIGINT
);
CREATE INDEX mfa_devices_by_user ON mfa_devices (user_id);
CREATE TABLE recovery_codes (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    code_hash TEXT NOT NULL,
    used BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);
CREATE INDEX recovery_codes_by_user ON recovery_codes (user_id);
CREATE TABLE mfa_lockouts (
    user_id TEXT PRIMARY KEY,
    failures BIGINT NOT NULL DEFAULT 0,
    locked_until BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE consumed_tokens (
    jti TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE TABLE nonces (
    nonce TEXT PRIMARY KEY,
    environment_id TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    used BIGINT NOT NULL DEFAULT 0
);
