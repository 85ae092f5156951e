import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { expectError, get, invariants, post, snapshot, value } from '../helper.js'
import { capture, clockedApp, reverse, voidHold } from './clocked.js'

// Issue 13, holds: POST /holds draws points now and keeps them out of the balance until the hold
// is captured (into a spend), voided or expired. A hold resolves once.

const C0 = '2024-03-01T09:00:00.100Z'
const lotA = { transaction_id: 1, payer: 'A', timestamp: '2024-01-01T00:00:00Z' }
const lotB = { transaction_id: 2, payer: 'B', timestamp: '2024-01-02T00:00:00Z' }

/** A has 100 points (lot 1), B 100 (lot 2); A's expire at `expiresAt` when given. */
async function twoLots (app: FastifyInstance, expiresAt?: string): Promise<void> {
  await post(app, '/add', { payer: 'A', points: 100, timestamp: lotA.timestamp, ...(expiresAt !== undefined && { expires_at: expiresAt }) })
  await post(app, '/add', { payer: 'B', points: 100, timestamp: lotB.timestamp })
}

t.test('a hold draws now, oldest first, and leaves the available balance', async t => {
  const { app } = await clockedApp(t, C0)
  await twoLots(app)
  const res = await post(app, '/holds', { points: 150 })
  t.equal(res.status, 201)
  const hold = { id: 1, points: 150, status: 'pending', drawn_from: [{ ...lotA, points: 100 }, { ...lotB, points: 50 }], expires_at: null, created_at: C0 }
  t.strictSame(res.body, hold)
  t.strictSame((await get(app, '/balance')).body, { A: 0, B: 50 })
  t.strictSame((await get(app, '/balance/details')).body, {
    A: { available: 0, held: 100, expiring: [] },
    B: { available: 50, held: 50, expiring: [] }
  })
  t.strictSame((await get(app, '/holds/1')).body, hold)
  t.strictSame((await get(app, '/holds')).body, { items: [hold], next_cursor: null })
  t.strictSame((await get(app, '/holds?status=pending')).body, { items: [hold], next_cursor: null })
  t.strictSame((await get(app, '/holds?status=captured')).body, { items: [], next_cursor: null })
  const timed = await post(app, '/holds', { points: 10, expires_at: '2024-03-02T00:00:00+01:00' })
  t.equal(timed.status, 201)
  t.strictSame(timed.body, { id: 2, points: 10, status: 'pending', drawn_from: [{ ...lotB, points: 10 }], expires_at: '2024-03-01T23:00:00Z', created_at: C0 })
  expectError(t, await post(app, '/spend', { points: 41 }), 400, 'INSUFFICIENT_POINTS')
  t.strictSame((await post(app, '/spend', { points: 40 })).body, [{ payer: 'B', points: -40 }])
  t.strictSame((await get(app, '/balance')).body, { A: 0, B: 0 })
  expectError(t, await post(app, '/add', { payer: 'A', points: -1, timestamp: '2024-03-01T00:00:00Z' }), 400, 'INSUFFICIENT_PAYER_POINTS')
})

t.test('a hold for more than the available points is 400 INSUFFICIENT_POINTS and changes nothing', async t => {
  const { app, clock } = await clockedApp(t, C0)
  await twoLots(app, '2024-03-10T00:00:00Z')
  t.equal((await post(app, '/holds', { points: 60 })).status, 201)
  const before = await snapshot(app)
  expectError(t, await post(app, '/holds', { points: 141 }), 400, 'INSUFFICIENT_POINTS')
  t.strictSame(await snapshot(app), before)
  t.equal((await post(app, '/holds', { points: 140 })).status, 201)
  await voidHold(app, 2)
  clock.set('2024-03-10T00:00:00.000Z')
  // A's 40 unheld points have expired: 100 of B's are all there is.
  t.strictSame((await get(app, '/balance')).body, { A: 0, B: 100 })
  const settled = await snapshot(app)
  expectError(t, await post(app, '/holds', { points: 101 }), 400, 'INSUFFICIENT_POINTS')
  t.strictSame(await snapshot(app), settled)
})

