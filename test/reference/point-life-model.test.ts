// The reference model checked on its own: small scenarios worked out by hand, and the old
// PointsModel (which the service already matches) agreeing with it where both apply.
import fc from 'fast-check'
import t, { type Test } from 'tap'
import { PointLifeModel } from './point-life-model.js'
import { PointsModel } from './points-model.js'

const at = (text: string): number => Date.parse(text)
const T0 = at('2024-01-01T00:00:00Z')
const HOUR = 3_600_000

function ok (t: Test, reply: ReturnType<PointLifeModel['spend']>, status = 200): any {
  t.equal(reply.status, status, JSON.stringify(reply))
  return 'body' in reply ? reply.body : undefined
}

t.test('a lot is spendable until the millisecond before its expiry, not at it', async t => {
  const model = new PointLifeModel(T0)
  ok(t, model.add({ payer: 'A', points: 100, timestamp: T0 - HOUR, expiresAt: T0 + HOUR }))
  model.advance(T0 + HOUR - 1)
  t.strictSame(ok(t, model.spend(10)), [{ payer: 'A', points: -10 }])
  model.advance(T0 + HOUR)
  t.strictSame(model.spend(1), { status: 400, code: 'INSUFFICIENT_POINTS' })
  t.strictSame(model.balances(), { A: 0 })
  t.strictSame(model.expirations(), [{ transaction_id: 1, payer: 'A', points: 90, expired_at: '2024-01-01T01:00:00Z' }])
  t.strictSame(model.balances(T0 + HOUR - 1), { A: 90 })
  t.strictSame(model.balances(T0 + HOUR - 2), { A: 100 }, 'the spend happened at T0 + 1h - 1ms')
  t.strictSame(model.balances(T0 - 1), {}, 'nothing before the add arrived')
  t.strictSame(model.problems(), [])
})

t.test('an add already past its expiry: the payer appears with 0, the points expire at expires_at', async t => {
  const model = new PointLifeModel(T0)
  t.strictSame(ok(t, model.add({ payer: 'A', points: 50, timestamp: T0 - 3 * HOUR, expiresAt: T0 - HOUR + 500 })),
    { id: 1, payer: 'A', points: 50, timestamp: '2023-12-31T21:00:00Z', expires_at: '2023-12-31T23:00:00.500Z' })
  t.strictSame(model.balances(), { A: 0 })
  t.strictSame(model.expirations(), [{ transaction_id: 1, payer: 'A', points: 50, expired_at: '2023-12-31T23:00:00.500Z' }])
  t.match(model.transactionList(), [{ id: 1, remaining: 0, expired: 50, expires_at: '2023-12-31T23:00:00.500Z' }])
  t.strictSame(model.add({ payer: 'A', points: 5, timestamp: T0, expiresAt: T0 }), { status: 400, code: 'INVALID_EXPIRY' })
  t.strictSame(model.add({ payer: 'A', points: -5, timestamp: T0, expiresAt: T0 + HOUR }), { status: 400, code: 'INVALID_EXPIRY' })
  t.strictSame(model.add({ payer: 'A', points: -5, timestamp: T0 }), { status: 400, code: 'INSUFFICIENT_PAYER_POINTS' })
})

t.test('the draw orders: oldest timestamp first, or soonest expiry first and never-expiring last', async t => {
  for (const [order, expected] of [['timestamp', ['OLD', 'LATE']], ['expiry', ['SOON', 'LATE']]] as const) {
    const model = new PointLifeModel(T0, order)
    model.add({ payer: 'OLD', points: 10, timestamp: T0 - 3 * HOUR })
    model.add({ payer: 'LATE', points: 10, timestamp: T0 - 2 * HOUR, expiresAt: T0 + 5 * HOUR })
    model.add({ payer: 'SOON', points: 10, timestamp: T0 - HOUR, expiresAt: T0 + HOUR })
    t.strictSame(ok(t, model.spend(15)).map((p: { payer: string }) => p.payer), expected, order)
    // A negative add draws oldest first whatever the order.
    const negative = new PointLifeModel(T0, order)
    negative.add({ payer: 'A', points: 10, timestamp: T0 - 2 * HOUR })
    negative.add({ payer: 'A', points: 10, timestamp: T0 - HOUR, expiresAt: T0 + HOUR })
    negative.add({ payer: 'A', points: -5, timestamp: T0 })
    t.match(negative.transactionList()[0], { drawn_from: [{ transaction_id: 1, points: 5 }] }, `${order}: negative add oldest first`)
  }
})

