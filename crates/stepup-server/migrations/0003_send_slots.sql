-- The OTP send limit as claimable slots: a send claims a free or expired slot in one conditional upsert, so
-- concurrent sends (on any replica) can never exceed the limit.
CREATE TABLE otp_send_slots (
    environment_id TEXT NOT NULL,
    destination TEXT NOT NULL,
    slot BIGINT NOT NULL,
    sent_at BIGINT NOT NULL,
    PRIMARY KEY (environment_id, destination, slot)
);