t.test('a full capture turns the hold into a spend', async t => {
  const { app, clock } = await clockedApp(t, C0)
  await twoLots(app)
  await post(app, '/holds', { points: 150 })
  clock.set('2024-03-01T10:00:00.200Z')
  const res = await capture(app, 1)
  t.equal(res.status, 200)
  const captured = {
    id: 1, points: 150, status: 'captured', drawn_from: [{ ...lotA, points: 100 }, { ...lotB, points: 50 }], expires_at: null, created_at: C0, captured: 150, spend_id: 1
  }
  t.strictSame(res.body, { ...captured, spent: [{ payer: 'A', points: -100 }, { payer: 'B', points: -50 }] })
  t.strictSame((await get(app, '/balance')).body, { A: 0, B: 50 })
  t.strictSame((await get(app, '/balance/details')).body, {
    A: { available: 0, held: 0, expiring: [] },
    B: { available: 50, held: 0, expiring: [] }
  })
  t.strictSame((await get(app, '/spends')).body, {
    items: [{ id: 1, points: 150, created_at: '2024-03-01T10:00:00.200Z', drawn_from: [{ ...lotA, points: 100 }, { ...lotB, points: 50 }], reversed: 0 }],
    next_cursor: null
  })
  t.strictSame((await get(app, '/holds/1')).body, captured)
  t.strictSame((await get(app, '/holds?status=captured')).body, { items: [captured], next_cursor: null })
  t.strictSame((await get(app, '/holds?status=pending')).body, { items: [], next_cursor: null })
})

t.test('a partial capture returns the rest to the same lots, and its spend can be reversed', async t => {
  const { app } = await clockedApp(t, C0)
  await twoLots(app)
  await post(app, '/holds', { points: 150 })
  const res = await capture(app, 1, { points: 120 })
  t.equal(res.status, 200)
  t.match(res.body, { status: 'captured', captured: 120, spend_id: 1, points: 150 })
  t.strictSame(res.body.spent, [{ payer: 'A', points: -100 }, { payer: 'B', points: -20 }], 'in the hold\'s order')
  t.strictSame((await get(app, '/balance')).body, { A: 0, B: 80 })
  t.strictSame((await get(app, '/spends')).body.items[0].drawn_from, [{ ...lotA, points: 100 }, { ...lotB, points: 20 }])
  const partial = await reverse(app, 1, { points: 30 })
  t.equal(partial.status, 201)
  t.strictSame(partial.body.restored_to, [{ ...lotB, points: 20 }, { ...lotA, points: 10 }])
  t.strictSame((await get(app, '/balance')).body, { A: 10, B: 100 })
  const over = await reverse(app, 1, { points: 91 })
  expectError(t, over, 400, 'REVERSAL_EXCEEDS_SPEND')
  t.match(over.body.message, /\b90 points left\b/)
  t.strictSame((await reverse(app, 1)).body.restored_to, [{ ...lotA, points: 90 }])
  t.strictSame((await get(app, '/balance')).body, { A: 100, B: 100 })
  t.equal((await get(app, '/spends')).body.items[0].reversed, 120)
  t.match((await get(app, '/holds/1')).body, { status: 'captured', captured: 120, spend_id: 1 }, 'the hold stays captured')
  t.strictSame(await invariants(app), [], 'db:check holds')
})

