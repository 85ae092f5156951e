import t from 'tap'
import { expectError, get, invariants, post, snapshot, sql } from '../helper.js'
import { clockedApp } from './clocked.js'

// Issue 13, expiry: from the instant the service clock reaches a lot's expires_at its remaining
// points are in no balance and no draw, whether or not the sweep ran (it is off here).

const E = '2024-03-10T00:00:00Z'

t.test('an add answers expires_at only when it has one; the history shows both', async t => {
  const { app } = await clockedApp(t, '2024-03-01T09:00:00.100Z')
  const plain = await post(app, '/add', { payer: 'A', points: 100, timestamp: '2024-03-01T00:00:00Z' })
  t.equal(plain.status, 200)
  t.strictSame(plain.body, { id: 1, payer: 'A', points: 100, timestamp: '2024-03-01T00:00:00Z' }, 'exactly the old shape')
  const expiring = await post(app, '/add', { payer: 'B', points: 50, timestamp: '2024-03-01T00:00:00Z', expires_at: '2024-04-01T02:00:00.250+02:00' })
  t.equal(expiring.status, 200)
  t.strictSame(expiring.body, { id: 2, payer: 'B', points: 50, timestamp: '2024-03-01T00:00:00Z', expires_at: '2024-04-01T00:00:00.250Z' }, 'in UTC')
  t.equal((await post(app, '/add', { payer: 'A', points: -10, timestamp: '2024-03-02T00:00:00Z' })).status, 200)
  const history = await get(app, '/transactions')
  t.strictSame(history.body, {
    items: [
      {
        id: 3,
        payer: 'A',
        points: -10,
        timestamp: '2024-03-02T00:00:00Z',
        created_at: '2024-03-01T09:00:00.100Z',
        remaining: null,
        drawn_from: [{ transaction_id: 1, payer: 'A', timestamp: '2024-03-01T00:00:00Z', points: 10 }],
        expires_at: null,
        expired: null
      },
      { id: 2, payer: 'B', points: 50, timestamp: '2024-03-01T00:00:00Z', created_at: '2024-03-01T09:00:00.100Z', remaining: 50, drawn_from: [], expires_at: '2024-04-01T00:00:00.250Z', expired: 0 },
      { id: 1, payer: 'A', points: 100, timestamp: '2024-03-01T00:00:00Z', created_at: '2024-03-01T09:00:00.100Z', remaining: 90, drawn_from: [], expires_at: null, expired: 0 }
    ],
    next_cursor: null
  })
})

t.test('a spend one millisecond before the expiry draws the lot; one millisecond after cannot', async t => {
  const { app, clock } = await clockedApp(t, '2024-03-01T09:00:00.100Z')
  await post(app, '/add', { payer: 'A', points: 100, timestamp: '2024-01-01T00:00:00Z', expires_at: E })
  await post(app, '/add', { payer: 'B', points: 100, timestamp: '2024-02-01T00:00:00Z' })
  clock.set('2024-03-09T23:59:59.999Z')
  t.strictSame((await post(app, '/spend', { points: 30 })).body, [{ payer: 'A', points: -30 }], 'still A\'s, the oldest')
  t.strictSame((await get(app, '/balance')).body, { A: 70, B: 100 })
  t.strictSame((await get(app, '/expirations')).body, { items: [], next_cursor: null })
  clock.set('2024-03-10T00:00:00.001Z')
  // The spend is the first request to meet the expired lot: it settles it, dated E, then draws.
  t.strictSame((await post(app, '/spend', { points: 30 })).body, [{ payer: 'B', points: -30 }], 'A\'s 70 are gone')
  t.strictSame((await get(app, '/balance')).body, { A: 0, B: 70 })
  t.strictSame((await get(app, '/expirations')).body, {
    items: [{ id: 1, transaction_id: 1, payer: 'A', points: 70, expired_at: E }],
    next_cursor: null
  })
  const before = await snapshot(app)
  expectError(t, await post(app, '/spend', { points: 71 }), 400, 'INSUFFICIENT_POINTS')
  t.strictSame(await snapshot(app), before)
  const lot = (await get(app, '/transactions')).body.items.find((item: { id: number }) => item.id === 1)
  t.match(lot, { remaining: 0, expired: 70, expires_at: E })
  const spends = (await get(app, '/spends')).body.items
  t.strictSame(spends.map((s: { drawn_from: Array<{ transaction_id: number, points: number }> }) => s.drawn_from.map(d => [d.transaction_id, d.points])),
    [[[2, 30]], [[1, 30]]])
  t.strictSame(await invariants(app), [], 'db:check holds')
})