t.test('a negative add skips expired lots; a backdated add never moves draws onto or off an expired lot', async t => {
  const model = new PointLifeModel(T0)
  model.add({ payer: 'A', points: 10, timestamp: T0 - 5 * HOUR, expiresAt: T0 + HOUR }) // 1: expires
  model.add({ payer: 'A', points: 10, timestamp: T0 - 3 * HOUR }) // 2
  model.add({ payer: 'A', points: -4, timestamp: T0 }) // 3: draws lot 1
  t.match(model.transactionList()[0], { drawn_from: [{ transaction_id: 1, points: 4 }] })
  model.advance(T0 + HOUR)
  t.strictSame(model.balances(), { A: 10 }, 'lot 1 expired with its 6 left')
  model.add({ payer: 'A', points: -3, timestamp: T0 + HOUR }) // 4: only lot 2 is unexpired
  t.match(model.transactionList()[0], { drawn_from: [{ transaction_id: 2, points: 3 }] })
  // Backdated before everything, unexpired: takes over from lot 2 (unexpired) only, not lot 1.
  model.add({ payer: 'A', points: 20, timestamp: T0 - 6 * HOUR }) // 5
  const list = model.transactionList()
  t.match(list.find(x => x.id === 3), { drawn_from: [{ transaction_id: 1, points: 4 }] }, 'the draw on the expired lot stays')
  t.match(list.find(x => x.id === 4), { drawn_from: [{ transaction_id: 5, points: 3 }] }, 'the draw on lot 2 moved')
  t.strictSame(model.balances(), { A: 27 })
  // Backdated but already expired: takes over nothing.
  model.add({ payer: 'A', points: -2, timestamp: T0 + HOUR }) // 6: draws lot 5 (oldest)
  model.add({ payer: 'A', points: 5, timestamp: T0 - 7 * HOUR, expiresAt: T0 }) // 7: expired on arrival
  t.match(model.transactionList().find(x => x.id === 6), { drawn_from: [{ transaction_id: 5, points: 2 }] })
  t.match(model.transactionList().find(x => x.id === 7), { remaining: 0, expired: 5 })
  t.strictSame(model.problems(), [])
})

t.test('a hold: placed, captured in part, the rest back, its spend reversed newest draws first', async t => {
  const model = new PointLifeModel(T0)
  model.add({ payer: 'A', points: 30, timestamp: T0 - 2 * HOUR })
  model.add({ payer: 'B', points: 30, timestamp: T0 - HOUR })
  const hold = ok(t, model.placeHold(50, T0 + HOUR), 201)
  t.strictSame(hold, {
    id: 1,
    points: 50,
    status: 'pending',
    drawn_from: [
      { transaction_id: 1, payer: 'A', timestamp: '2023-12-31T22:00:00Z', points: 30 },
      { transaction_id: 2, payer: 'B', timestamp: '2023-12-31T23:00:00Z', points: 20 }
    ],
    expires_at: '2024-01-01T01:00:00Z',
    created_at: '2024-01-01T00:00:00.000Z'
  })
  t.strictSame(model.details(), { A: { available: 0, held: 30, expiring: [] }, B: { available: 10, held: 20, expiring: [] } })
  model.advance(T0 + 1000)
  const captured = ok(t, model.capture(1, 40))
  t.match(captured, { status: 'captured', captured: 40, spend_id: 1, spent: [{ payer: 'A', points: -30 }, { payer: 'B', points: -10 }] })
  t.strictSame(model.balances(), { A: 0, B: 20 })
  t.strictSame(model.capture(1), { status: 409, code: 'HOLD_NOT_PENDING' })
  t.strictSame(model.void(1), { status: 409, code: 'HOLD_NOT_PENDING' }, 'a void after a capture')
  t.strictSame(model.capture(2), { status: 404, code: 'HOLD_NOT_FOUND' })
  const first = ok(t, model.reverse(1, 15), 201)
  t.strictSame(first.restored_to.map((d: { transaction_id: number, points: number }) => [d.transaction_id, d.points]), [[2, 10], [1, 5]])
  const second = ok(t, model.reverse(1), 201)
  t.equal(second.points, 25)
  t.strictSame(second.restored_to.map((d: { transaction_id: number, points: number }) => [d.transaction_id, d.points]), [[1, 25]])
  t.strictSame(model.reverse(1), { status: 400, code: 'REVERSAL_EXCEEDS_SPEND' })
  t.strictSame(model.reverse(2), { status: 404, code: 'SPEND_NOT_FOUND' })
  t.strictSame(model.balances(), { A: 30, B: 30 })
  t.match(model.spendList(), [{ id: 1, points: 40, reversed: 40 }])
  t.strictSame(model.problems(), [])
})

