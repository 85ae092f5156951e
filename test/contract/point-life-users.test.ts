import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { call, expectError, get, invariants, post, snapshot } from '../helper.js'
import { type Clock, clockedApp } from './clocked.js'

// Issue 13 on a user's ledger (/users/:userId/points/...): exactly the default ledger's rules.

type Step = ['GET' | 'POST', string, object?] | ['CLOCK', string]

// Expiry, a spend, a hold captured in part, a hold voided, one that expires, reversals before and
// after the lot expired, and every read.
const walk: Step[] = [
  ['POST', '/add', { payer: 'A', points: 100, timestamp: '2024-01-01T00:00:00Z', expires_at: '2024-03-10T00:00:00Z' }],
  ['POST', '/add', { payer: 'B', points: 100, timestamp: '2024-01-02T00:00:00Z' }],
  ['POST', '/add', { payer: 'C', points: 9, timestamp: '2023-01-01T00:00:00Z', expires_at: '2023-02-01T00:00:00Z' }],
  ['POST', '/spend', { points: 30 }],
  ['POST', '/holds', { points: 50, expires_at: '2024-03-20T00:00:00Z' }],
  ['POST', '/holds', { points: 20 }],
  ['POST', '/holds', { points: 5, expires_at: '2024-03-02T00:00:00Z' }],
  ['CLOCK', '2024-03-01T10:00:00.200Z'],
  ['POST', '/holds/1/capture', { points: 40 }],
  ['POST', '/holds/2/void', {}],
  ['POST', '/spends/1/reversals', { points: 10 }],
  ['GET', '/balance/details'],
  ['CLOCK', '2024-03-12T00:00:00.300Z'],
  ['POST', '/spends/2/reversals', {}],
  ['GET', '/balance'],
  ['GET', '/balance/details'],
  ['GET', '/balance?at=2024-03-01T09:30:00Z'],
  ['GET', '/balance?at=2024-03-02T00:00:00Z'],
  ['GET', '/balance?at=2024-03-10T00:00:00Z'],
  ['GET', '/expirations'],
  ['GET', '/transactions'],
  ['GET', '/spends'],
  ['GET', '/spends/1/reversals'],
  ['GET', '/spends/2/reversals'],
  ['GET', '/holds'],
  ['GET', '/holds?status=expired'],
  ['GET', '/holds/1'],
  ['POST', '/holds/3/capture', {}],
  ['POST', '/holds/1/void', {}],
  ['POST', '/holds/9/void', {}],
  ['POST', '/spends/9/reversals', {}],
  ['POST', '/spends/1/reversals', { points: 21 }],
  ['POST', '/holds', { points: 5, expires_at: '2024-03-01T00:00:00Z' }],
  ['POST', '/add', { payer: 'A', points: 5, timestamp: '2024-03-01T00:00:00Z', expires_at: '2024-03-01T00:00:00Z' }]
]

async function run (app: FastifyInstance, clock: Clock, prefix: string): Promise<Array<{ status: number, body: string }>> {
  const answers = []
  for (const [method, url, body] of walk) {
    if (method === 'CLOCK') {
      clock.set(url)
      continue
    }
    const res = await app.inject({ method, url: `${prefix}${url}`, ...(body !== undefined && { payload: body }) })
    answers.push({ status: res.statusCode, body: res.body })
  }
  return answers
}

t.test('a user\'s ledger answers every step exactly as the default ledger does', async t => {
  const start = '2024-03-01T09:00:00.100Z'
  const plain = await clockedApp(t, start)
  const user = await clockedApp(t, start)
  t.equal((await post(user.app, '/users', { email: 'ada@example.com', name: 'Ada' })).status, 201)
  const expected = await run(plain.app, plain.clock, '')
  const actual = await run(user.app, user.clock, '/users/1/points')
  t.strictSame(actual, expected)
  // The walk is not vacuous: its answers are the ones the other tests hold to the design.
  t.strictSame(expected.map(a => a.status), [
    200, 200, 200, 200, 201, 201, 201, 200, 200, 201, 200, 201, ...Array(13).fill(200), 409, 409, 404, 404, 400, 400, 400
  ])
  t.equal(expected[12]!.body, '{"A":0,"B":100,"C":0}')
  t.strictSame(JSON.parse(expected.at(-4)!.body).code, 'SPEND_NOT_FOUND')
  t.strictSame(await invariants(plain.app), [], 'db:check holds')
  t.strictSame(await invariants(user.app), [], 'db:check holds on the user\'s ledger')
})

