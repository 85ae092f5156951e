-- The life of a point (issue 13): lots expire, spends are reversed, holds reserve points until
-- they are captured or released, and every payer's balance is recorded each time it changes, so
-- that a balance at a past moment is one index read.
--
-- A lot's points are now in exactly one of: remaining (available), adjusted (taken by negative
-- adds), held (reserved by pending holds), expired, or spent; `restored` counts what reversals
-- gave back, so spent net of restored = points - remaining - adjusted - held - expired.

ALTER TABLE point_transactions ADD COLUMN expires_at TEXT
  CHECK (expires_at IS NULL OR (length(expires_at) = 24 AND points > 0 AND expires_at > ts));

ALTER TABLE point_lots ADD COLUMN expires_at TEXT CHECK (expires_at IS NULL OR length(expires_at) = 24);
ALTER TABLE point_lots ADD COLUMN held INTEGER NOT NULL DEFAULT 0 CHECK (held >= 0);
ALTER TABLE point_lots ADD COLUMN expired INTEGER NOT NULL DEFAULT 0
  CHECK (expired >= 0 AND remaining + adjusted + held + expired <= points);
ALTER TABLE point_lots ADD COLUMN restored INTEGER NOT NULL DEFAULT 0 CHECK (restored >= 0);

-- A spend in expiry order: soonest expiry first, lots that never expire last ('~' sorts after
-- every timestamp), then oldest timestamp, then arrival.
CREATE INDEX point_lots_spendable_expiry ON point_lots (ledger_id, coalesce(expires_at, '~'), ts, transaction_id)
  WHERE remaining > 0;
-- Settling a ledger reads only its lots past expiry that still have available points.
CREATE INDEX point_lots_due ON point_lots (ledger_id, expires_at) WHERE remaining > 0 AND expires_at IS NOT NULL;
-- The sweep walks every ledger's lots by expiry.
CREATE INDEX point_lots_sweep ON point_lots (expires_at, ledger_id) WHERE remaining > 0 AND expires_at IS NOT NULL;
-- A payer's next expirations (GET /balance/details).
CREATE INDEX point_lots_payer_expiring ON point_lots (ledger_id, payer, expires_at)
  WHERE remaining > 0 AND expires_at IS NOT NULL;

-- Points held by the payer's pending holds: out of `balance` (the available points) until the
-- hold is captured or released.
-- A voided or expired hold gives them back, so no payer nor ledger may have more than 2^53−1
-- available and held together: an add or a reversal past that is refused (BALANCE_TOO_LARGE).
ALTER TABLE payer_balances ADD COLUMN held INTEGER NOT NULL DEFAULT 0
  CHECK (held >= 0 AND balance + held <= 9007199254740991);
ALTER TABLE ledger_totals ADD COLUMN held INTEGER NOT NULL DEFAULT 0
  CHECK (held >= 0 AND balance + held <= 9007199254740991);

-- What reversals have given back of each spend.
ALTER TABLE point_spends ADD COLUMN reversed INTEGER NOT NULL DEFAULT 0 CHECK (reversed >= 0 AND reversed <= points);

-- Holds: points drawn at checkout and kept out of the balance until captured (into a spend),
-- voided or expired. A hold resolves once: only a pending hold changes status.
CREATE TABLE point_holds (
  id          INTEGER PRIMARY KEY,
  ledger_id   INTEGER NOT NULL CHECK (ledger_id >= 0),
  points      INTEGER NOT NULL CHECK (points > 0),
  status      TEXT    NOT NULL CHECK (status IN ('pending', 'captured', 'voided', 'expired')),
  expires_at  TEXT    CHECK (expires_at IS NULL OR length(expires_at) = 24),
  created_at  TEXT    NOT NULL,
  resolved_at TEXT,
  captured    INTEGER CHECK (captured BETWEEN 1 AND points),
  spend_id    INTEGER UNIQUE REFERENCES point_spends (id),
  CHECK ((status = 'pending') = (resolved_at IS NULL)),
  CHECK ((status = 'captured') = (captured IS NOT NULL AND spend_id IS NOT NULL))
) STRICT;
CREATE INDEX point_holds_ledger ON point_holds (ledger_id, id);
CREATE INDEX point_holds_ledger_status ON point_holds (ledger_id, status, id);
-- Settling a ledger reads only its pending holds past expiry; the sweep walks all of them.
CREATE INDEX point_holds_due ON point_holds (ledger_id, expires_at) WHERE status = 'pending' AND expires_at IS NOT NULL;
CREATE INDEX point_holds_sweep ON point_holds (expires_at, ledger_id) WHERE status = 'pending' AND expires_at IS NOT NULL;

-- Which lots a hold drew from, in the order it drew them.
CREATE TABLE point_hold_draws (
  hold_id INTEGER NOT NULL REFERENCES point_holds (id),
  seq     INTEGER NOT NULL CHECK (seq >= 1),
  lot_id  INTEGER NOT NULL REFERENCES point_lots (transaction_id),
  points  INTEGER NOT NULL CHECK (points > 0),
  PRIMARY KEY (hold_id, seq)
) STRICT, WITHOUT ROWID;

