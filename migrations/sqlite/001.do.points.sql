-- The points ledger. History is append-only: point_transactions (every add), point_spends and
-- the two draw tables are only ever inserted into. State that changes lives in point_lots
-- (what each positive add still has) and payer_balances (one row per ledger and payer), and the
-- CHECKs below make a negative amount impossible even if the code were wrong.
--
-- ledger_id 0 is the default ledger served by /add, /spend and /balance.

CREATE TABLE point_transactions (
  id         INTEGER PRIMARY KEY,
  ledger_id  INTEGER NOT NULL CHECK (ledger_id >= 0),
  payer      TEXT    NOT NULL CHECK (length(payer) BETWEEN 1 AND 64),
  points     INTEGER NOT NULL CHECK (points <> 0),
  ts         TEXT    NOT NULL CHECK (length(ts) = 24), -- UTC 'YYYY-MM-DDTHH:MM:SS.sssZ': sorts as text
  created_at TEXT    NOT NULL
) STRICT;
CREATE INDEX point_transactions_ledger ON point_transactions (ledger_id, id);

-- One lot per positive add. `adjusted` is what negative adds have drawn from it, `remaining`
-- what is left to spend; the rest was spent.
CREATE TABLE point_lots (
  transaction_id INTEGER PRIMARY KEY REFERENCES point_transactions (id),
  ledger_id      INTEGER NOT NULL,
  payer          TEXT    NOT NULL,
  ts             TEXT    NOT NULL,
  points         INTEGER NOT NULL CHECK (points > 0),
  remaining      INTEGER NOT NULL CHECK (remaining >= 0),
  adjusted       INTEGER NOT NULL DEFAULT 0 CHECK (adjusted >= 0),
  CHECK (remaining + adjusted <= points)
) STRICT;
-- A spend reads only the lots it consumes, oldest first, through this partial index.
CREATE INDEX point_lots_spendable ON point_lots (ledger_id, ts, transaction_id) WHERE remaining > 0;
-- A negative add reads only its payer's spendable lots, oldest first.
CREATE INDEX point_lots_payer_spendable ON point_lots (ledger_id, payer, ts, transaction_id) WHERE remaining > 0;
-- A backdated add finds the newer lots a negative add drew from.
CREATE INDEX point_lots_adjusted ON point_lots (ledger_id, payer, ts, transaction_id) WHERE adjusted > 0;

CREATE TABLE payer_balances (
  ledger_id INTEGER NOT NULL,
  payer     TEXT    NOT NULL,
  balance   INTEGER NOT NULL CHECK (balance >= 0),
  PRIMARY KEY (ledger_id, payer)
) STRICT, WITHOUT ROWID;

CREATE TABLE point_spends (
  id         INTEGER PRIMARY KEY,
  ledger_id  INTEGER NOT NULL CHECK (ledger_id >= 0),
  points     INTEGER NOT NULL CHECK (points > 0),
  created_at TEXT    NOT NULL
) STRICT;
CREATE INDEX point_spends_ledger ON point_spends (ledger_id, id);

-- Which lots a spend drew from, in the order it drew them.
CREATE TABLE point_spend_draws (
  spend_id INTEGER NOT NULL REFERENCES point_spends (id),
  seq      INTEGER NOT NULL CHECK (seq >= 1),
  lot_id   INTEGER NOT NULL REFERENCES point_lots (transaction_id),
  points   INTEGER NOT NULL CHECK (points > 0),
  PRIMARY KEY (spend_id, seq)
) STRICT, WITHOUT ROWID;

-- Which lots a negative add drew from. When a backdated add arrives, the draw moves onto the
-- older points: that move is written as a pair of rows (-n on the newer lot, +n on the older
-- one) caused by the backdated add, so the table stays append-only and every move explainable.
CREATE TABLE point_adjustment_draws (
  id            INTEGER PRIMARY KEY,
  adjustment_id INTEGER NOT NULL REFERENCES point_transactions (id),
  lot_id        INTEGER NOT NULL REFERENCES point_lots (transaction_id),
  points        INTEGER NOT NULL CHECK (points <> 0),
  cause_id      INTEGER NOT NULL REFERENCES point_transactions (id),
  created_at    TEXT    NOT NULL
) STRICT;
CREATE INDEX point_adjustment_draws_lot ON point_adjustment_draws (lot_id, adjustment_id);
CREATE INDEX point_adjustment_draws_adjustment ON point_adjustment_draws (adjustment_id, lot_id);

-- For people reading the file with the sqlite3 CLI.
CREATE VIEW point_balances AS
  SELECT ledger_id, payer, balance AS points
  FROM payer_balances
  ORDER BY ledger_id, payer;

CREATE VIEW point_lot_status AS
  SELECT l.ledger_id, l.transaction_id, l.payer, l.ts AS timestamp, l.points,
         l.points - l.remaining - l.adjusted AS spent, l.adjusted, l.remaining
  FROM point_lots AS l
  ORDER BY l.ledger_id, l.ts, l.transaction_id;

CREATE VIEW point_spend_details AS
  SELECT s.ledger_id, s.id AS spend_id, s.created_at, d.seq, l.payer, d.lot_id AS transaction_id,
         l.ts AS lot_timestamp, -d.points AS points
  FROM point_spends AS s
  JOIN point_spend_draws AS d ON d.spend_id = s.id
  JOIN point_lots AS l ON l.transaction_id = d.lot_id
  ORDER BY s.id, d.seq;