t.test('a hold expires at its expires_at; points of a lot that expired meanwhile expire then', async t => {
  const model = new PointLifeModel(T0)
  model.add({ payer: 'A', points: 10, timestamp: T0 - HOUR, expiresAt: T0 + HOUR })
  model.add({ payer: 'B', points: 10, timestamp: T0 - HOUR })
  t.strictSame(model.placeHold(5, T0), { status: 400, code: 'INVALID_EXPIRY' })
  ok(t, model.placeHold(15, T0 + 2 * HOUR), 201) // A 10, B 5
  model.advance(T0 + 3 * HOUR)
  t.strictSame(model.capture(1), { status: 409, code: 'HOLD_NOT_PENDING' }, 'a capture after the hold expired')
  t.match(model.holdList(), [{ id: 1, status: 'expired' }])
  t.strictSame(model.balances(), { A: 0, B: 10 })
  t.strictSame(model.balances(T0 + 2 * HOUR - 1), { A: 0, B: 5 })
  t.strictSame(model.balances(T0 + 2 * HOUR), { A: 0, B: 10 })
  t.strictSame(model.expirations(), [{ transaction_id: 1, payer: 'A', points: 10, expired_at: '2024-01-01T02:00:00Z' }],
    'held through the lot\'s expiry, expired when the hold released them')
  t.strictSame(model.details(), { A: { available: 0, held: 0, expiring: [] }, B: { available: 10, held: 0, expiring: [] } })
})

t.test('a hold released before its lot expires: back in the balance, then expired with the lot', async t => {
  const model = new PointLifeModel(T0)
  model.add({ payer: 'A', points: 10, timestamp: T0 - HOUR, expiresAt: T0 + 2 * HOUR })
  ok(t, model.placeHold(4, T0 + HOUR), 201)
  t.strictSame(model.details(), { A: { available: 6, held: 4, expiring: [{ expires_at: '2024-01-01T02:00:00Z', points: 6 }] } })
  model.advance(T0 + 5 * HOUR)
  t.strictSame(model.balances(T0 + HOUR), { A: 10 })
  t.strictSame(model.balances(T0 + 2 * HOUR), { A: 0 })
  t.strictSame(model.expirations(), [{ transaction_id: 1, payer: 'A', points: 10, expired_at: '2024-01-01T02:00:00Z' }])
})

t.test('a tie: a hold and its lot expire at the same instant', async t => {
  const model = new PointLifeModel(T0)
  model.add({ payer: 'A', points: 10, timestamp: T0 - HOUR, expiresAt: T0 + HOUR })
  ok(t, model.placeHold(4, T0 + HOUR), 201)
  model.advance(T0 + HOUR)
  t.strictSame(model.balances(), { A: 0 })
  t.strictSame(model.balances(T0 + HOUR - 1), { A: 6 })
  t.strictSame(model.expirations(), [{ transaction_id: 1, payer: 'A', points: 10, expired_at: '2024-01-01T01:00:00Z' }])
  t.strictSame(model.problems(), [])
})

