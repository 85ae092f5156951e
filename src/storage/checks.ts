// The invariants the ledger promises, in SQL that SQLite and PostgreSQL both run unchanged.
// Each check is a query that returns the rows breaking one invariant, and how to say so.
// These read whole tables: they are for operators and tests, never the request path.
export const checks: Array<{ name: string, sql: string, say: (row: any) => string }> = [
  {
    // A payer's balance is its lots' available points: neither held nor expired (nor spent).
    name: 'balances match their lots',
    sql: 'SELECT b.ledger_id, b.payer, b.balance, coalesce(l.remaining, 0) AS remaining, b.held, coalesce(l.held, 0) AS lots_held ' +
      'FROM payer_balances AS b LEFT JOIN (SELECT ledger_id, payer, sum(remaining) AS remaining, sum(held) AS held FROM point_lots ' +
      'GROUP BY ledger_id, payer) AS l USING (ledger_id, payer) WHERE b.balance <> coalesce(l.remaining, 0) OR b.held <> coalesce(l.held, 0)',
    say: r => `ledger ${r.ledger_id} payer ${r.payer}: ` + (Number(r.balance) !== Number(r.remaining)
      ? `balance ${r.balance} but its lots hold ${r.remaining}`
      : `${r.held} held but its lots hold ${r.lots_held}`)
  },
  {
    // A ledger's row sums its payers' available and held points.
    name: 'ledger totals match their payers',
    sql: 'SELECT ledger_id, coalesce(t.balance, 0) AS total, coalesce(t.held, 0) AS held, coalesce(p.balance, 0) AS payers, ' +
      'coalesce(p.held, 0) AS payers_held FROM ledger_totals AS t FULL JOIN (SELECT ledger_id, sum(balance) AS balance, ' +
      'sum(held) AS held FROM payer_balances GROUP BY ledger_id) AS p USING (ledger_id) ' +
      'WHERE coalesce(t.balance, 0) <> coalesce(p.balance, 0) OR coalesce(t.held, 0) <> coalesce(p.held, 0)',
    say: r => `ledger ${r.ledger_id}: ` + (Number(r.total) !== Number(r.payers)
      ? `total ${r.total} but its payers hold ${r.payers}`
      : `${r.held} held but its payers hold ${r.payers_held}`)
  },
  {
    name: 'every lot has a balance row',
    sql: 'SELECT DISTINCT ledger_id, payer FROM point_lots WHERE (ledger_id, payer) NOT IN (SELECT ledger_id, payer FROM payer_balances)',
    say: r => `ledger ${r.ledger_id} payer ${r.payer}: lots but no balance row`
  },
  {
    name: 'lots within bounds',
    sql: 'SELECT transaction_id, points, remaining, adjusted, held, expired, restored FROM point_lots WHERE remaining < 0 OR adjusted < 0 ' +
      'OR held < 0 OR expired < 0 OR restored < 0 OR remaining + adjusted + held + expired > points',
    say: r => `lot ${r.transaction_id}: points ${r.points}, remaining ${r.remaining}, adjusted ${r.adjusted}, held ${r.held}, expired ${r.expired}, restored ${r.restored} out of bounds`
  },
  {
    name: 'no negative balance',
    sql: 'SELECT ledger_id, payer, balance FROM payer_balances WHERE balance < 0',
    say: r => `ledger ${r.ledger_id} payer ${r.payer}: negative balance ${r.balance}`
  },
  {
    // Every point of a lot is in exactly one place: remaining, adjusted, held, expired, or spent
    // net of what reversals restored; each place agrees with its own history.
    name: 'spent points match spend draws, net of reversals',
    sql: 'SELECT l.transaction_id, l.points - l.remaining - l.adjusted - l.held - l.expired AS spent, coalesce(d.drawn, 0) AS drawn, ' +
      'coalesce(r.restored, 0) AS restored FROM point_lots AS l ' +
      'LEFT JOIN (SELECT lot_id, sum(points) AS drawn FROM point_spend_draws GROUP BY lot_id) AS d ON d.lot_id = l.transaction_id ' +
      'LEFT JOIN (SELECT lot_id, sum(points) AS restored FROM point_reversal_draws GROUP BY lot_id) AS r ON r.lot_id = l.transaction_id ' +
      'WHERE l.points - l.remaining - l.adjusted - l.held - l.expired <> coalesce(d.drawn, 0) - coalesce(r.restored, 0) ' +
      'OR l.restored <> coalesce(r.restored, 0)',
    say: r => `lot ${r.transaction_id}: ${r.spent} spent but spends drew ${r.drawn}` + (Number(r.restored) > 0 ? ` and reversals restored ${r.restored}` : '')
  },
  {
    name: 'held points match pending holds',
    sql: 'SELECT l.transaction_id, l.held, coalesce(h.held, 0) AS pending FROM point_lots AS l ' +
      "LEFT JOIN (SELECT d.lot_id, sum(d.points) AS held FROM point_hold_draws AS d JOIN point_holds AS h ON h.id = d.hold_id WHERE h.status = 'pending' " +
      'GROUP BY d.lot_id) AS h ON h.lot_id = l.transaction_id WHERE l.held <> coalesce(h.held, 0)',
    say: r => `lot ${r.transaction_id}: ${r.held} held but pending holds drew ${r.pending}`
  },
  {
    name: 'expired points match expirations',
    sql: 'SELECT l.transaction_id, l.expired, coalesce(e.expired, 0) AS entries FROM point_lots AS l ' +
      'LEFT JOIN (SELECT lot_id, sum(points) AS expired FROM point_expirations GROUP BY lot_id) AS e ON e.lot_id = l.transaction_id ' +
      'WHERE l.expired <> coalesce(e.expired, 0) OR (l.expired > 0 AND l.expires_at IS NULL)',
    say: r => `lot ${r.transaction_id}: ${r.expired} expired but its expiration entries say ${r.entries}`
  },
  {
    name: 'holds match their draws',
    sql: 'SELECT h.id, h.points, coalesce(d.drawn, 0) AS drawn, h.status, h.captured, s.points AS spent FROM point_holds AS h ' +
      'LEFT JOIN (SELECT hold_id, sum(points) AS drawn FROM point_hold_draws GROUP BY hold_id) AS d ON d.hold_id = h.id ' +
      'LEFT JOIN point_spends AS s ON s.id = h.spend_id ' +
      "WHERE h.points <> coalesce(d.drawn, 0) OR (h.status = 'captured' AND s.points <> h.captured)",
    say: r => `hold ${r.id} of ${r.points} (${r.status}) drew ${r.drawn}; captured ${r.captured}, its spend ${r.spent}`
  },
  {
    name: 'reversals match their draws and spends',
    sql: 'SELECT s.id, s.reversed, coalesce(r.points, 0) AS reversals, coalesce(d.drawn, 0) AS drawn FROM point_spends AS s ' +
      'LEFT JOIN (SELECT spend_id, sum(points) AS points FROM point_reversals GROUP BY spend_id) AS r ON r.spend_id = s.id ' +
      'LEFT JOIN (SELECT x.spend_id, sum(d.points) AS drawn FROM point_reversal_draws AS d JOIN point_reversals AS x ON x.id = d.reversal_id ' +
      'GROUP BY x.spend_id) AS d ON d.spend_id = s.id WHERE s.reversed <> coalesce(r.points, 0) OR s.reversed <> coalesce(d.drawn, 0)',
    say: r => `spend ${r.id}: ${r.reversed} reversed but its reversals say ${r.reversals} and their draws ${r.drawn}`
  },
  {
    // Checked against the payer's balance: the latest row of its history is what it has now (no
    // history at all: nothing, ever).
    name: 'balance history ends at the balance',
    sql: 'SELECT b.ledger_id, b.payer, b.balance, h.balance AS last FROM payer_balances AS b LEFT JOIN point_balance_history AS h ' +
      'ON h.ledger_id = b.ledger_id AND h.payer = b.payer AND h.at = (SELECT max(at) FROM point_balance_history AS x ' +
      'WHERE x.ledger_id = b.ledger_id AND x.payer = b.payer) WHERE coalesce(h.balance, 0) <> b.balance',
    say: r => `ledger ${r.ledger_id} payer ${r.payer}: balance ${r.balance} but its history ends at ${r.last ?? 'nothing'}`
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
