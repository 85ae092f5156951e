-- One row per points ledger holding the sum of its payers' balances, changed in the same
-- transaction as they are, so an add or a spend checks the ledger's total by reading one row
-- instead of summing every payer of the ledger (a cost that grew with the number of payers).
CREATE TABLE ledger_totals (
  ledger_id INTEGER PRIMARY KEY CHECK (ledger_id >= 0),
  balance   INTEGER NOT NULL CHECK (balance >= 0)
) STRICT;

INSERT INTO ledger_totals (ledger_id, balance)
  SELECT ledger_id, sum(balance) FROM payer_balances GROUP BY ledger_id;