t.test('at the very instant of expires_at the points are gone, first seen by a read', async t => {
  const { app, clock } = await clockedApp(t, '2024-03-01T09:00:00.100Z')
  await post(app, '/add', { payer: 'A', points: 100, timestamp: '2024-01-01T00:00:00Z', expires_at: E })
  await post(app, '/add', { payer: 'B', points: 5, timestamp: '2024-02-01T00:00:00Z' })
  clock.set(E)
  t.strictSame((await get(app, '/balance')).body, { A: 0, B: 5 })
  t.strictSame((await get(app, '/balance/details')).body, {
    A: { available: 0, held: 0, expiring: [] },
    B: { available: 5, held: 0, expiring: [] }
  })
  t.strictSame((await post(app, '/spend?dry_run=true', { points: 5 })).body, [{ payer: 'B', points: -5 }])
  expectError(t, await post(app, '/spend?dry_run=true', { points: 6 }), 400, 'INSUFFICIENT_POINTS')
  t.strictSame((await get(app, '/expirations')).body.items, [{ id: 1, transaction_id: 1, payer: 'A', points: 100, expired_at: E }])
  t.match((await get(app, '/transactions')).body.items[1], { id: 1, remaining: 0, expired: 100 })
  t.equal((await get(app, '/expirations')).body.items.length, 1, 'settled once, not once per read')
})

t.test('an expires_at already past is allowed: the points expire at once, dated expires_at', async t => {
  const { app } = await clockedApp(t, '2024-03-01T09:00:00.100Z')
  await post(app, '/add', { payer: 'B', points: 7, timestamp: '2024-01-01T00:00:00Z' })
  const res = await post(app, '/add', { payer: 'Q', points: 100, timestamp: '2023-01-01T00:00:00Z', expires_at: '2023-06-01T00:00:00Z' })
  t.equal(res.status, 200)
  t.strictSame(res.body, { id: 2, payer: 'Q', points: 100, timestamp: '2023-01-01T00:00:00Z', expires_at: '2023-06-01T00:00:00Z' })
  // expires_at equal to now is already past too.
  const atNow = await post(app, '/add', { payer: 'Q', points: 3, timestamp: '2024-01-01T00:00:00Z', expires_at: '2024-03-01T09:00:00.100Z' })
  t.equal(atNow.status, 200)
  t.strictSame((await get(app, '/balance')).body, { B: 7, Q: 0 }, 'the new payer appears, with 0')
  t.strictSame((await get(app, '/expirations')).body.items, [
    { id: 2, transaction_id: 3, payer: 'Q', points: 3, expired_at: '2024-03-01T09:00:00.100Z' },
    { id: 1, transaction_id: 2, payer: 'Q', points: 100, expired_at: '2023-06-01T00:00:00Z' }
  ])
  t.match((await get(app, '/transactions')).body.items, [{ id: 3, remaining: 0, expired: 3 }, { id: 2, remaining: 0, expired: 100 }, { id: 1, remaining: 7, expired: 0 }])
  // The oldest points of the ledger are Q's; they are not drawable.
  t.strictSame((await post(app, '/spend', { points: 7 })).body, [{ payer: 'B', points: -7 }])
  expectError(t, await post(app, '/add', { payer: 'Q', points: -1, timestamp: '2024-02-01T00:00:00Z' }), 400, 'INSUFFICIENT_PAYER_POINTS')
  t.strictSame(await invariants(app), [], 'db:check holds')
})

