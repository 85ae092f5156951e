import t from 'tap'
import { expectError, get, invariants, post, snapshot } from '../helper.js'
import { clockedApp, reverse } from './clocked.js'

// Issue 13, refunds: POST /spends/:spendId/reversals gives points back to exactly the lots the spend
// drew from, the last drawn first.

const lotA = { transaction_id: 1, payer: 'A', timestamp: '2024-01-01T00:00:00Z' }
const lotB = { transaction_id: 2, payer: 'B', timestamp: '2024-01-02T00:00:00Z' }
const lotC = { transaction_id: 3, payer: 'C', timestamp: '2024-01-03T00:00:00Z' }

t.test('a whole reversal gives every point back; its answer, the spend and the list show it', async t => {
  const { app, clock } = await clockedApp(t, '2024-03-01T09:00:00.100Z')
  await post(app, '/add', { payer: 'A', points: 100, timestamp: lotA.timestamp })
  await post(app, '/add', { payer: 'B', points: 100, timestamp: lotB.timestamp })
  t.strictSame((await post(app, '/spend', { points: 150 })).body, [{ payer: 'A', points: -100 }, { payer: 'B', points: -50 }])
  clock.set('2024-03-02T09:00:00.200Z')
  const res = await reverse(app, 1)
  t.equal(res.status, 201)
  const reversal = {
    id: 1,
    spend_id: 1,
    points: 150,
    restored_to: [{ ...lotB, points: 50 }, { ...lotA, points: 100 }],
    created_at: '2024-03-02T09:00:00.200Z'
  }
  t.strictSame(res.body, reversal, 'the last lot drawn is restored first')
  t.strictSame((await get(app, '/balance')).body, { A: 100, B: 100 })
  t.strictSame((await get(app, '/spends')).body, {
    items: [{ id: 1, points: 150, created_at: '2024-03-01T09:00:00.100Z', drawn_from: [{ ...lotA, points: 100 }, { ...lotB, points: 50 }], reversed: 150 }],
    next_cursor: null
  }, 'the spend keeps what it drew, and says how much is reversed')
  t.strictSame((await get(app, '/spends/1/reversals')).body, { items: [reversal], next_cursor: null })
  t.match((await get(app, '/transactions')).body.items, [{ id: 2, remaining: 100 }, { id: 1, remaining: 100 }])
  t.strictSame((await post(app, '/spend', { points: 200 })).body, [{ payer: 'A', points: -100 }, { payer: 'B', points: -100 }])
})

t.test('partial reversals undo the newest draws first and continue where the last one stopped', async t => {
  const { app } = await clockedApp(t, '2024-03-01T09:00:00.100Z')
  await post(app, '/add', { payer: 'A', points: 100, timestamp: lotA.timestamp })
  await post(app, '/add', { payer: 'B', points: 100, timestamp: lotB.timestamp })
  await post(app, '/add', { payer: 'C', points: 100, timestamp: lotC.timestamp })
  await post(app, '/spend', { points: 250 })
  const first = await reverse(app, 1, { points: 70 })
  t.equal(first.status, 201)
  t.strictSame(first.body.restored_to, [{ ...lotC, points: 50 }, { ...lotB, points: 20 }])
  t.strictSame((await get(app, '/balance')).body, { A: 0, B: 20, C: 100 })
  const second = await reverse(app, 1, { points: 100 })
  t.strictSame(second.body.restored_to, [{ ...lotB, points: 80 }, { ...lotA, points: 20 }], 'skips what the first restored')
  t.strictSame((await get(app, '/balance')).body, { A: 20, B: 100, C: 100 })
  const before = await snapshot(app)
  const over = await reverse(app, 1, { points: 81 })
  expectError(t, over, 400, 'REVERSAL_EXCEEDS_SPEND')
  t.match(over.body.message, /\b80 points left\b/, 'says how much is left')
  t.strictSame(await snapshot(app), before)
  const rest = await reverse(app, 1)
  t.equal(rest.status, 201)
  t.match(rest.body, { id: 3, spend_id: 1, points: 80 })
  t.strictSame(rest.body.restored_to, [{ ...lotA, points: 80 }])
  t.equal((await get(app, '/spends')).body.items[0].reversed, 250)
  const page = await get(app, '/spends/1/reversals?limit=2')
  t.strictSame(page.body.items.map((r: { id: number, points: number }) => [r.id, r.points]), [[3, 80], [2, 100]], 'newest first')
  t.equal(page.body.next_cursor, 2)
  t.strictSame((await get(app, '/spends/1/reversals?limit=2&cursor=2')).body, { items: [first.body], next_cursor: null })
  // FIFO holds after the refunds: A's points are the oldest again.
  t.strictSame((await post(app, '/spend', { points: 110 })).body, [{ payer: 'A', points: -100 }, { payer: 'B', points: -10 }])
  t.strictSame(await invariants(app), [], 'db:check holds')
})