t.test('ledgers do not see each other\'s holds, reversals or expirations', async t => {
  const { app, clock } = await clockedApp(t, '2024-03-01T09:00:00.100Z')
  await post(app, '/users', { email: 'ada@example.com', name: 'Ada' })
  await post(app, '/users', { email: 'bob@example.com', name: 'Bob' })
  await post(app, '/users/1/points/add', { payer: 'A', points: 100, timestamp: '2024-01-01T00:00:00Z', expires_at: '2024-03-10T00:00:00Z' })
  await post(app, '/users/1/points/spend', { points: 10 })
  await post(app, '/users/1/points/spends/1/reversals', { points: 1 })
  await post(app, '/users/1/points/holds', { points: 5 })
  await post(app, '/add', { payer: 'A', points: 1, timestamp: '2024-01-01T00:00:00Z' })
  clock.set('2024-03-11T00:00:00.000Z')
  t.equal((await get(app, '/users/1/points/expirations')).body.items.length, 1)
  for (const prefix of ['', '/users/2/points']) {
    t.strictSame((await get(app, `${prefix}/holds`)).body, { items: [], next_cursor: null }, prefix)
    t.strictSame((await get(app, `${prefix}/expirations`)).body, { items: [], next_cursor: null }, prefix)
  }
  t.strictSame((await get(app, '/users/2/points/balance/details')).body, {})
  t.strictSame((await get(app, '/balance/details')).body, { A: { available: 1, held: 0, expiring: [] } })
  t.strictSame((await get(app, '/users/1/points/balance/details')).body, { A: { available: 0, held: 5, expiring: [] } })
  t.strictSame((await get(app, '/users/2/points/balance?at=2024-03-05T00:00:00Z')).body, {})
  t.strictSame((await get(app, '/users/1/points/balance?at=2024-03-05T00:00:00Z')).body, { A: 86 })
})

t.test('an unknown user is 404 USER_NOT_FOUND on every new route, and nothing is stored', async t => {
  const { app } = await clockedApp(t, '2024-03-01T09:00:00.100Z')
  await post(app, '/users', { email: 'ada@example.com', name: 'Ada' })
  await post(app, '/users/1/points/add', { payer: 'A', points: 100, timestamp: '2024-01-01T00:00:00Z' })
  await post(app, '/users/1/points/spend', { points: 10 })
  await post(app, '/users/1/points/holds', { points: 5 })
  const before = await snapshot(app)
  const calls: Array<['GET' | 'POST', string, object?]> = [
    ['POST', '/users/3/points/add', { payer: 'A', points: 1, timestamp: '2024-01-01T00:00:00Z', expires_at: '2025-01-01T00:00:00Z' }],
    ['POST', '/users/3/points/holds', { points: 1 }],
    ['POST', '/users/3/points/holds/1/capture', {}],
    ['POST', '/users/3/points/holds/1/void', {}],
    ['POST', '/users/3/points/spends/1/reversals', {}],
    ['GET', '/users/3/points/holds'],
    ['GET', '/users/3/points/holds?status=pending'],
    ['GET', '/users/3/points/holds/1'],
    ['GET', '/users/3/points/spends/1/reversals'],
    ['GET', '/users/3/points/expirations'],
    ['GET', '/users/3/points/balance/details'],
    ['GET', '/users/3/points/balance?at=2024-03-01T00:00:00Z']
  ]
  for (const [method, url, body] of calls) {
    const res = await call(app, { method, url, ...(body !== undefined && { payload: body }) })
    expectError(t, res, 404, 'USER_NOT_FOUND')
    t.equal(res.body.message, 'User 3 not found', url)
  }
  t.strictSame(await snapshot(app), before)
})