t.test('a void returns every held point', async t => {
  const { app, clock } = await clockedApp(t, C0)
  await twoLots(app)
  await post(app, '/holds', { points: 150, expires_at: '2024-04-01T00:00:00Z' })
  clock.set('2024-03-01T11:00:00.300Z')
  const res = await voidHold(app, 1)
  t.equal(res.status, 200)
  const voided = { id: 1, points: 150, status: 'voided', drawn_from: [{ ...lotA, points: 100 }, { ...lotB, points: 50 }], expires_at: '2024-04-01T00:00:00Z', created_at: C0 }
  t.strictSame(res.body, voided)
  t.strictSame((await get(app, '/balance')).body, { A: 100, B: 100 })
  t.strictSame((await get(app, '/holds?status=voided')).body, { items: [voided], next_cursor: null })
  t.equal(await value(app, 'SELECT count(*) FROM point_spends'), 0)
  t.strictSame((await post(app, '/spend', { points: 200 })).body, [{ payer: 'A', points: -100 }, { payer: 'B', points: -100 }])
})

t.test('a capture after the hold\'s expiry is 409 HOLD_NOT_PENDING; the points are back', async t => {
  const { app, clock } = await clockedApp(t, C0)
  await twoLots(app)
  await post(app, '/holds', { points: 60, expires_at: '2024-03-01T10:00:00Z' })
  t.strictSame((await get(app, '/balance')).body, { A: 40, B: 100 })
  clock.set('2024-03-01T10:00:00.000Z')
  expectError(t, await capture(app, 1), 409, 'HOLD_NOT_PENDING')
  expectError(t, await voidHold(app, 1), 409, 'HOLD_NOT_PENDING')
  t.strictSame((await get(app, '/balance')).body, { A: 100, B: 100 })
  t.match((await get(app, '/holds/1')).body, { id: 1, status: 'expired', expires_at: '2024-03-01T10:00:00Z' })
  t.notOk('captured' in (await get(app, '/holds/1')).body)
  t.equal((await get(app, '/holds?status=expired')).body.items.length, 1)
  t.equal(await value(app, 'SELECT count(*) FROM point_spends'), 0)
  t.strictSame((await get(app, '/expirations')).body.items, [], 'a hold\'s expiry expires no points of an unexpired lot')
  t.strictSame((await post(app, '/spend', { points: 200 })).body, [{ payer: 'A', points: -100 }, { payer: 'B', points: -100 }])
})

t.test('a capture one millisecond before the hold\'s expiry captures', async t => {
  const { app, clock } = await clockedApp(t, C0)
  await twoLots(app)
  await post(app, '/holds', { points: 60, expires_at: '2024-03-01T10:00:00Z' })
  clock.set('2024-03-01T09:59:59.999Z')
  const res = await capture(app, 1)
  t.equal(res.status, 200)
  t.strictSame(res.body.spent, [{ payer: 'A', points: -60 }])
  clock.set('2024-03-02T00:00:00.000Z')
  t.strictSame((await get(app, '/balance')).body, { A: 40, B: 100 })
  t.equal((await get(app, '/holds/1')).body.status, 'captured')
})

t.test('a hold\'s expiry is seen by reads: the points are available from expires_at, sweep or not', async t => {
  const { app, clock } = await clockedApp(t, C0)
  await twoLots(app)
  await post(app, '/holds', { points: 150, expires_at: '2024-03-05T00:00:00Z' })
  clock.set('2024-03-04T23:59:59.999Z')
  t.strictSame((await get(app, '/balance')).body, { A: 0, B: 50 })
  clock.set('2024-03-05T00:00:00.000Z')
  t.strictSame((await get(app, '/balance')).body, { A: 100, B: 100 })
  t.strictSame((await get(app, '/balance/details')).body, {
    A: { available: 100, held: 0, expiring: [] },
    B: { available: 100, held: 0, expiring: [] }
  })
  t.strictSame((await post(app, '/spend?dry_run=true', { points: 200 })).body, [{ payer: 'A', points: -100 }, { payer: 'B', points: -100 }])
  t.strictSame((await get(app, '/holds?status=expired')).body.items.map((h: { id: number }) => h.id), [1])
})

