import fc from 'fast-check'
import t from 'tap'
import { PointsModel } from '../reference/points-model.js'
import { build, get, invariants, post, propertyRuns, sql } from '../helper.js'

// Few payers and few distinct times, so ties, backdating and negative adds collide often.
const RUNS = propertyRuns(400, 100)
const payer = fc.constantFrom('DANNON', 'UNILEVER', 'MILLER COORS')
const timestamp = fc.integer({ min: 0, max: 7 }).map(day => `2022-01-0${day + 1}T00:00:00Z`)
const operation = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('add' as const), payer, points: fc.integer({ min: 1, max: 100 }), timestamp }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('add' as const), payer, points: fc.integer({ min: -120, max: -1 }), timestamp }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('spend' as const), points: fc.integer({ min: 1, max: 250 }), dryRun: fc.boolean() }) }
)

t.test('random adds and spends agree with the in-memory reference model', async t => {
  const app = await build(t)
  let runs = 0
  await fc.assert(fc.asyncProperty(fc.array(operation, { minLength: 1, maxLength: 40 }), async operations => {
    runs++
    await app.inject({ method: 'POST', url: '/flushDB' })
    const model = new PointsModel()
    for (const op of operations) {
      if (op.kind === 'add') {
        const expected = model.add(op.payer, op.points, op.timestamp)
        const res = await post(app, '/add', { payer: op.payer, points: op.points, timestamp: op.timestamp })
        if (expected.ok) {
          if (res.status !== 200 || res.body.id !== expected.value) throw new Error(`add ${JSON.stringify(op)}: ${JSON.stringify(res.body)}`)
        } else if (res.status !== 400 || res.body.code !== expected.code) {
          throw new Error(`add ${JSON.stringify(op)} should be refused: ${JSON.stringify(res.body)}`)
        }
      } else {
        const expected = model.spend(op.points, op.dryRun)
        const res = await post(app, `/spend?dry_run=${op.dryRun}`, { points: op.points })
        const actual = res.status === 200 ? { ok: true, value: res.body } : { ok: false, code: res.body.code }
        t.strictSame(actual, expected, `spend ${JSON.stringify(op)}`)
        if (JSON.stringify(actual) !== JSON.stringify(expected)) return false
      }
      const balances = (await get(app, '/balance')).body
      if (JSON.stringify(balances) !== JSON.stringify(Object.fromEntries(Object.entries(model.balances()).sort(([a], [b]) => a < b ? -1 : 1)))) {
        throw new Error(`balances ${JSON.stringify(balances)} vs model ${JSON.stringify(model.balances())}`)
      }
    }
    // Every lot holds what the model says.
    const lots = await sql<{ transaction_id: number, payer: string, remaining: number, adjusted: number, points: number }>(app,
      'SELECT transaction_id, payer, remaining, adjusted, points FROM point_lots')
    const remaining = model.remaining()
    for (const lot of lots) {
      if (lot.remaining !== remaining.get(lot.transaction_id)) throw new Error(`lot ${lot.transaction_id}: ${lot.remaining} vs ${remaining.get(lot.transaction_id)}`)
      if (lot.remaining < 0 || lot.adjusted < 0 || lot.remaining + lot.adjusted > lot.points) throw new Error(`lot ${lot.transaction_id} out of bounds`)
    }
    // And every invariant db:check knows: balances and the ledger total against the lots, draws, bounds.
    const problems = await invariants(app)
    if (problems.length > 0) throw new Error(`invariants broken: ${problems.join('; ')}`)
    return true
  }), { numRuns: RUNS })
  t.equal(runs >= RUNS, true, `${runs} random sequences checked`)
})