t.test('a negative add draws only from unexpired lots', async t => {
  const { app, clock } = await clockedApp(t, '2024-03-01T09:00:00.100Z')
  await post(app, '/add', { payer: 'A', points: 100, timestamp: '2024-01-01T00:00:00Z', expires_at: E })
  await post(app, '/add', { payer: 'A', points: 50, timestamp: '2024-01-02T00:00:00Z' })
  clock.set('2024-03-10T00:00:00.500Z')
  const before = await snapshot(app)
  const refused = await post(app, '/add', { payer: 'A', points: -51, timestamp: '2024-03-10T00:00:00Z' })
  expectError(t, refused, 400, 'INSUFFICIENT_PAYER_POINTS')
  t.equal(refused.body.message, 'Payer A has 50 points; cannot take 51')
  // The refusal rolls back the settling it did first, with the rest.
  t.strictSame(await snapshot(app), before)
  t.equal((await post(app, '/add', { payer: 'A', points: -50, timestamp: '2024-03-10T00:00:00Z' })).status, 200)
  t.strictSame((await get(app, '/balance')).body, { A: 0 })
  const negative = (await get(app, '/transactions')).body.items[0]
  t.strictSame(negative.drawn_from, [{ transaction_id: 2, payer: 'A', timestamp: '2024-01-02T00:00:00Z', points: 50 }])
  t.strictSame((await get(app, '/expirations')).body.items, [{ id: 1, transaction_id: 1, payer: 'A', points: 100, expired_at: E }])
})

t.test('a backdated add beside an expired lot moves no draw onto it', async t => {
  const { app, clock } = await clockedApp(t, '2024-03-01T09:00:00.100Z')
  await post(app, '/add', { payer: 'A', points: 100, timestamp: '2024-01-10T00:00:00Z', expires_at: E })
  await post(app, '/add', { payer: 'A', points: -40, timestamp: '2024-01-20T00:00:00Z' })
  clock.set('2024-03-11T00:00:00.100Z')
  // Older than the lot the -40 drew: before the expiry it would take those 40 over.
  t.equal((await post(app, '/add', { payer: 'A', points: 30, timestamp: '2024-01-01T00:00:00Z' })).status, 200)
  t.strictSame((await get(app, '/balance')).body, { A: 30 })
  t.strictSame(await sql(app, 'SELECT transaction_id, remaining, adjusted, expired FROM point_lots ORDER BY transaction_id'), [
    { transaction_id: 1, remaining: 0, adjusted: 40, expired: 60 },
    { transaction_id: 3, remaining: 30, adjusted: 0, expired: 0 }
  ])
  const negative = (await get(app, '/transactions')).body.items.find((item: { id: number }) => item.id === 2)
  t.strictSame(negative.drawn_from, [{ transaction_id: 1, payer: 'A', timestamp: '2024-01-10T00:00:00Z', points: 40 }])
  t.strictSame((await get(app, '/expirations')).body.items, [{ id: 1, transaction_id: 1, payer: 'A', points: 60, expired_at: E }])
  t.strictSame((await post(app, '/spend', { points: 30 })).body, [{ payer: 'A', points: -30 }])
  t.strictSame(await invariants(app), [], 'db:check holds')
})