t.test('two concurrent captures of one hold: exactly one wins', async t => {
  const { app } = await clockedApp(t, C0)
  await post(app, '/add', { payer: 'A', points: 1000, timestamp: lotA.timestamp })
  let spent = 0
  for (let id = 1; id <= 5; id++) {
    await post(app, '/holds', { points: 60 })
    const answers = await Promise.all([capture(app, id, { points: 10 * id }), capture(app, id)])
    t.strictSame(answers.map(a => a.status).sort(), [200, 409], `hold ${id}`)
    const [won, lost] = answers[0]!.status === 200 ? answers : [answers[1]!, answers[0]!]
    expectError(t, lost!, 409, 'HOLD_NOT_PENDING')
    spent += won!.body.captured as number
    t.strictSame((await get(app, `/holds/${id}`)).body.captured, won!.body.captured)
    t.strictSame((await get(app, '/balance')).body, { A: 1000 - spent }, `hold ${id}: captured once`)
  }
  t.equal(await value(app, 'SELECT count(*) FROM point_spends'), 5)
  t.equal(await value(app, 'SELECT sum(points) FROM point_spends'), spent)
  t.strictSame(await invariants(app), [], 'db:check holds')
})

t.test('a capture racing a void: exactly one wins', async t => {
  const { app } = await clockedApp(t, C0)
  await post(app, '/add', { payer: 'A', points: 1000, timestamp: lotA.timestamp })
  let spent = 0
  for (let id = 1; id <= 6; id++) {
    await post(app, '/holds', { points: 60 })
    // Sent in either order: each may be the one to arrive first.
    const [captured, voided] = id % 2 === 0
      ? await Promise.all([capture(app, id), voidHold(app, id)])
      : await Promise.all([voidHold(app, id), capture(app, id)]).then(([v, c]) => [c, v])
    t.strictSame([captured!.status, voided!.status].sort(), [200, 409], `hold ${id}`)
    const status = (await get(app, `/holds/${id}`)).body.status
    if (captured!.status === 200) {
      expectError(t, voided!, 409, 'HOLD_NOT_PENDING')
      t.equal(status, 'captured')
      spent += 60
    } else {
      expectError(t, captured!, 409, 'HOLD_NOT_PENDING')
      t.equal(status, 'voided')
    }
    t.strictSame((await get(app, '/balance')).body, { A: 1000 - spent }, `hold ${id}`)
    t.strictSame((await get(app, '/balance/details')).body.A.held, 0)
  }
  t.equal(await value(app, 'SELECT coalesce(sum(points), 0) FROM point_spends'), spent)
  t.strictSame(await invariants(app), [], 'db:check holds')
})

t.test('two concurrent holds and a spend cannot take the same points', async t => {
  const { app } = await clockedApp(t, C0)
  await post(app, '/add', { payer: 'A', points: 100, timestamp: lotA.timestamp })
  const answers = await Promise.all([post(app, '/holds', { points: 60 }), post(app, '/spend', { points: 60 }), post(app, '/holds', { points: 60 })])
  t.equal(answers.filter(a => a.status < 300).length, 1, 'one of three')
  for (const refused of answers.filter(a => a.status >= 300)) expectError(t, refused, 400, 'INSUFFICIENT_POINTS')
  const details = (await get(app, '/balance/details')).body.A
  t.equal(details.available, 40)
  t.equal(details.held + await value(app, 'SELECT coalesce(sum(points), 0) FROM point_spends'), 60)
  t.strictSame(await invariants(app), [], 'db:check holds')
})

t.test('a hold resolves once: capture or void of a resolved hold is 409 and changes nothing', async t => {
  const { app } = await clockedApp(t, C0)
  await twoLots(app)
  await post(app, '/holds', { points: 60 })
  await post(app, '/holds', { points: 10 })
  t.equal((await capture(app, 1, { points: 50 })).status, 200)
  t.equal((await voidHold(app, 2)).status, 200)
  const before = await snapshot(app)
  expectError(t, await voidHold(app, 1), 409, 'HOLD_NOT_PENDING')
  expectError(t, await capture(app, 1), 409, 'HOLD_NOT_PENDING')
  expectError(t, await capture(app, 1, { points: 10 }), 409, 'HOLD_NOT_PENDING')
  expectError(t, await capture(app, 2), 409, 'HOLD_NOT_PENDING')
  expectError(t, await voidHold(app, 2), 409, 'HOLD_NOT_PENDING')
  t.strictSame(await snapshot(app), before)
  t.strictSame((await get(app, '/balance')).body, { A: 50, B: 100 })
})

