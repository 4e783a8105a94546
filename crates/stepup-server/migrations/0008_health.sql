-- `GET /health` writes here: a server whose database takes no writes is not healthy, though it still reads.
CREATE TABLE health_checks (
    id TEXT PRIMARY KEY,
    checked_at BIGINT NOT NULL
);
