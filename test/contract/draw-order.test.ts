import t from 'tap'
import { get, invariants, post } from '../helper.js'
import { clockedApp } from './clocked.js'

// POINTS_DRAW_ORDER: which lots a spend or a hold draws first. The README's example: three payers,
// one of whose points never expire.
const readmeAdds = [
  { payer: 'DANNON', points: 300, timestamp: '2024-01-01T00:00:00Z' },
  { payer: 'UNILEVER', points: 200, timestamp: '2024-02-01T00:00:00Z', expires_at: '2024-12-31T00:00:00Z' },
  { payer: 'MILLER COORS', points: 1000, timestamp: '2024-03-01T00:00:00Z', expires_at: '2024-06-30T00:00:00Z' }
]
const start = '2024-04-01T12:00:00.500Z'

t.test('timestamp (the default): oldest timestamp first, whatever the expiry', async t => {
  const { app } = await clockedApp(t, start)
  for (const add of readmeAdds) await post(app, '/add', add)
  t.strictSame((await post(app, '/spend', { points: 1100 })).body,
    [{ payer: 'DANNON', points: -300 }, { payer: 'UNILEVER', points: -200 }, { payer: 'MILLER COORS', points: -600 }])
  t.strictSame((await get(app, '/balance')).body, { DANNON: 0, 'MILLER COORS': 400, UNILEVER: 0 })
})

t.test('POINTS_DRAW_ORDER=timestamp is the default spelled out', async t => {
  const { app } = await clockedApp(t, start, { POINTS_DRAW_ORDER: 'timestamp' })
  for (const add of readmeAdds) await post(app, '/add', add)
  const hold = await post(app, '/holds', { points: 1100 })
  t.strictSame(hold.body.drawn_from, [
    { transaction_id: 1, payer: 'DANNON', timestamp: '2024-01-01T00:00:00Z', points: 300 },
    { transaction_id: 2, payer: 'UNILEVER', timestamp: '2024-02-01T00:00:00Z', points: 200 },
    { transaction_id: 3, payer: 'MILLER COORS', timestamp: '2024-03-01T00:00:00Z', points: 600 }
  ])
})

t.test('expiry: soonest expires_at first, never-expiring last; spends and holds alike, negative adds not', async t => {
  const { app } = await clockedApp(t, start, { POINTS_DRAW_ORDER: 'expiry' })
  for (const add of readmeAdds) await post(app, '/add', add)
  t.strictSame((await post(app, '/spend', { points: 1100 })).body,
    [{ payer: 'MILLER COORS', points: -1000 }, { payer: 'UNILEVER', points: -100 }])
  t.strictSame((await get(app, '/balance')).body, { DANNON: 300, 'MILLER COORS': 0, UNILEVER: 100 })
  const hold = await post(app, '/holds', { points: 150 })
  t.equal(hold.status, 201)
  t.strictSame(hold.body.drawn_from, [
    { transaction_id: 2, payer: 'UNILEVER', timestamp: '2024-02-01T00:00:00Z', points: 100 },
    { transaction_id: 1, payer: 'DANNON', timestamp: '2024-01-01T00:00:00Z', points: 50 }
  ])
  // A negative add takes back the payer's oldest points, whatever the draw order.
  await post(app, '/add', { payer: 'DANNON', points: 50, timestamp: '2024-03-15T00:00:00Z', expires_at: '2024-05-01T00:00:00Z' })
  await post(app, '/add', { payer: 'DANNON', points: -20, timestamp: '2024-03-20T00:00:00Z' })
  const negative = (await get(app, '/transactions')).body.items[0]
  t.strictSame(negative.drawn_from, [{ transaction_id: 1, payer: 'DANNON', timestamp: '2024-01-01T00:00:00Z', points: 20 }])
  // A spend takes the soonest to expire: the 50 added last.
  t.strictSame((await post(app, '/spend', { points: 10 })).body, [{ payer: 'DANNON', points: -10 }])
  t.strictSame((await get(app, '/spends')).body.items[0].drawn_from,
    [{ transaction_id: 4, payer: 'DANNON', timestamp: '2024-03-15T00:00:00Z', points: 10 }])
  t.strictSame((await get(app, '/balance/details')).body, {
    DANNON: { available: 270, held: 50, expiring: [{ expires_at: '2024-05-01T00:00:00Z', points: 40 }] },
    'MILLER COORS': { available: 0, held: 0, expiring: [] },
    UNILEVER: { available: 0, held: 100, expiring: [] }
  })
  t.strictSame(await invariants(app), [], 'db:check holds')
})

t.test('expiry: equal expires_at by timestamp, then arrival', async t => {
  const { app } = await clockedApp(t, start, { POINTS_DRAW_ORDER: 'expiry' })
  await post(app, '/add', { payer: 'S', points: 5, timestamp: '2023-01-01T00:00:00Z' })
  await post(app, '/add', { payer: 'P', points: 5, timestamp: '2024-02-10T00:00:00Z', expires_at: '2024-05-01T00:00:00Z' })
  await post(app, '/add', { payer: 'Q', points: 5, timestamp: '2024-02-05T00:00:00Z', expires_at: '2024-05-01T00:00:00Z' })
  await post(app, '/add', { payer: 'R', points: 5, timestamp: '2024-02-05T00:00:00Z', expires_at: '2024-05-01T00:00:00Z' })
  t.strictSame((await post(app, '/spend?dry_run=true', { points: 16 })).body,
    [{ payer: 'Q', points: -5 }, { payer: 'R', points: -5 }, { payer: 'P', points: -5 }, { payer: 'S', points: -1 }])
  t.strictSame((await post(app, '/spend', { points: 16 })).body,
    [{ payer: 'Q', points: -5 }, { payer: 'R', points: -5 }, { payer: 'P', points: -5 }, { payer: 'S', points: -1 }])
})
