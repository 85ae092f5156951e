import t from 'tap'
import { build, call, canonicalAdds, invariants, sql } from '../helper.js'

// db:check's invariants, held by a database the API wrote every kind of row to, and each broken
// one named (test/sqlite/db-check.test.ts has the command and what only a SQLite file can break).

/** A database with every kind of row: users, credits, lots, spends, negative adds and their moves, events, alerts, keys. */
async function populated (t: Parameters<typeof build>[0]) {
  const app = await build(t)
  const send = async (method: 'POST' | 'PUT' | 'PATCH', url: string, payload?: object, key?: string) => {
    const res = await call(app, { method, url, ...(payload !== undefined && { payload }), ...(key !== undefined && { headers: { 'idempotency-key': key } }) })
    if (res.status >= 300) throw new Error(`${method} ${url}: ${res.status} ${JSON.stringify(res.body)}`)
  }
  await send('POST', '/users', { email: 'ada@example.com', name: 'Ada' })
  await send('POST', '/api/credits/1/add', { amount: 10 }, 'credit-1')
  await send('POST', '/api/credits/1/deduct', { amount: 3 })
  await app.storage.write(app.credits.grantDaily('2026-11-22', 5, 'command'))
  // The canonical example in the arrival order: the negative add's draw moves.
  for (const add of [canonicalAdds[4], canonicalAdds[1], canonicalAdds[2], canonicalAdds[3], canonicalAdds[0]]) await send('POST', '/add', add)
  await send('POST', '/spend', { points: 5000 }, 'spend-1')
  await send('POST', '/users/1/points/add/batch', { adds: canonicalAdds })
  await send('POST', '/users/1/points/spend', { points: 400 })
  await send('PUT', '/users/1/alert-profile', { risk: 'high' })
  for (const [time, amount] of [[1, '60'], [2, '150'], [3, '1']] as const) await send('POST', '/event', { type: 'withdraw', amount, user_id: 1, time })
  return app
}

t.test('a database the API wrote every kind of row to holds every invariant', async t => {
  const app = await populated(t)
  t.strictSame(await invariants(app), [])
  t.ok((await sql(app, 'SELECT id FROM point_adjustment_draws')).length > 0, 'negative adds drew, and a draw moved')
  t.ok((await sql(app, 'SELECT id FROM alerts')).length > 0, 'alerts fired')
})

t.test('a balance changed behind the ledger\'s back is named', async t => {
  const app = await populated(t)
  await sql(app, "UPDATE payer_balances SET balance = balance + 1 WHERE ledger_id = 0 AND payer = 'UNILEVER'")
  await sql(app, 'UPDATE users SET credits = credits + 1 WHERE id = 1')
  t.strictSame((await invariants(app)).sort(), [
    'ledger 0 payer UNILEVER: balance 1 but its history ends at 0',
    'ledger 0 payer UNILEVER: balance 1 but its lots hold 0',
    'ledger 0: total 6300 but its payers hold 6301',
    'user 1: 13 credits but the history sums to 12 (last balance_after 12)'
  ])
})
