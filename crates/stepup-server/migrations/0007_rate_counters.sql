-- Fixed-window counters for the large limits (anonymous sends per client and in all, nonces): one row per key,
-- counted by one conditional upsert, purged when its window ends.
CREATE TABLE rate_counters (
    environment_id TEXT NOT NULL,
    counter_key TEXT NOT NULL,
    count BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (environment_id, counter_key)
);