t.test('a backdated add that is itself expired takes over no draws', async t => {
  const { app } = await clockedApp(t, '2024-03-01T09:00:00.100Z')
  await post(app, '/add', { payer: 'A', points: 100, timestamp: '2024-01-10T00:00:00Z' })
  await post(app, '/add', { payer: 'A', points: -40, timestamp: '2024-01-20T00:00:00Z' })
  t.equal((await post(app, '/add', { payer: 'A', points: 30, timestamp: '2024-01-01T00:00:00Z', expires_at: '2024-02-01T00:00:00Z' })).status, 200)
  t.strictSame((await get(app, '/balance')).body, { A: 60 })
  t.strictSame(await sql(app, 'SELECT transaction_id, remaining, adjusted, expired FROM point_lots ORDER BY transaction_id'), [
    { transaction_id: 1, remaining: 60, adjusted: 40, expired: 0 },
    { transaction_id: 3, remaining: 0, adjusted: 0, expired: 30 }
  ])
  t.strictSame((await get(app, '/expirations')).body.items, [{ id: 1, transaction_id: 3, payer: 'A', points: 30, expired_at: '2024-02-01T00:00:00Z' }])
})

t.test('a backdated add still takes over draws from a newer lot that has not expired', async t => {
  const { app } = await clockedApp(t, '2024-03-01T09:00:00.100Z')
  await post(app, '/add', { payer: 'A', points: 100, timestamp: '2024-01-10T00:00:00Z', expires_at: E })
  await post(app, '/add', { payer: 'A', points: -40, timestamp: '2024-01-20T00:00:00Z' })
  await post(app, '/add', { payer: 'A', points: 30, timestamp: '2024-01-01T00:00:00Z', expires_at: E })
  t.strictSame(await sql(app, 'SELECT transaction_id, remaining, adjusted FROM point_lots ORDER BY transaction_id'), [
    { transaction_id: 1, remaining: 90, adjusted: 10 },
    { transaction_id: 3, remaining: 0, adjusted: 30 }
  ])
  t.strictSame((await get(app, '/balance')).body, { A: 90 })
})

t.test('expirations page newest first', async t => {
  const { app, clock } = await clockedApp(t, '2024-03-01T09:00:00.100Z')
  for (let day = 1; day <= 5; day++) {
    await post(app, '/add', { payer: `P${day}`, points: day, timestamp: '2024-01-01T00:00:00Z', expires_at: `2024-04-0${day}T00:00:00Z` })
  }
  clock.set('2024-05-01T00:00:00.100Z')
  const first = await get(app, '/expirations?limit=2')
  t.strictSame(first.body, {
    items: [
      { id: 5, transaction_id: 5, payer: 'P5', points: 5, expired_at: '2024-04-05T00:00:00Z' },
      { id: 4, transaction_id: 4, payer: 'P4', points: 4, expired_at: '2024-04-04T00:00:00Z' }
    ],
    next_cursor: 4
  })
  const second = await get(app, '/expirations?limit=2&cursor=4')
  t.strictSame(second.body.items.map((e: { id: number }) => e.id), [3, 2])
  const last = await get(app, `/expirations?limit=2&cursor=${second.body.next_cursor as number}`)
  t.strictSame(last.body, { items: [{ id: 1, transaction_id: 1, payer: 'P1', points: 1, expired_at: '2024-04-01T00:00:00Z' }], next_cursor: null })
  expectError(t, await get(app, '/expirations?limit=0'), 400, 'INVALID_REQUEST')
})

t.test('a batch takes expires_at per add, each under the rules of POST /add', async t => {
  const { app } = await clockedApp(t, '2024-03-01T09:00:00.100Z')
  const res = await post(app, '/add/batch', {
    adds: [
      { payer: 'A', points: 10, timestamp: '2024-01-01T00:00:00Z', expires_at: E },
      { payer: 'A', points: 5, timestamp: '2024-01-01T00:00:00Z', expires_at: '2024-02-01T00:00:00Z' },
      { payer: 'B', points: 1, timestamp: '2024-01-01T00:00:00Z' }
    ]
  })
  t.strictSame(res.body, { count: 3, first_id: 1, last_id: 3 })
  t.strictSame((await get(app, '/balance')).body, { A: 10, B: 1 })
  t.match((await get(app, '/transactions')).body.items, [
    { id: 3, expires_at: null, expired: 0 },
    { id: 2, expires_at: '2024-02-01T00:00:00Z', expired: 5, remaining: 0 },
    { id: 1, expires_at: E, expired: 0, remaining: 10 }
  ])
  t.strictSame((await get(app, '/expirations')).body.items, [{ id: 1, transaction_id: 2, payer: 'A', points: 5, expired_at: '2024-02-01T00:00:00Z' }])
  t.strictSame(await invariants(app), [], 'db:check holds')
})

