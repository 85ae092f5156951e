-- Users, their credit balance and its history, and the daily grant.

CREATE TABLE users (
  id                 INTEGER PRIMARY KEY,
  email              TEXT    NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
  -- The email lowercased by the service: one account per address in any letter case.
  email_key          TEXT    NOT NULL UNIQUE,
  name               TEXT    NOT NULL CHECK (length(trim(name)) > 0),
  credits            INTEGER NOT NULL DEFAULT 0 CHECK (credits >= 0),
  created_at         TEXT    NOT NULL,
  credits_updated_at TEXT    NOT NULL
) STRICT;

-- Every change of a credit balance, written in the same transaction as the change: a user's
-- credits always equal the sum of their entries' deltas. Append-only.
CREATE TABLE credit_entries (
  id            INTEGER PRIMARY KEY,
  user_id       INTEGER NOT NULL REFERENCES users (id),
  kind          TEXT    NOT NULL CHECK (kind IN ('add', 'deduct', 'reset', 'external_update', 'daily_grant')),
  delta         INTEGER NOT NULL,
  balance_after INTEGER NOT NULL CHECK (balance_after >= 0),
  created_at    TEXT    NOT NULL
) STRICT;
CREATE INDEX credit_entries_user ON credit_entries (user_id, id);

-- At most one daily grant per user and UTC day, whatever runs it and however often.
CREATE TABLE daily_grants (
  user_id    INTEGER NOT NULL REFERENCES users (id),
  day        TEXT    NOT NULL CHECK (length(day) = 10), -- 'YYYY-MM-DD', UTC
  amount     INTEGER NOT NULL CHECK (amount >= 0),
  created_at TEXT    NOT NULL,
  PRIMARY KEY (user_id, day)
) STRICT, WITHOUT ROWID;
CREATE INDEX daily_grants_day ON daily_grants (day);

-- Each time a grant ran (schedule, start-up catch-up or the command) and how many it credited.
CREATE TABLE daily_grant_runs (
  id             INTEGER PRIMARY KEY,
  day            TEXT    NOT NULL,
  trigger        TEXT    NOT NULL CHECK (trigger IN ('schedule', 'startup', 'command')),
  users_credited INTEGER NOT NULL CHECK (users_credited >= 0),
  ran_at         TEXT    NOT NULL
) STRICT;
CREATE INDEX daily_grant_runs_day ON daily_grant_runs (day);

CREATE VIEW credit_balances AS
  SELECT u.id AS user_id, u.email, u.credits, u.credits_updated_at AS last_change
  FROM users AS u
  ORDER BY u.id;

-- Ledger 0 is the default ledger; ledger n is user n's.
DROP VIEW point_balances;
CREATE VIEW point_balances AS
  SELECT b.ledger_id, nullif(b.ledger_id, 0) AS user_id, u.email, b.payer, b.balance AS points
  FROM payer_balances AS b
  LEFT JOIN users AS u ON u.id = b.ledger_id
  ORDER BY b.ledger_id, b.payer;
