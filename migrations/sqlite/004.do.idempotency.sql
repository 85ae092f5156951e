-- Idempotency keys: the first request with a key is applied and its answer stored here in the
-- same transaction as its write; a repeat gets the stored answer. Purged after the TTL.
CREATE TABLE idempotency_keys (
  key         TEXT    PRIMARY KEY CHECK (length(key) BETWEEN 1 AND 255),
  fingerprint TEXT    NOT NULL, -- sha256 of method, URL and body
  status      INTEGER NOT NULL,
  body        TEXT    NOT NULL,
  created_at  TEXT    NOT NULL
) STRICT;
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