t.test('an add\'s expires_at is refused when not later than its timestamp, on a negative add, or malformed', async t => {
  const { app } = await clockedApp(t, '2024-03-01T09:00:00.100Z')
  await post(app, '/add', { payer: 'A', points: 100, timestamp: '2024-01-01T00:00:00Z' })
  const before = await snapshot(app)
  const ts = '2024-02-01T00:00:00Z'
  for (const [what, add, code] of [
    ['equal to timestamp', { payer: 'A', points: 5, timestamp: ts, expires_at: ts }, 'INVALID_EXPIRY'],
    ['equal to timestamp, in another zone', { payer: 'A', points: 5, timestamp: ts, expires_at: '2024-02-01T01:00:00+01:00' }, 'INVALID_EXPIRY'],
    ['before timestamp', { payer: 'A', points: 5, timestamp: ts, expires_at: '2024-01-31T23:59:59.999Z' }, 'INVALID_EXPIRY'],
    ['on a negative add', { payer: 'A', points: -5, timestamp: ts, expires_at: '2025-01-01T00:00:00Z' }, 'INVALID_EXPIRY'],
    ['more than millisecond precision', { payer: 'A', points: 5, timestamp: ts, expires_at: '2025-01-01T00:00:00.0001Z' }, 'INVALID_TIMESTAMP'],
    ['not a time', { payer: 'A', points: 5, timestamp: ts, expires_at: 'next year' }, 'INVALID_REQUEST'],
    ['null', { payer: 'A', points: 5, timestamp: ts, expires_at: null }, 'INVALID_REQUEST']
  ] as const) {
    const res = await post(app, '/add', add)
    t.equal(res.body.code, code, what)
    expectError(t, res, 400, code)
  }
  const batch = await post(app, '/add/batch', {
    adds: [{ payer: 'B', points: 5, timestamp: ts }, { payer: 'A', points: -5, timestamp: ts, expires_at: '2025-01-01T00:00:00Z' }]
  })
  expectError(t, batch, 400, 'BATCH_REJECTED')
  t.equal(batch.body.index, 1)
  t.match(batch.body.message, /adds\[1\] refused \(INVALID_EXPIRY\)/)
  const late = await post(app, '/add/batch', { adds: [{ payer: 'B', points: 5, timestamp: ts, expires_at: ts }] })
  t.match(late.body, { code: 'BATCH_REJECTED', index: 0, message: /INVALID_EXPIRY/ })
  t.strictSame(await snapshot(app), before)
})

t.test('held points are not there for a negative add to take', async t => {
  const { app } = await clockedApp(t, '2024-03-01T09:00:00.100Z')
  await post(app, '/add', { payer: 'A', points: 100, timestamp: '2024-01-01T00:00:00Z' })
  await post(app, '/holds', { points: 80 })
  const before = await snapshot(app)
  const refused = await post(app, '/add', { payer: 'A', points: -21, timestamp: '2024-02-01T00:00:00Z' })
  expectError(t, refused, 400, 'INSUFFICIENT_PAYER_POINTS')
  t.equal(refused.body.message, 'Payer A has 20 points; cannot take 21')
  t.strictSame(await snapshot(app), before)
  t.equal((await post(app, '/add', { payer: 'A', points: -20, timestamp: '2024-02-01T00:00:00Z' })).status, 200)
  t.strictSame((await get(app, '/balance/details')).body, { A: { available: 0, held: 80, expiring: [] } })
  t.strictSame(await invariants(app), [], 'db:check holds')
})