t.test('a reversal and a void after the lot expired: the points come back and expire at once', async t => {
  const model = new PointLifeModel(T0)
  model.add({ payer: 'A', points: 10, timestamp: T0 - HOUR, expiresAt: T0 + HOUR })
  model.spend(6)
  ok(t, model.placeHold(4), 201)
  model.advance(T0 + 2 * HOUR)
  t.strictSame(ok(t, model.reverse(1, 2), 201).restored_to, [{ transaction_id: 1, payer: 'A', timestamp: '2023-12-31T23:00:00Z', points: 2 }])
  ok(t, model.void(1))
  t.strictSame(model.balances(), { A: 0 })
  t.strictSame(model.expirations(), [{ transaction_id: 1, payer: 'A', points: 6, expired_at: '2024-01-01T02:00:00Z' }])
  t.match(model.transactionList(), [{ id: 1, remaining: 0, expired: 6 }])
  t.strictSame(model.problems(), [])
})

t.test('a capture still takes held points whose lot expired', async t => {
  const model = new PointLifeModel(T0)
  model.add({ payer: 'A', points: 10, timestamp: T0 - HOUR, expiresAt: T0 + HOUR })
  ok(t, model.placeHold(8), 201)
  model.advance(T0 + 2 * HOUR)
  t.match(ok(t, model.capture(1, 5)), { captured: 5, spent: [{ payer: 'A', points: -5 }] })
  t.strictSame(model.expirations(), [
    { transaction_id: 1, payer: 'A', points: 2, expired_at: '2024-01-01T01:00:00Z' },
    { transaction_id: 1, payer: 'A', points: 3, expired_at: '2024-01-01T02:00:00Z' }
  ])
  t.strictSame(model.problems(), [])
})

// Few payers and few distinct times, as in points.property.test.ts.
const payer = fc.constantFrom('DANNON', 'UNILEVER', 'MILLER COORS')
const timestamp = fc.integer({ min: 0, max: 7 }).map(day => `2022-01-0${day + 1}T00:00:00Z`)
const operation = fc.oneof(
  fc.record({ kind: fc.constant('add' as const), payer, points: fc.integer({ min: -120, max: 100 }).filter(n => n !== 0), timestamp }),
  fc.record({ kind: fc.constant('spend' as const), points: fc.integer({ min: 1, max: 250 }), dryRun: fc.boolean() })
)

t.test('without expiry, holds or reversals, it agrees with the old PointsModel', async t => {
  fc.assert(fc.property(fc.array(operation, { maxLength: 40 }), operations => {
    const old = new PointsModel()
    const model = new PointLifeModel(at('2022-02-01T00:00:00Z'))
    for (const op of operations) {
      if (op.kind === 'add') {
        const expected = old.add(op.payer, op.points, op.timestamp)
        const actual = model.add({ payer: op.payer, points: op.points, timestamp: at(op.timestamp) })
        if (expected.ok ? actual.status !== 200 || actual.body.id !== expected.value : !('code' in actual) || actual.code !== expected.code) return false
      } else {
        const expected = old.spend(op.points, op.dryRun)
        const actual = model.spend(op.points, op.dryRun)
        if (JSON.stringify(expected.ok ? { status: 200, body: expected.value } : { status: 400, code: expected.code }) !== JSON.stringify(actual)) return false
      }
      if (JSON.stringify(Object.entries(old.balances()).sort()) !== JSON.stringify(Object.entries(model.balances()))) return false
    }
    const remaining = old.remaining()
    return model.transactionList().every(x => x.remaining === null || x.remaining === remaining.get(x.id as number)) && model.problems().length === 0
  }), { numRuns: 300 })
  t.pass('300 random sequences agree')
})