t.test('refused holds and captures change nothing', async t => {
  const { app } = await clockedApp(t, C0)
  await post(app, '/users', { email: 'ada@example.com', name: 'Ada' })
  await post(app, '/users', { email: 'bob@example.com', name: 'Bob' })
  await twoLots(app)
  await post(app, '/users/1/points/add', { payer: 'A', points: 100, timestamp: lotA.timestamp })
  t.equal((await post(app, '/users/1/points/holds', { points: 5 })).status, 201)
  t.equal((await post(app, '/holds', { points: 60 })).status, 201)
  const before = await snapshot(app)
  const exceeds = await capture(app, 2, { points: 61 })
  expectError(t, exceeds, 400, 'CAPTURE_EXCEEDS_HOLD')
  for (const [what, res] of [
    ['an unknown hold', await capture(app, 99)],
    ['another ledger\'s hold, captured', await capture(app, 1)],
    ['another ledger\'s hold, voided', await voidHold(app, 1)],
    ['another ledger\'s hold, read', await get(app, '/holds/1')],
    ['a user\'s hold, from another user', await voidHold(app, 1, '/users/2/points')],
    ['the default ledger\'s hold, from a user', await capture(app, 2, {}, '/users/1/points')],
    ['an unknown hold, read', await get(app, '/holds/99')],
    ['an unknown hold, voided', await voidHold(app, 99)]
  ] as const) t.match(res, { status: 404, body: { statusCode: 404, error: 'Not Found', message: String, code: 'HOLD_NOT_FOUND' } }, what)
  for (const [url, body] of [
    ['/holds', { points: 0 }],
    ['/holds', { points: -5 }],
    ['/holds', { points: '5' }],
    ['/holds', {}],
    ['/holds', { points: 5, extra: 1 }],
    ['/holds/2/capture', { points: 0 }],
    ['/holds/2/capture', { points: 1.5 }],
    ['/holds/2/capture', { amount: 1 }],
    ['/holds/2/void', { points: 1 }],
    ['/holds/abc/void', {}],
    ['/holds/0/capture', {}]
  ] as const) expectError(t, await post(app, url, body), 400, 'INVALID_REQUEST')
  expectError(t, await get(app, '/holds?status=open'), 400, 'INVALID_REQUEST')
  expectError(t, await post(app, '/holds', { points: 141 }), 400, 'INSUFFICIENT_POINTS')
  t.strictSame(await snapshot(app), before)
  t.equal((await capture(app, 1, {}, '/users/1/points')).status, 200, 'its own ledger captures it')
})

t.test('a hold\'s expires_at must be later than now', async t => {
  const { app } = await clockedApp(t, C0)
  await twoLots(app)
  const before = await snapshot(app)
  expectError(t, await post(app, '/holds', { points: 5, expires_at: C0 }), 400, 'INVALID_EXPIRY')
  expectError(t, await post(app, '/holds', { points: 5, expires_at: '2024-03-01T09:00:00.099Z' }), 400, 'INVALID_EXPIRY')
  expectError(t, await post(app, '/holds', { points: 5, expires_at: '2020-01-01T00:00:00Z' }), 400, 'INVALID_EXPIRY')
  expectError(t, await post(app, '/holds', { points: 5, expires_at: '2024-04-01T00:00:00.0001Z' }), 400, 'INVALID_TIMESTAMP')
  t.strictSame(await snapshot(app), before)
  t.equal((await post(app, '/holds', { points: 5, expires_at: '2024-03-01T09:00:00.101Z' })).status, 201, 'one millisecond later is fine')
})

