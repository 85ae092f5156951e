import t from 'tap'
import { expectError, get, post, snapshot, sql } from '../helper.js'
import { clockedApp, rawBalance } from './clocked.js'

// Issue 13, balances: GET /balance/details (available, held, next expirations) and GET /balance?at=T
// (what GET /balance answered at instant T).

t.test('?at= answers the balance at that instant: nothing before the first change, then each change', async t => {
  const { app, clock } = await clockedApp(t, '2024-03-01T09:00:00.100Z')
  await post(app, '/add', { payer: 'A', points: 100, timestamp: '2020-01-01T00:00:00Z' })
  clock.set('2024-03-01T10:00:00.100Z')
  await post(app, '/add', { payer: 'B', points: 50, timestamp: '2020-01-01T00:00:00Z' })
  clock.set('2024-03-01T11:00:00.100Z')
  await post(app, '/spend', { points: 120 })
  // Two changes at one instant: the later one counts.
  await post(app, '/add', { payer: 'B', points: 5, timestamp: '2020-01-01T00:00:00Z' })
  clock.set('2024-03-01T12:00:00.100Z')
  const at = async (instant: string) => (await get(app, `/balance?at=${encodeURIComponent(instant)}`)).body
  t.strictSame(await at('2024-03-01T09:00:00.099Z'), {}, 'before anything: the add\'s own timestamp does not count')
  t.strictSame(await at('2020-06-01T00:00:00Z'), {})
  t.strictSame(await at('2024-03-01T09:00:00.100Z'), { A: 100 })
  t.strictSame(await at('2024-03-01T09:30:00Z'), { A: 100 })
  t.strictSame(await at('2024-03-01T10:00:00.100Z'), { A: 100, B: 50 })
  t.strictSame(await at('2024-03-01T11:00:00.100+01:00'), { A: 100, B: 50 }, 'an offset: 10:00:00.100Z')
  t.strictSame(await at('2024-03-01T11:00:00.099Z'), { A: 100, B: 50 })
  t.strictSame(await at('2024-03-01T11:00:00.100Z'), { A: 0, B: 35 })
  t.strictSame(await at('2024-03-01T12:00:00.100Z'), { A: 0, B: 35 }, 'now is allowed')
  t.equal(await rawBalance(app, '/balance?at=2024-03-01T12:00:00.100Z'), await rawBalance(app), 'the same bytes as GET /balance now')
  t.equal(await rawBalance(app), '{"A":0,"B":35}')
})

t.test('?at= answers keys sorted, integer-like payer names included', async t => {
  const { app, clock } = await clockedApp(t, '2024-03-01T09:00:00.100Z')
  for (const payer of ['b', '10', 'Z', 'A', '2']) await post(app, '/add', { payer, points: 1, timestamp: '2020-01-01T00:00:00Z' })
  clock.set('2024-03-02T00:00:00.000Z')
  t.equal(await rawBalance(app, '/balance?at=2024-03-01T09:00:00.100Z'), '{"10":1,"2":1,"A":1,"Z":1,"b":1}')
})

t.test('?at= an expiry instant: the points are gone from that instant', async t => {
  const { app, clock } = await clockedApp(t, '2024-03-01T09:00:00.100Z')
  await post(app, '/add', { payer: 'A', points: 100, timestamp: '2024-01-01T00:00:00Z', expires_at: '2024-03-10T00:00:00Z' })
  await post(app, '/add', { payer: 'B', points: 10, timestamp: '2024-01-01T00:00:00Z' })
  clock.set('2024-03-05T00:00:00.100Z')
  await post(app, '/spend', { points: 30 })
  clock.set('2024-04-01T00:00:00.000Z')
  // The first request since the expiry is this read: it settles the lot, dated 2024-03-10.
  t.strictSame((await get(app, '/balance?at=2024-03-09T23:59:59.999Z')).body, { A: 70, B: 10 })
  t.strictSame((await get(app, '/balance?at=2024-03-10T00:00:00Z')).body, { A: 0, B: 10 })
  t.strictSame((await get(app, '/balance?at=2024-03-05T00:00:00.099Z')).body, { A: 100, B: 10 })
  t.strictSame((await get(app, '/balance')).body, { A: 0, B: 10 })
  t.strictSame((await get(app, '/expirations')).body.items, [{ id: 1, transaction_id: 1, payer: 'A', points: 70, expired_at: '2024-03-10T00:00:00Z' }])
})

t.test('?at= follows holds, captures, voids and reversals', async t => {
  const { app, clock } = await clockedApp(t, '2024-03-01T09:00:00.100Z')
  await post(app, '/add', { payer: 'A', points: 100, timestamp: '2024-01-01T00:00:00Z' })
  clock.set('2024-03-02T00:00:00.100Z')
  await post(app, '/holds', { points: 60 })
  await post(app, '/holds', { points: 10 })
  clock.set('2024-03-03T00:00:00.100Z')
  await post(app, '/holds/1/capture', { points: 50 })
  clock.set('2024-03-04T00:00:00.100Z')
  await post(app, '/holds/2/void', {})
  clock.set('2024-03-05T00:00:00.100Z')
  await post(app, '/spends/1/reversals', { points: 20 })
  clock.set('2024-03-06T00:00:00.100Z')
  const at = async (instant: string) => (await get(app, `/balance?at=${instant}`)).body
  t.strictSame(await at('2024-03-01T23:00:00Z'), { A: 100 })
  t.strictSame(await at('2024-03-02T12:00:00Z'), { A: 30 }, 'held points are not available')
  t.strictSame(await at('2024-03-03T12:00:00Z'), { A: 40 }, 'the uncaptured 10 came back')
  t.strictSame(await at('2024-03-04T12:00:00Z'), { A: 50 })
  t.strictSame(await at('2024-03-05T12:00:00Z'), { A: 70 })
  t.strictSame((await get(app, '/balance')).body, { A: 70 })
})

