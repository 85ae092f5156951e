import t from 'tap'
import { build, canonicalAdds, get, post, snapshot, sql } from '../helper.js'

async function twoUsers (t: Parameters<typeof build>[0]) {
  const app = await build(t)
  await post(app, '/users', { email: 'ada@example.com', name: 'Ada' })
  await post(app, '/users', { email: 'bob@example.com', name: 'Bob' })
  return app
}

t.test('a user\'s ledger has exactly the rules of the default one', async t => {
  const app = await twoUsers(t)
  for (const add of canonicalAdds) {
    const res = await post(app, '/users/1/points/add', add)
    t.equal(res.status, 200)
    t.match(res.body, { ...add, id: Number })
  }
  t.strictSame((await post(app, '/users/1/points/spend?dry_run=true', { points: 5000 })).body,
    [{ payer: 'DANNON', points: -100 }, { payer: 'UNILEVER', points: -200 }, { payer: 'MILLER COORS', points: -4700 }])
  t.strictSame((await post(app, '/users/1/points/spend', { points: 5000 })).body,
    [{ payer: 'DANNON', points: -100 }, { payer: 'UNILEVER', points: -200 }, { payer: 'MILLER COORS', points: -4700 }])
  t.equal((await app.inject('/users/1/points/balance')).body, '{"DANNON":1000,"MILLER COORS":5300,"UNILEVER":0}')
  t.equal((await get(app, '/users/1/points/transactions')).body.items.length, 5)
  t.equal((await get(app, '/users/1/points/spends')).body.items[0].drawn_from.length, 3)
})

t.test('ledgers do not leak into each other or into the default ledger', async t => {
  const app = await twoUsers(t)
  await post(app, '/users/1/points/add', { payer: 'A', points: 100, timestamp: '2022-01-01T00:00:00Z' })
  await post(app, '/users/2/points/add', { payer: 'A', points: 7, timestamp: '2021-01-01T00:00:00Z' })
  await post(app, '/add', { payer: 'A', points: 1, timestamp: '2020-01-01T00:00:00Z' })
  t.strictSame((await get(app, '/users/1/points/balance')).body, { A: 100 })
  t.strictSame((await get(app, '/users/2/points/balance')).body, { A: 7 })
  t.strictSame((await get(app, '/balance')).body, { A: 1 })
  // The oldest points anywhere are the default ledger's; user 1's spend must not touch them.
  t.strictSame((await post(app, '/users/1/points/spend', { points: 50 })).body, [{ payer: 'A', points: -50 }])
  const over = await post(app, '/users/2/points/spend', { points: 8 })
  t.equal(over.body.code, 'INSUFFICIENT_POINTS', 'user 2 has only 7 of its own')
  const negative = await post(app, '/users/2/points/add', { payer: 'A', points: -8, timestamp: '2022-01-01T00:00:00Z' })
  t.equal(negative.body.code, 'INSUFFICIENT_PAYER_POINTS')
  t.strictSame((await get(app, '/balance')).body, { A: 1 })
  t.strictSame((await get(app, '/users/2/points/balance')).body, { A: 7 })
  t.strictSame((await get(app, '/users/1/points/transactions')).body.items.map((i: { id: number }) => i.id), [1])
  t.strictSame((await get(app, '/spends')).body.items, [])
  t.equal((await get(app, '/users/2/points/spends')).body.items.length, 0)
})

t.test('an unknown user is 404 on every points route and nothing is stored', async t => {
  const app = await twoUsers(t)
  const before = await snapshot(app)
  const calls: Array<[string, string, unknown]> = [
    ['POST', '/users/3/points/add', canonicalAdds[0]],
    ['POST', '/users/3/points/spend', { points: 1 }],
    ['GET', '/users/3/points/balance', undefined],
    ['GET', '/users/3/points/transactions', undefined],
    ['GET', '/users/3/points/spends', undefined]
  ]
  for (const [method, url, body] of calls) {
    const res = method === 'POST' ? await post(app, url, body) : await get(app, url)
    t.equal(res.status, 404, url)
    t.strictSame(res.body, { statusCode: 404, error: 'Not Found', message: 'User 3 not found', code: 'USER_NOT_FOUND' }, url)
  }
  t.equal((await get(app, '/users/0/points/balance')).status, 400, 'a bad id is 400')
  t.equal((await post(app, '/users/abc/points/spend', { points: 1 })).status, 400)
  t.equal((await post(app, '/users/1/points/addTransaction', canonicalAdds[0])).status, 404, 'the alias is the default ledger\'s only')
  t.strictSame(await snapshot(app), before)
})

t.test('the views show per-user point balances and credit balances', async t => {
  const app = await twoUsers(t)
  await post(app, '/users/2/points/add', { payer: 'A', points: 7, timestamp: '2021-01-01T00:00:00Z' })
  await post(app, '/add', { payer: 'A', points: 1, timestamp: '2020-01-01T00:00:00Z' })
  await post(app, '/api/credits/1/add', { amount: 3 })
  t.strictSame(await sql(app, 'SELECT * FROM point_balances ORDER BY ledger_id, payer'), [
    { ledger_id: 0, user_id: null, email: null, payer: 'A', points: 1 },
    { ledger_id: 2, user_id: 2, email: 'bob@example.com', payer: 'A', points: 7 }
  ])
  const credits = await sql(app, 'SELECT user_id, email, credits FROM credit_balances ORDER BY user_id')
  t.strictSame(credits, [{ user_id: 1, email: 'ada@example.com', credits: 3 }, { user_id: 2, email: 'bob@example.com', credits: 0 }])
})
