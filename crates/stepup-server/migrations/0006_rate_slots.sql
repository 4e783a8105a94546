-- The OTP send slots become rate slots for every limit (sends, anonymous sends per client and in all, recovery
-- code generations, nonces), keyed by what they limit, and purged when they free.
ALTER TABLE otp_send_slots RENAME TO rate_slots;
ALTER TABLE rate_slots RENAME COLUMN destination TO slot_key;
ALTER TABLE rate_slots ADD COLUMN expires_at BIGINT NOT NULL DEFAULT 0;
-- Whose recovery codes were ever created: the first read creates them exactly once, however many race.
CREATE TABLE recovery_code_sets (
    user_id TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL
);
INSERT INTO recovery_code_sets (user_id, created_at) SELECT DISTINCT user_id, 0 FROM recovery_codes;
