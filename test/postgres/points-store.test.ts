import { deepStrictEqual } from 'node:assert/strict'
import fc from 'fast-check'
import t from 'tap'
import { ZeroPoints } from '../../src/errors.js'
import type { NewAdd } from '../../src/points/store.js'
import { checkInvariantsPostgres } from '../../src/storage/postgres/check.js'
import { checkInvariants } from '../../src/storage/sqlite/check.js'
import { tempDir } from '../helper.js'
import { history, outcome, pgEngine, sqliteEngine, type Engine } from './points-engines.js'

// PgPoints against SqlitePoints: the same calls, in the same order, must get the same answers
// (ids, order, messages, error codes, timestamps) and leave the same history behind.

const MAX = Number.MAX_SAFE_INTEGER

// Few payers and few distinct times, so ties, backdating and negative adds collide often.
const payer = fc.constantFrom('DANNON', 'UNILEVER', 'MILLER COORS')
const ts = fc.tuple(fc.integer({ min: 1, max: 6 }), fc.constantFrom('00:00:00.000', '12:00:00.500'))
  .map(([day, time]) => `2022-01-0${day}T${time}Z`)
const points = fc.oneof(
  { weight: 12, arbitrary: fc.integer({ min: 1, max: 100 }) },
  { weight: 6, arbitrary: fc.integer({ min: -120, max: -1 }) },
  // Near 2^53 − 1: what follows may be refused with BALANCE_TOO_LARGE.
  { weight: 1, arbitrary: fc.integer({ min: MAX - 200, max: MAX }) }
)
const newAdd = fc.record({ payer, points, ts })
// Ledger 0, user 1's, and user 9's, who does not exist.
const ledger = fc.constantFrom(0, 0, 0, 1, 9)
const page = fc.record({ limit: fc.integer({ min: 1, max: 4 }), cursor: fc.option(fc.integer({ min: 1, max: 60 }), { nil: undefined }) })

const operation = fc.oneof(
  { weight: 8, arbitrary: fc.record({ kind: fc.constant('add' as const), ledger, add: newAdd }) },
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('spend' as const), ledger, points: fc.integer({ min: 1, max: 300 }), dryRun: fc.boolean() }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('batch' as const),
      ledger,
      adds: fc.array(newAdd, { minLength: 1, maxLength: 12 }),
      // The iterator refuses the add at this index itself, as the route's does an invalid one.
      refuseAt: fc.option(fc.nat({ max: 14 }), { nil: undefined })
    })
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('balances' as const), ledger }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('transactions' as const), ledger, page }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('spends' as const), ledger, page }) }
)
type Operation = typeof operation extends fc.Arbitrary<infer O> ? O : never

function * handOver (adds: NewAdd[], refuseAt: number | undefined): Generator<NewAdd> {
  for (const [i, add] of adds.entries()) {
    if (i === refuseAt) throw new ZeroPoints()
    yield add
  }
}

async function apply (engine: Engine, op: Operation): Promise<unknown> {
  const { points, write } = engine
  switch (op.kind) {
    case 'add': return await outcome(async () => await write(points.add(op.ledger, op.add)))
    case 'spend': return await outcome(async () => await write(points.spend(op.ledger, op.points, op.dryRun)))
    case 'batch': return await outcome(async () => await write(points.addBatch(op.ledger, handOver(op.adds, op.refuseAt))))
    case 'balances': return await outcome(async () => await points.balances(op.ledger))
    case 'transactions': return await outcome(async () => await points.listTransactions(op.ledger, op.page))
    case 'spends': return await outcome(async () => await points.listSpends(op.ledger, op.page))
  }
}

t.test('random adds, batches, spends and reads answer the same on PostgreSQL as on SQLite', async t => {
  const dir = tempDir(t)
  let runs = 0
  let refusals = 0
  await fc.assert(fc.asyncProperty(fc.array(operation, { minLength: 1, maxLength: 30 }), async operations => {
    const run = ++runs
    // The clock moves between operations, by whole seconds and by odd milliseconds.
    let clock = Date.UTC(2024, 0, 1)
    const now = (): Date => new Date(clock)
    const cleanup: Array<() => unknown> = []
    try {
      const sqlite = await sqliteEngine(dir, `run${run}`, now)
      cleanup.push(() => sqlite.db.close())
      const pg = await pgEngine({ teardown: fn => { cleanup.push(fn) } }, now)
      for (const engine of [sqlite, pg]) await engine.createUser(1)
      for (const [i, op] of operations.entries()) {
        clock += i % 2 === 0 ? 1000 : 1234
        const expected = await apply(sqlite, op)
        if ((expected as { code?: string }).code !== undefined) refusals++
        deepStrictEqual(await apply(pg, op), expected, `operation ${i}: ${JSON.stringify(op)}`)
      }
      for (const ledgerId of [0, 1, 9]) {
        for (const limit of [3, 100]) {
          deepStrictEqual(await history(pg.points, ledgerId, limit), await history(sqlite.points, ledgerId, limit), `ledger ${ledgerId}, pages of ${limit}`)
        }
      }
      deepStrictEqual(checkInvariants(sqlite.db), [])
      // The rows no answer shows (the ledger's total row above all) hold together too.
      deepStrictEqual(await checkInvariantsPostgres(pg.pool), [])
    } finally {
      for (const fn of cleanup.reverse()) await fn()
    }
  }), { numRuns: 25 })
  t.equal(runs >= 25, true, `${runs} random sequences compared`)
  t.ok(refusals > 0, `${refusals} refusals among them`)
})