t.test('held points whose lot expires: a capture still takes them', async t => {
  const { app, clock } = await clockedApp(t, C0)
  await twoLots(app, '2024-03-10T00:00:00Z')
  await post(app, '/holds', { points: 150 })
  clock.set('2024-03-11T00:00:00.400Z')
  t.strictSame((await get(app, '/balance')).body, { A: 0, B: 50 })
  t.strictSame((await get(app, '/expirations')).body.items, [], 'A\'s points were all held')
  const res = await capture(app, 1)
  t.equal(res.status, 200)
  t.strictSame(res.body.spent, [{ payer: 'A', points: -100 }, { payer: 'B', points: -50 }])
  t.strictSame((await get(app, '/balance')).body, { A: 0, B: 50 })
  t.strictSame((await get(app, '/expirations')).body.items, [])
  t.match((await get(app, '/transactions')).body.items[1], { id: 1, remaining: 0, expired: 0 })
  t.strictSame(await invariants(app), [], 'db:check holds')
})

t.test('held points whose lot expires: a void releases them and they expire at once', async t => {
  const { app, clock } = await clockedApp(t, C0)
  await twoLots(app, '2024-03-10T00:00:00Z')
  await post(app, '/holds', { points: 150 })
  clock.set('2024-03-11T00:00:00.400Z')
  const res = await voidHold(app, 1)
  t.equal(res.status, 200)
  t.equal(res.body.status, 'voided')
  t.strictSame((await get(app, '/balance')).body, { A: 0, B: 100 })
  t.strictSame((await get(app, '/expirations')).body.items, [{ id: 1, transaction_id: 1, payer: 'A', points: 100, expired_at: '2024-03-11T00:00:00.400Z' }])
  t.match((await get(app, '/transactions')).body.items[1], { id: 1, remaining: 0, expired: 100 })
  expectError(t, await post(app, '/spend', { points: 101 }), 400, 'INSUFFICIENT_POINTS')
  t.strictSame(await invariants(app), [], 'db:check holds')
})

t.test('a partial capture after the lot expired: the rest of the expired lot expires at once', async t => {
  const { app, clock } = await clockedApp(t, C0)
  await twoLots(app, '2024-03-10T00:00:00Z')
  await post(app, '/holds', { points: 150 })
  clock.set('2024-03-11T00:00:00.400Z')
  const res = await capture(app, 1, { points: 30 })
  t.strictSame(res.body.spent, [{ payer: 'A', points: -30 }])
  t.strictSame((await get(app, '/balance')).body, { A: 0, B: 100 })
  t.strictSame((await get(app, '/expirations')).body.items, [{ id: 1, transaction_id: 1, payer: 'A', points: 70, expired_at: '2024-03-11T00:00:00.400Z' }])
  t.strictSame(await invariants(app), [], 'db:check holds')
})

t.test('a hold that expires before its lot: the points come back at the hold\'s expiry, then expire with the lot', async t => {
  const { app, clock } = await clockedApp(t, C0)
  await twoLots(app, '2024-03-10T00:00:00Z')
  await post(app, '/holds', { points: 150, expires_at: '2024-03-05T00:00:00Z' })
  clock.set('2024-03-20T00:00:00.100Z')
  t.strictSame((await get(app, '/expirations')).body.items, [{ id: 1, transaction_id: 1, payer: 'A', points: 100, expired_at: '2024-03-10T00:00:00Z' }])
  t.strictSame((await get(app, '/balance')).body, { A: 0, B: 100 })
  t.equal((await get(app, '/holds/1')).body.status, 'expired')
  t.strictSame((await get(app, '/balance?at=2024-03-04T23:59:59.999Z')).body, { A: 0, B: 50 })
  t.strictSame((await get(app, '/balance?at=2024-03-05T00:00:00Z')).body, { A: 100, B: 100 })
  t.strictSame((await get(app, '/balance?at=2024-03-09T23:59:59.999Z')).body, { A: 100, B: 100 })
  t.strictSame((await get(app, '/balance?at=2024-03-10T00:00:00Z')).body, { A: 0, B: 100 })
  t.strictSame(await invariants(app), [], 'db:check holds')
})