t.test('nothing left to reverse: {} is refused and says 0 are left', async t => {
  const { app } = await clockedApp(t, '2024-03-01T09:00:00.100Z')
  await post(app, '/add', { payer: 'A', points: 100, timestamp: lotA.timestamp })
  await post(app, '/spend', { points: 10 })
  t.equal((await reverse(app, 1, { points: 10 })).status, 201)
  const before = await snapshot(app)
  const again = await reverse(app, 1)
  expectError(t, again, 400, 'REVERSAL_EXCEEDS_SPEND')
  t.equal(again.body.message, 'Spend 1 is fully reversed: it has 0 points left to reverse')
  const one = await reverse(app, 1, { points: 1 })
  expectError(t, one, 400, 'REVERSAL_EXCEEDS_SPEND')
  t.equal(one.body.message, again.body.message)
  t.strictSame(await snapshot(app), before)
})

t.test('a reversal after the lot expired restores the points and expires them at once', async t => {
  const { app, clock } = await clockedApp(t, '2024-03-01T09:00:00.100Z')
  await post(app, '/add', { payer: 'A', points: 100, timestamp: lotA.timestamp, expires_at: '2024-03-10T00:00:00Z' })
  await post(app, '/add', { payer: 'B', points: 100, timestamp: lotB.timestamp })
  await post(app, '/spend', { points: 120 })
  clock.set('2024-03-15T08:00:00.300Z')
  t.strictSame((await get(app, '/expirations')).body.items, [], 'A\'s lot had nothing left to expire')
  const res = await reverse(app, 1)
  t.equal(res.status, 201)
  t.strictSame(res.body, {
    id: 1, spend_id: 1, points: 120, restored_to: [{ ...lotB, points: 20 }, { ...lotA, points: 100 }], created_at: '2024-03-15T08:00:00.300Z'
  })
  t.strictSame((await get(app, '/balance')).body, { A: 0, B: 100 }, 'A\'s points are not in the balance')
  t.strictSame((await get(app, '/expirations')).body, {
    items: [{ id: 1, transaction_id: 1, payer: 'A', points: 100, expired_at: '2024-03-15T08:00:00.300Z' }],
    next_cursor: null
  }, 'an entry dated the reversal')
  t.match((await get(app, '/transactions')).body.items, [{ id: 2, remaining: 100, expired: 0 }, { id: 1, remaining: 0, expired: 100 }])
  t.strictSame((await get(app, '/balance/details')).body, {
    A: { available: 0, held: 0, expiring: [] },
    B: { available: 100, held: 0, expiring: [] }
  })
  expectError(t, await post(app, '/spend', { points: 101 }), 400, 'INSUFFICIENT_POINTS')
  t.equal((await get(app, '/spends')).body.items[0].reversed, 120)
  t.strictSame(await invariants(app), [], 'db:check holds')
})

t.test('a reversal before the lot expires: the restored points expire with it, dated its expires_at', async t => {
  const { app, clock } = await clockedApp(t, '2024-03-01T09:00:00.100Z')
  await post(app, '/add', { payer: 'A', points: 100, timestamp: lotA.timestamp, expires_at: '2024-03-10T00:00:00Z' })
  await post(app, '/spend', { points: 100 })
  clock.set('2024-03-05T00:00:00.100Z')
  await reverse(app, 1, { points: 40 })
  t.strictSame((await get(app, '/balance/details')).body, { A: { available: 40, held: 0, expiring: [{ expires_at: '2024-03-10T00:00:00Z', points: 40 }] } })
  clock.set('2024-03-10T00:00:00.000Z')
  t.strictSame((await get(app, '/balance')).body, { A: 0 })
  t.strictSame((await get(app, '/expirations')).body.items, [{ id: 1, transaction_id: 1, payer: 'A', points: 40, expired_at: '2024-03-10T00:00:00Z' }])
  t.strictSame(await invariants(app), [], 'db:check holds')
})