t.test('a change writes one history row per payer, a batch included', async t => {
  const { app, clock } = await clockedApp(t, '2024-03-01T09:00:00.100Z')
  await post(app, '/add/batch', {
    adds: [
      { payer: 'A', points: 10, timestamp: '2024-01-01T00:00:00Z' },
      { payer: 'A', points: 20, timestamp: '2024-01-02T00:00:00Z' },
      { payer: 'B', points: 5, timestamp: '2024-01-01T00:00:00Z' },
      { payer: 'A', points: -5, timestamp: '2024-01-03T00:00:00Z' }
    ]
  })
  const rows = async () => await sql(app, 'SELECT payer, at, balance FROM point_balance_history ORDER BY payer, at')
  t.strictSame(await rows(), [
    { payer: 'A', at: '2024-03-01T09:00:00.100Z', balance: 25 },
    { payer: 'B', at: '2024-03-01T09:00:00.100Z', balance: 5 }
  ])
  clock.set('2024-03-01T10:00:00.100Z')
  await post(app, '/spend', { points: 30 })
  t.strictSame(await rows(), [
    { payer: 'A', at: '2024-03-01T09:00:00.100Z', balance: 25 },
    { payer: 'A', at: '2024-03-01T10:00:00.100Z', balance: 0 },
    { payer: 'B', at: '2024-03-01T09:00:00.100Z', balance: 5 },
    { payer: 'B', at: '2024-03-01T10:00:00.100Z', balance: 0 }
  ])
})

t.test('?at= in the future or malformed is 400 INVALID_TIMESTAMP and changes nothing', async t => {
  const { app } = await clockedApp(t, '2024-03-01T09:00:00.100Z')
  await post(app, '/add', { payer: 'A', points: 100, timestamp: '2024-01-01T00:00:00Z' })
  const before = await snapshot(app)
  for (const at of ['2024-03-01T09:00:00.101Z', '2030-01-01T00:00:00Z', 'yesterday', '2024-03-01T09:00:00.0001Z', '2024-02-30T00:00:00Z', '2024-03-01', '2024-03-01T00:00:00']) {
    expectError(t, await get(app, `/balance?at=${at}`), 400, 'INVALID_TIMESTAMP')
  }
  expectError(t, await get(app, '/balance?when=2024-03-01T00:00:00Z'), 400, 'INVALID_REQUEST')
  expectError(t, await get(app, '/balance/details?at=2024-03-01T00:00:00Z'), 400, 'INVALID_REQUEST')
  t.strictSame(await snapshot(app), before)
})

t.test('balance details: available, held and the next ten expirations per payer, keys sorted', async t => {
  const { app, clock } = await clockedApp(t, '2024-03-01T09:00:00.100Z')
  await post(app, '/add', { payer: '10', points: 5, timestamp: '2023-01-01T00:00:00Z' })
  await post(app, '/add', { payer: 'A', points: 3, timestamp: '2023-06-01T00:00:00Z' })
  await post(app, '/add', { payer: 'A', points: -3, timestamp: '2023-06-02T00:00:00Z' })
  for (const day of [5, 1, 12, 3, 9, 2, 11, 4, 8, 6, 10, 7]) {
    await post(app, '/add', { payer: 'Z', points: day, timestamp: '2024-01-01T00:00:00Z', expires_at: `2024-04-${String(day).padStart(2, '0')}T00:00:00Z` })
  }
  await post(app, '/add', { payer: 'Z', points: 100, timestamp: '2024-01-01T00:00:00Z', expires_at: '2024-04-03T00:00:00Z' })
  await post(app, '/add', { payer: 'Z', points: 1000, timestamp: '2024-01-01T00:00:00Z' })
  await post(app, '/add', { payer: 'b', points: 7, timestamp: '2024-01-01T00:00:00Z', expires_at: '2024-02-01T00:00:00Z' })
  // 5 from "10", then 2 of Z's first lot (the one expiring on April 5th).
  t.equal((await post(app, '/holds', { points: 7 })).status, 201)
  const expiring = (days: number[]) => days.map(day => ({ expires_at: `2024-04-${String(day).padStart(2, '0')}T00:00:00Z`, points: day === 3 ? 103 : day === 5 ? 3 : day }))
  const res = await app.inject('/balance/details')
  t.equal(res.statusCode, 200)
  t.strictSame(JSON.parse(res.body), {
    10: { available: 0, held: 5, expiring: [] },
    A: { available: 0, held: 0, expiring: [] },
    Z: { available: 1176, held: 2, expiring: expiring([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]) },
    b: { available: 0, held: 0, expiring: [] }
  })
  const keys = ['"10":', '"A":', '"Z":', '"b":'].map(key => res.body.indexOf(key))
  t.ok(keys.every((at, i) => at >= 0 && (i === 0 || at > keys[i - 1]!)), 'keys sorted as sent')
  clock.set('2024-04-01T00:00:00.000Z')
  t.strictSame((await get(app, '/balance/details')).body.Z, { available: 1175, held: 2, expiring: expiring([2, 3, 4, 5, 6, 7, 8, 9, 10, 11]) })
  t.strictSame((await get(app, '/balance')).body, { 10: 0, A: 0, Z: 1175, b: 0 })
})

t.test('balance details of an empty ledger', async t => {
  const { app } = await clockedApp(t, '2024-03-01T09:00:00.100Z')
  t.equal(await rawBalance(app, '/balance/details'), '{}')
  t.equal(await rawBalance(app, '/balance?at=2024-03-01T09:00:00.100Z'), '{}')
})