t.test('a hold that expires after its lot: the held points expire when the hold does', async t => {
  const { app, clock } = await clockedApp(t, C0)
  await twoLots(app, '2024-03-10T00:00:00Z')
  await post(app, '/holds', { points: 150, expires_at: '2024-03-15T00:00:00Z' })
  clock.set('2024-03-20T00:00:00.100Z')
  t.strictSame((await get(app, '/expirations')).body.items, [{ id: 1, transaction_id: 1, payer: 'A', points: 100, expired_at: '2024-03-15T00:00:00Z' }])
  t.strictSame((await get(app, '/balance')).body, { A: 0, B: 100 })
  t.strictSame((await get(app, '/balance?at=2024-03-12T00:00:00Z')).body, { A: 0, B: 50 })
  t.strictSame((await get(app, '/balance?at=2024-03-15T00:00:00Z')).body, { A: 0, B: 100 })
  t.strictSame(await invariants(app), [], 'db:check holds')
})

t.test('a hold that expires at the instant its lot does: the hold first, then the lot, both dated then', async t => {
  const { app, clock } = await clockedApp(t, C0)
  await twoLots(app, '2024-03-10T00:00:00Z')
  await post(app, '/holds', { points: 60, expires_at: '2024-03-10T00:00:00Z' })
  clock.set('2024-03-20T00:00:00.100Z')
  t.strictSame((await get(app, '/expirations')).body.items, [
    { id: 2, transaction_id: 1, payer: 'A', points: 40, expired_at: '2024-03-10T00:00:00Z' },
    { id: 1, transaction_id: 1, payer: 'A', points: 60, expired_at: '2024-03-10T00:00:00Z' }
  ], 'the released 60 expire at once, then the lot\'s 40')
  t.strictSame((await get(app, '/balance?at=2024-03-09T23:59:59.999Z')).body, { A: 40, B: 100 })
  t.strictSame((await get(app, '/balance?at=2024-03-10T00:00:00Z')).body, { A: 0, B: 100 })
  t.match((await get(app, '/holds/1')).body, { status: 'expired' })
  t.strictSame(await invariants(app), [], 'db:check holds')
})

t.test('holds page newest first and filter by status', async t => {
  const { app, clock } = await clockedApp(t, C0)
  await twoLots(app)
  await post(app, '/holds', { points: 10 })
  await post(app, '/holds', { points: 10 })
  await post(app, '/holds', { points: 10, expires_at: '2024-03-02T00:00:00Z' })
  await post(app, '/holds', { points: 10 })
  await capture(app, 1)
  await voidHold(app, 2)
  clock.set('2024-03-03T00:00:00.000Z')
  const ids = async (url: string) => (await get(app, url)).body.items.map((h: { id: number }) => h.id)
  t.strictSame(await ids('/holds?status=pending'), [4])
  t.strictSame(await ids('/holds?status=captured'), [1])
  t.strictSame(await ids('/holds?status=voided'), [2])
  t.strictSame(await ids('/holds?status=expired'), [3])
  t.strictSame(await ids('/holds'), [4, 3, 2, 1])
  const first = await get(app, '/holds?limit=2')
  t.strictSame([first.body.items.map((h: { id: number }) => h.id), first.body.next_cursor], [[4, 3], 3])
  const second = await get(app, '/holds?limit=2&cursor=3')
  t.strictSame([second.body.items.map((h: { id: number }) => h.id), second.body.next_cursor], [[2, 1], null])
  t.strictSame(await ids('/holds?status=pending&cursor=4'), [])
  t.strictSame(await ids('/holds?status=captured&limit=1&cursor=2'), [1])
})
