// The invariants the ledger promises, in SQL that SQLite and PostgreSQL both run unchanged.
// Each check is a query that returns the rows breaking one invariant, and how to say so.
// These read whole tables: they are for operators and tests, never the request path.
export const checks: Array<{ name: string, sql: string, say: (row: any) => string }> = [
  {
    name: 'balances match their lots',
    sql: 'SELECT b.ledger_id, b.payer, b.balance, coalesce(l.held, 0) AS held FROM payer_balances AS b ' +
      'LEFT JOIN (SELECT ledger_id, payer, sum(remaining) AS held FROM point_lots GROUP BY ledger_id, payer) AS l ' +
      'USING (ledger_id, payer) WHERE b.balance <> coalesce(l.held, 0)',
    say: r => `ledger ${r.ledger_id} payer ${r.payer}: balance ${r.balance} but its lots hold ${r.held}`
  },
  {
    name: 'ledger totals match their payers',
    sql: 'SELECT ledger_id, coalesce(t.balance, 0) AS total, coalesce(p.held, 0) AS held FROM ledger_totals AS t ' +
      'FULL JOIN (SELECT ledger_id, sum(balance) AS held FROM payer_balances GROUP BY ledger_id) AS p USING (ledger_id) ' +
      'WHERE coalesce(t.balance, 0) <> coalesce(p.held, 0)',
    say: r => `ledger ${r.ledger_id}: total ${r.total} but its payers hold ${r.held}`
  },
  {
    name: 'every lot has a balance row',
    sql: 'SELECT DISTINCT ledger_id, payer FROM point_lots WHERE (ledger_id, payer) NOT IN (SELECT ledger_id, payer FROM payer_balances)',
    say: r => `ledger ${r.ledger_id} payer ${r.payer}: lots but no balance row`
  },
  {
    name: 'lots within bounds',
    sql: 'SELECT transaction_id, points, remaining, adjusted FROM point_lots WHERE remaining < 0 OR adjusted < 0 OR remaining + adjusted > points',
    say: r => `lot ${r.transaction_id}: points ${r.points}, remaining ${r.remaining}, adjusted ${r.adjusted} out of bounds`
  },
  {
    name: 'no negative balance',
    sql: 'SELECT ledger_id, payer, balance FROM payer_balances WHERE balance < 0',
    say: r => `ledger ${r.ledger_id} payer ${r.payer}: negative balance ${r.balance}`
  },
  {
    name: 'spent points match spend draws',
    sql: 'SELECT l.transaction_id, l.points - l.remaining - l.adjusted AS spent, coalesce(d.drawn, 0) AS drawn FROM point_lots AS l ' +
      'LEFT JOIN (SELECT lot_id, sum(points) AS drawn FROM point_spend_draws GROUP BY lot_id) AS d ON d.lot_id = l.transaction_id ' +
      'WHERE l.points - l.remaining - l.adjusted <> coalesce(d.drawn, 0)',
    say: r => `lot ${r.transaction_id}: ${r.spent} spent but spends drew ${r.drawn}`
  },
  {
    name: 'adjusted points match negative-add draws',
    sql: 'SELECT l.transaction_id, l.adjusted, coalesce(d.drawn, 0) AS drawn FROM point_lots AS l ' +
      'LEFT JOIN (SELECT lot_id, sum(points) AS drawn FROM point_adjustment_draws GROUP BY lot_id) AS d ON d.lot_id = l.transaction_id ' +
      'WHERE l.adjusted <> coalesce(d.drawn, 0)',
    say: r => `lot ${r.transaction_id}: ${r.adjusted} taken by negative adds but their draws say ${r.drawn}`
  },
  {
    name: 'negative adds fully drawn',
    sql: 'SELECT t.id, t.points, coalesce(d.drawn, 0) AS drawn FROM point_transactions AS t ' +
      'LEFT JOIN (SELECT adjustment_id, sum(points) AS drawn FROM point_adjustment_draws GROUP BY adjustment_id) AS d ' +
      'ON d.adjustment_id = t.id WHERE t.points < 0 AND coalesce(d.drawn, 0) <> -t.points',
    say: r => `negative add ${r.id} of ${r.points} draws ${r.drawn}`
  },
  {
    name: 'every positive add has a lot',
    sql: 'SELECT id FROM point_transactions WHERE points > 0 AND id NOT IN (SELECT transaction_id FROM point_lots)',
    say: r => `add ${r.id}: positive but no lot`
  },
  {
    name: 'spends match their draws',
    sql: 'SELECT s.id, s.points, coalesce(d.drawn, 0) AS drawn FROM point_spends AS s ' +
      'LEFT JOIN (SELECT spend_id, sum(points) AS drawn FROM point_spend_draws GROUP BY spend_id) AS d ON d.spend_id = s.id ' +
      'WHERE s.points <> coalesce(d.drawn, 0)',
    say: r => `spend ${r.id} of ${r.points} drew ${r.drawn}`
  },
  {
    name: 'credits match their history',
    sql: 'SELECT u.id, u.credits, coalesce(e.total, 0) AS total, e.last FROM users AS u ' +
      'LEFT JOIN (SELECT user_id, sum(delta) AS total, (SELECT balance_after FROM credit_entries AS x WHERE x.user_id = c.user_id ORDER BY id DESC LIMIT 1) AS last ' +
      'FROM credit_entries AS c GROUP BY user_id) AS e ON e.user_id = u.id ' +
      'WHERE u.credits < 0 OR u.credits <> coalesce(e.total, 0) OR u.credits <> coalesce(e.last, 0)',
    say: r => `user ${r.id}: ${r.credits} credits but the history sums to ${r.total} (last balance_after ${r.last})`
  }
]