-- Reversals of spends, and the lots each gave points back to, in the order it did.
CREATE TABLE point_reversals (
  id         INTEGER PRIMARY KEY,
  ledger_id  INTEGER NOT NULL CHECK (ledger_id >= 0),
  spend_id   INTEGER NOT NULL REFERENCES point_spends (id),
  points     INTEGER NOT NULL CHECK (points > 0),
  created_at TEXT    NOT NULL
) STRICT;
CREATE INDEX point_reversals_spend ON point_reversals (spend_id, id);

CREATE TABLE point_reversal_draws (
  reversal_id INTEGER NOT NULL REFERENCES point_reversals (id),
  seq         INTEGER NOT NULL CHECK (seq >= 1),
  lot_id      INTEGER NOT NULL REFERENCES point_lots (transaction_id),
  points      INTEGER NOT NULL CHECK (points > 0),
  PRIMARY KEY (reversal_id, seq)
) STRICT, WITHOUT ROWID;

-- Points that expired: a lot reaching its expires_at (dated then), or points coming back to a
-- lot already past it, released by a hold (hold_id) or restored by a reversal (reversal_id),
-- which expire at once (dated when they came back).
CREATE TABLE point_expirations (
  id          INTEGER PRIMARY KEY,
  ledger_id   INTEGER NOT NULL CHECK (ledger_id >= 0),
  lot_id      INTEGER NOT NULL REFERENCES point_lots (transaction_id),
  payer       TEXT    NOT NULL,
  points      INTEGER NOT NULL CHECK (points > 0),
  expired_at  TEXT    NOT NULL CHECK (length(expired_at) = 24),
  hold_id     INTEGER REFERENCES point_holds (id),
  reversal_id INTEGER REFERENCES point_reversals (id),
  created_at  TEXT    NOT NULL,
  CHECK (hold_id IS NULL OR reversal_id IS NULL)
) STRICT;
CREATE INDEX point_expirations_ledger ON point_expirations (ledger_id, id);

-- Each payer's available balance after the changes of each instant, dated when they took
-- effect (one row per payer and instant, so a later change in the same millisecond updates it):
-- a balance at a past moment is the latest row at or before it, one seek of the key per payer.
CREATE TABLE point_balance_history (
  ledger_id INTEGER NOT NULL CHECK (ledger_id >= 0),
  payer     TEXT    NOT NULL,
  at        TEXT    NOT NULL CHECK (length(at) = 24),
  balance   INTEGER NOT NULL CHECK (balance >= 0),
  PRIMARY KEY (ledger_id, payer, at)
) STRICT, WITHOUT ROWID;

-- The history so far: before this migration a payer's balance moved only with its adds and with
-- the spends that drew from its lots, each at its created_at. One row per payer and instant.
INSERT INTO point_balance_history (ledger_id, payer, at, balance)
SELECT DISTINCT ledger_id, payer, at, sum(delta) OVER (PARTITION BY ledger_id, payer ORDER BY at)
FROM (
  SELECT ledger_id, payer, created_at AS at, points AS delta FROM point_transactions
  UNION ALL
  SELECT s.ledger_id, l.payer, s.created_at, -d.points
  FROM point_spends AS s
  JOIN point_spend_draws AS d ON d.spend_id = s.id
  JOIN point_lots AS l ON l.transaction_id = d.lot_id
)
ORDER BY ledger_id, payer, at;

DROP VIEW point_lot_status;
CREATE VIEW point_lot_status AS
  SELECT l.ledger_id, l.transaction_id, l.payer, l.ts AS timestamp, l.expires_at, l.points,
         l.points - l.remaining - l.adjusted - l.held - l.expired + l.restored AS spent,
         l.restored, l.adjusted, l.held, l.expired, l.remaining
  FROM point_lots AS l
  ORDER BY l.ledger_id, l.ts, l.transaction_id;

CREATE VIEW point_hold_details AS
  SELECT h.ledger_id, h.id AS hold_id, h.status, h.points AS hold_points, h.expires_at, h.created_at,
         h.resolved_at, h.captured, h.spend_id, d.seq, l.payer, d.lot_id AS transaction_id,
         l.ts AS lot_timestamp, d.points
  FROM point_holds AS h
  JOIN point_hold_draws AS d ON d.hold_id = h.id
  JOIN point_lots AS l ON l.transaction_id = d.lot_id
  ORDER BY h.id, d.seq;

CREATE VIEW point_reversal_details AS
  SELECT r.ledger_id, r.id AS reversal_id, r.spend_id, r.created_at, d.seq, l.payer,
         d.lot_id AS transaction_id, l.ts AS lot_timestamp, d.points
  FROM point_reversals AS r
  JOIN point_reversal_draws AS d ON d.reversal_id = r.id
  JOIN point_lots AS l ON l.transaction_id = d.lot_id
  ORDER BY r.id, d.seq;
