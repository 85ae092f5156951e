import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { expectError, get, post, snapshot, value } from '../helper.js'
import { clockedApp, withoutKeys } from './clocked.js'

// Issue 13's writes honour Idempotency-Key: a repeat answers the stored bytes and applies nothing.

async function keyed (app: FastifyInstance, url: string, key: string, payload: object) {
  return await app.inject({ method: 'POST', url, headers: { 'idempotency-key': key }, payload })
}

// Every new write, in an order that builds on itself, with the status of its first answer.
const writes: Array<[string, object, number]> = [
  ['/add', { payer: 'A', points: 100, timestamp: '2024-01-01T00:00:00Z', expires_at: '2024-06-01T00:00:00Z' }, 200],
  ['/add/batch', { adds: [{ payer: 'B', points: 100, timestamp: '2024-01-02T00:00:00Z', expires_at: '2024-07-01T00:00:00Z' }] }, 200],
  ['/spend', { points: 20 }, 200],
  ['/holds', { points: 60, expires_at: '2024-05-01T00:00:00Z' }, 201],
  ['/holds', { points: 10 }, 201],
  ['/holds/1/capture', { points: 50 }, 200],
  ['/holds/2/void', {}, 200],
  ['/spends/1/reversals', { points: 5 }, 201],
  ['/spends/2/reversals', {}, 201]
]

for (const prefix of ['', '/users/1/points']) {
  t.test(`every new write honours the key${prefix === '' ? '' : ' on a user\'s ledger'}`, async t => {
    const { app, clock } = await clockedApp(t, '2024-03-01T09:00:00.100Z')
    if (prefix !== '') await post(app, '/users', { email: 'ada@example.com', name: 'Ada' })
    for (const [i, [path, body, status]] of writes.entries()) {
      const url = `${prefix}${path}`
      const first = await keyed(app, url, `k${i}`, body)
      t.equal(first.statusCode, status, url)
      const before = withoutKeys(await snapshot(app))
      // Later (within the key's 24 hours), when a fresh request would answer differently: a new
      // created_at, or a refusal.
      clock.set(`2024-03-01T${String(10 + i).padStart(2, '0')}:00:00.000Z`)
      const repeat = await keyed(app, url, `k${i}`, body)
      t.equal(repeat.statusCode, status, `${url}: the stored status`)
      t.equal(repeat.body, first.body, `${url}: the stored bytes`)
      t.equal(repeat.headers['idempotent-replayed'], 'true', url)
      t.strictSame(withoutKeys(await snapshot(app)), before, `${url}: applied once`)
    }
    t.equal(await value(app, 'SELECT count(*) FROM point_holds'), 2)
    t.equal(await value(app, 'SELECT count(*) FROM point_reversals'), 2)
    t.equal(await value(app, 'SELECT count(*) FROM point_spends'), 2)
  })
}

t.test('a key used for one hold cannot capture or void another', async t => {
  const { app } = await clockedApp(t, '2024-03-01T09:00:00.100Z')
  await post(app, '/add', { payer: 'A', points: 100, timestamp: '2024-01-01T00:00:00Z' })
  await post(app, '/holds', { points: 10 })
  await post(app, '/holds', { points: 10 })
  t.equal((await keyed(app, '/holds/1/capture', 'k', {})).statusCode, 200)
  const before = await snapshot(app)
  for (const [url, body] of [['/holds/2/capture', {}], ['/holds/1/void', {}], ['/holds/1/capture', { points: 10 }]] as const) {
    const res = await keyed(app, url, 'k', body)
    expectError(t, { status: res.statusCode, body: res.json() }, 409, 'IDEMPOTENCY_KEY_REUSED')
  }
  t.strictSame(await snapshot(app), before)
})

t.test('a refused capture stores no key: its retry runs again', async t => {
  const { app } = await clockedApp(t, '2024-03-01T09:00:00.100Z')
  await post(app, '/add', { payer: 'A', points: 100, timestamp: '2024-01-01T00:00:00Z' })
  await post(app, '/holds', { points: 10 })
  const refused = await keyed(app, '/holds/1/capture', 'retry', { points: 11 })
  expectError(t, { status: refused.statusCode, body: refused.json() }, 400, 'CAPTURE_EXCEEDS_HOLD')
  t.equal(await value(app, 'SELECT count(*) FROM idempotency_keys'), 0)
  const other = await keyed(app, '/holds/1/capture', 'other', { points: 10 })
  t.equal(other.statusCode, 200)
  const retried = await keyed(app, '/holds/1/capture', 'retry', { points: 11 })
  expectError(t, { status: retried.statusCode, body: retried.json() }, 409, 'HOLD_NOT_PENDING')
})

t.test('a replay after a lot expired answers the stored bytes and settles nothing; a refusal settles nothing either', async t => {
  const { app, clock } = await clockedApp(t, '2024-03-01T09:00:00.100Z')
  await post(app, '/add', { payer: 'A', points: 100, timestamp: '2024-01-01T00:00:00Z', expires_at: '2024-03-01T10:00:00Z' })
  await post(app, '/holds', { points: 10 })
  const first = await keyed(app, '/holds/1/capture', 'k', {})
  t.equal(first.statusCode, 200)
  clock.set('2024-03-01T11:00:00.000Z')
  const before = await snapshot(app)
  const again = await keyed(app, '/holds/1/capture', 'k', {})
  t.equal(again.body, first.body)
  t.equal(again.headers['idempotent-replayed'], 'true')
  expectError(t, await post(app, '/holds/1/void', {}), 409, 'HOLD_NOT_PENDING')
  t.strictSame(withoutKeys(await snapshot(app)), withoutKeys(before), 'the lot\'s 90 are still to settle')
  t.strictSame((await get(app, '/balance')).body, { A: 0 })
  t.strictSame((await get(app, '/expirations')).body.items, [{ id: 1, transaction_id: 1, payer: 'A', points: 90, expired_at: '2024-03-01T10:00:00Z' }])
})