t.test('two concurrent reversals of one spend give back no more than it drew', async t => {
  const { app } = await clockedApp(t, '2024-03-01T09:00:00.100Z')
  await post(app, '/add', { payer: 'A', points: 100, timestamp: lotA.timestamp })
  await post(app, '/add', { payer: 'B', points: 100, timestamp: lotB.timestamp })
  await post(app, '/spend', { points: 150 })
  const [first, second] = await Promise.all([reverse(app, 1), reverse(app, 1, { points: 100 })])
  const won = [first!, second!].filter(r => r.status === 201)
  const lost = [first!, second!].filter(r => r.status !== 201)
  t.equal(won.length, 1)
  expectError(t, lost[0]!, 400, 'REVERSAL_EXCEEDS_SPEND')
  t.equal((await get(app, '/spends')).body.items[0].reversed, won[0]!.body.points)
  const balance = (await get(app, '/balance')).body
  t.equal(balance.A + balance.B, 50 + (won[0]!.body.points as number))
  // Two more of 1 point: both refused when nothing is left, both through when 50 points are.
  const [x, y] = await Promise.all([reverse(app, 1, { points: 1 }), reverse(app, 1, { points: 1 })])
  t.strictSame([x!.status, y!.status], won[0]!.body.points === 150 ? [400, 400] : [201, 201])
  t.strictSame(await invariants(app), [], 'db:check holds')
})

t.test('refused reversals change nothing', async t => {
  const { app } = await clockedApp(t, '2024-03-01T09:00:00.100Z')
  await post(app, '/users', { email: 'ada@example.com', name: 'Ada' })
  await post(app, '/users', { email: 'bob@example.com', name: 'Bob' })
  await post(app, '/add', { payer: 'A', points: 100, timestamp: lotA.timestamp })
  await post(app, '/users/1/points/add', { payer: 'A', points: 100, timestamp: lotA.timestamp })
  t.equal((await post(app, '/users/1/points/spend', { points: 10 })).status, 200)
  t.equal((await post(app, '/spend', { points: 50 })).status, 200)
  const before = await snapshot(app)
  const missing = await reverse(app, 99)
  expectError(t, missing, 404, 'SPEND_NOT_FOUND')
  expectError(t, await reverse(app, 1), 404, 'SPEND_NOT_FOUND')
  expectError(t, await reverse(app, 1, {}, '/users/2/points'), 404, 'SPEND_NOT_FOUND')
  expectError(t, await reverse(app, 2, {}, '/users/1/points'), 404, 'SPEND_NOT_FOUND')
  expectError(t, await get(app, '/spends/1/reversals'), 404, 'SPEND_NOT_FOUND')
  expectError(t, await get(app, '/users/2/points/spends/1/reversals'), 404, 'SPEND_NOT_FOUND')
  const over = await reverse(app, 2, { points: 51 })
  expectError(t, over, 400, 'REVERSAL_EXCEEDS_SPEND')
  t.match(over.body.message, /\b50 points left\b/)
  for (const body of [{ points: 0 }, { points: -1 }, { points: 1.5 }, { points: '5' }, { points: 1, extra: 1 }, { reason: 'x' }]) {
    expectError(t, await reverse(app, 2, body), 400, 'INVALID_REQUEST')
  }
  expectError(t, await post(app, '/spends/abc/reversals', {}), 400, 'INVALID_REQUEST')
  expectError(t, await post(app, '/spends/0/reversals', {}), 400, 'INVALID_REQUEST')
  t.strictSame(await snapshot(app), before)
  // Each ledger reverses its own spend.
  t.strictSame((await reverse(app, 1, {}, '/users/1/points')).body.restored_to, [{ ...lotA, transaction_id: 2, points: 10 }])
  t.equal((await reverse(app, 2)).body.points, 50)
})
