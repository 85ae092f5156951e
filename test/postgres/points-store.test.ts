import { deepStrictEqual } from 'node:assert/strict'
import fc from 'fast-check'
import t, { type Test } from 'tap'
import { ZeroPoints } from '../../src/errors.js'
import type { NewAdd, PayerPoints, StoredAdd, TransactionView } from '../../src/points/store.js'
import { checkInvariantsPostgres } from '../../src/storage/postgres/check.js'
import { checkInvariants } from '../../src/storage/sqlite/check.js'
import { tempDir } from '../helper.js'
import type { DrawOrder } from '../../src/points/ledger.js'
import { history, lifeHistory, outcome, pgEngine, sqliteEngine, type Engine } from './points-engines.js'

// PgPoints against SqlitePoints: the same calls, in the same order, must get the same answers
// (ids, order, messages, error codes, timestamps) and leave the same history behind.

const MAX = Number.MAX_SAFE_INTEGER

// Few payers and few distinct times, so ties, backdating and negative adds collide often.
const payer = fc.constantFrom('DANNON', 'UNILEVER', 'MILLER COORS')
const ts = fc.tuple(fc.integer({ min: 1, max: 6 }), fc.constantFrom('00:00:00.000', '12:00:00.500'))
  .map(([day, time]) => `2022-01-0${day}T${time}Z`)
const points = fc.oneof(
  { weight: 24, arbitrary: fc.integer({ min: 1, max: 100 }) },
  { weight: 12, arbitrary: fc.integer({ min: -40, max: -1 }) },
  // Near 2^53 − 1: positive adds after it are refused with BALANCE_TOO_LARGE until a big spend.
  { weight: 1, arbitrary: fc.constant(MAX - 150) }
)
const newAdd = fc.record({ payer, points, ts })
// Ledger 0, user 1's, and user 9's, who does not exist.
const ledger = fc.oneof({ weight: 6, arbitrary: fc.constant(0) }, { weight: 3, arbitrary: fc.constant(1) }, { weight: 1, arbitrary: fc.constant(9) })
const spent = fc.oneof({ weight: 20, arbitrary: fc.integer({ min: 1, max: 150 }) }, { weight: 1, arbitrary: fc.constant(MAX - 1000) })
const page = fc.record({ limit: fc.integer({ min: 1, max: 4 }), cursor: fc.option(fc.integer({ min: 1, max: 60 }), { nil: undefined }) })
// Mostly none: the iterator refuses the add at this index itself, as the route's does an invalid one.
const refuseAt = fc.oneof({ weight: 4, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.nat({ max: 14 }) })

const operation = fc.oneof(
  { weight: 10, arbitrary: fc.record({ kind: fc.constant('add' as const), ledger, add: newAdd }) },
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('spend' as const), ledger, points: spent, dryRun: fc.boolean() }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('batch' as const), ledger, adds: fc.array(newAdd, { minLength: 1, maxLength: 12 }), refuseAt }) },
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
  // What the sequences exercised, counted on the SQLite side: the test is only as good as these.
  const seen = new Map<string, number>()
  const count = (what: string, n = 1): void => { seen.set(what, (seen.get(what) ?? 0) + n) }
  await fc.assert(fc.asyncProperty(fc.array(operation, { minLength: 10, maxLength: 30 }), async operations => {
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
        count((expected as { code?: string }).code ?? `${op.kind} answered`)
        deepStrictEqual(await apply(pg, op), expected, `operation ${i}: ${JSON.stringify(op)}`)
      }
      for (const ledgerId of [0, 1, 9]) {
        for (const limit of [4, 100]) {
          deepStrictEqual(await history(pg.points, ledgerId, limit), await history(sqlite.points, ledgerId, limit), `ledger ${ledgerId}, pages of ${limit}`)
        }
      }
      deepStrictEqual(checkInvariants(sqlite.db), [])
      // The rows no answer shows (the ledger's total row above all) hold together too.
      deepStrictEqual(await checkInvariantsPostgres(pg.pool), [])
      const rows = sqlite.db.prepare('SELECT (SELECT count(*) FROM point_adjustment_draws WHERE cause_id <> adjustment_id) AS ' +
        '"draws taken over", (SELECT count(*) FROM point_adjustment_draws WHERE cause_id = adjustment_id) AS "draws of negative adds", ' +
        '(SELECT count(*) FROM point_spend_draws WHERE seq > 1) AS "spends over several lots"').get() as Record<string, number>
      for (const [what, n] of Object.entries(rows)) count(what, n)
    } finally {
      for (const fn of cleanup.reverse()) await fn()
    }
  }), { numRuns: 25 })
  t.equal(runs >= 25, true, `${runs} random sequences compared`)
  // BALANCE_TOO_LARGE is rare here: a test below makes sure of it.
  for (const what of ['add answered', 'batch answered', 'spend answered', 'USER_NOT_FOUND', 'INSUFFICIENT_POINTS',
    'INSUFFICIENT_PAYER_POINTS', 'BATCH_REJECTED', 'draws taken over', 'draws of negative adds', 'spends over several lots']) {
    t.ok((seen.get(what) ?? 0) > 0, `${what}: ${seen.get(what) ?? 0}`)
  }
})

/**
 * Runs `script` on SQLite and on PostgreSQL, each fresh with user 1, and compares what each
 * answered, and their rows. The clock is `options.now` (which the script may move), else fixed.
 */
async function onBoth (t: Test, script: (engine: Engine) => Promise<unknown[]>,
  options: { now?: () => Date, drawOrder?: DrawOrder } = {}): Promise<unknown[]> {
  const now = options.now ?? ((): Date => new Date('2024-01-01T00:00:00.500Z'))
  const sqlite = await sqliteEngine(tempDir(t), 'app', now, options.drawOrder)
  t.teardown(() => sqlite.db.close())
  const pg = await pgEngine(t, now, { drawOrder: options.drawOrder })
  const answers: unknown[][] = []
  for (const engine of [sqlite, pg]) {
    await engine.createUser(1)
    answers.push(await script(engine))
  }
  t.strictSame(answers[1], answers[0], 'PostgreSQL answered as SQLite did')
  t.strictSame(await pg.rows(), await sqlite.rows(), 'and holds the same rows')
  t.strictSame(checkInvariants(sqlite.db), [])
  t.strictSame(await checkInvariantsPostgres(pg.pool), [])
  return answers[0]!
}

const minute = (base: string, i: number): string => new Date(Date.parse(base) + i * 60_000).toISOString()

t.test('a batch whose adds cancel out still gives a new payer its balance row, at 0', async t => {
  const [batch, balances] = await onBoth(t, async ({ points, write }) => [
    await write(points.addBatch(0, [{ payer: 'NEW', points: 10, ts: '2022-01-01T00:00:00.000Z' }, { payer: 'NEW', points: -10, ts: '2022-01-02T00:00:00.000Z' }])),
    await points.balances(0)
  ])
  t.strictSame(batch, { count: 2, first_id: 1, last_id: 2 })
  t.strictSame(balances, [{ payer: 'NEW', points: 0 }])
})

t.test('spends, negative adds and backdated adds that need more than one page of lots', async t => {
  const answers = await onBoth(t, async ({ points, write }) => [
    // 250 one-point lots, A and B in turn: a spend of 230 reads three pages.
    await write(points.addBatch(0, Array.from({ length: 250 }, (_, i) => ({ payer: i % 2 === 0 ? 'A' : 'B', points: 1, ts: minute('2022-01-01T00:00:00Z', i) })))),
    await outcome(async () => await write(points.spend(0, 230, true))),
    await outcome(async () => await write(points.spend(0, 230, false))),
    // 300 of C's; a negative add of 150 reads two pages of C's lots.
    await write(points.addBatch(0, Array.from({ length: 300 }, (_, i) => ({ payer: 'C', points: 1, ts: minute('2023-01-01T00:00:00Z', i) })))),
    await outcome(async () => await write(points.add(0, { payer: 'C', points: -150, ts: '2023-06-01T00:00:00.000Z' }))),
    // Backdated: it takes over the draws of 120 lots, newest first, which is two pages of shares.
    await outcome(async () => await write(points.add(0, { payer: 'C', points: 120, ts: '2021-01-01T00:00:00.000Z' }))),
    await history(points, 0, 100)
  ])
  t.strictSame(answers[1], { ok: [{ payer: 'A', points: -115 }, { payer: 'B', points: -115 }] })
  t.strictSame(answers[2], answers[1], 'the spend drew what its dry run said')
  const transactions = (answers[6] as { transactions: { ok: Array<{ items: TransactionView[] }> } }).transactions.ok.flatMap(page => page.items)
  const negative = transactions.find(item => item.points === -150)!
  t.equal(negative.drawn_from.length, 31, 'the backdated add took over 120 of its 150 draws: 30 left on the oldest lots, and its own lot')
  t.equal(negative.drawn_from[0]!.timestamp, '2021-01-01T00:00:00Z')
  t.equal(negative.drawn_from[0]!.points, 120)
})

t.test('a batch of more than a chunk, with negative and backdated adds among the plain ones', async t => {
  const adds = Array.from({ length: 2500 }, (_, i): NewAdd => ({ payer: i % 2 === 0 ? 'D' : 'E', points: 3, ts: minute('2022-01-01T00:00:00Z', i) }))
  adds[1200] = { payer: 'D', points: -5, ts: '2022-06-01T00:00:00.000Z' }
  // D's adds after this one may take over draws: they are stored one by one.
  adds[1800] = { payer: 'D', points: 2, ts: '2021-01-01T00:00:00.000Z' }
  const [first, batch, history100] = await onBoth(t, async ({ points, write }) => [
    await write(points.add(0, { payer: 'E', points: 1, ts: '2020-01-01T00:00:00.000Z' })),
    await write(points.addBatch(0, adds)),
    await history(points, 0, 100)
  ])
  t.equal((first as StoredAdd).id, 1)
  t.strictSame(batch, { count: 2500, first_id: 2, last_id: 2501 })
  const ids = (history100 as { transactions: { ok: Array<{ items: TransactionView[] }> } }).transactions.ok.flatMap(page => page.items).map(item => item.id)
  t.strictSame(ids, Array.from({ length: 2501 }, (_, i) => 2501 - i), 'every add stored, ids in add order')
})

t.test('balances past 2^53 − 1 are refused for the payer and for the ledger, alone and in a batch', async t => {
  const answers = await onBoth(t, async ({ points, write }) => [
    await outcome(async () => await write(points.add(0, { payer: 'P', points: MAX - 1, ts: '2022-01-01T00:00:00.000Z' }))),
    await outcome(async () => await write(points.add(0, { payer: 'P', points: 2, ts: '2022-01-01T00:00:00.000Z' }))),
    await outcome(async () => await write(points.add(0, { payer: 'Q', points: 2, ts: '2022-01-01T00:00:00.000Z' }))),
    await outcome(async () => await write(points.addBatch(0, [{ payer: 'Q', points: 1, ts: '2022-01-01T00:00:00.000Z' }, { payer: 'Q', points: 1, ts: '2022-01-01T00:00:00.000Z' }]))),
    await outcome(async () => await write(points.spend(0, MAX - 1, false))),
    await points.balances(0)
  ])
  t.match(answers, [
    { ok: { id: 1 } },
    { code: 'BALANCE_TOO_LARGE', message: /payer P/ },
    { code: 'BALANCE_TOO_LARGE', message: /the ledger/ },
    { code: 'BATCH_REJECTED', index: 1 },
    { ok: [{ payer: 'P', points: -(MAX - 1) }] },
    [{ payer: 'P', points: 0 }]
  ])
})

t.test('a batch is refused at its first refused add, whether a rule or the iterator refused it', async t => {
  const add = (points: number): NewAdd => ({ payer: 'R', points, ts: '2022-01-01T00:00:00.000Z' })
  const answers = await onBoth(t, async ({ points, write }) => [
    await outcome(async () => await write(points.addBatch(0, handOver([add(5), add(-6), add(1), add(1)], 3)))),
    await outcome(async () => await write(points.addBatch(0, handOver([add(5), add(1), add(-9), add(1)], 1)))),
    await outcome(async () => await write(points.addBatch(9, handOver([add(5)], 0)))),
    await write(points.add(0, add(1))),
    await history(points, 0, 10)
  ])
  t.match(answers, [
    { code: 'BATCH_REJECTED', index: 1, message: /INSUFFICIENT_PAYER_POINTS/ },
    { code: 'BATCH_REJECTED', index: 1, message: /ZERO_POINTS/ },
    { code: 'USER_NOT_FOUND' },
    { id: 1 }
  ], 'a refused batch stored nothing, not even an id')
})

t.test('a dry run locks nothing, so it runs in a READ ONLY transaction too', async t => {
  const pg = await pgEngine(t, () => new Date('2024-01-01T00:00:00Z'))
  await pg.write(pg.points.add(0, { payer: 'A', points: 10, ts: '2022-01-01T00:00:00.000Z' }))
  const work = pg.points.spend(0, 4, true)
  if (work.engine !== 'postgres') throw new Error('not PostgreSQL work')
  t.strictSame(await pg.transactions.run(work.run, { readOnly: true }), [{ payer: 'A', points: -4 }])
  t.strictSame(await pg.points.balances(0), [{ payer: 'A', points: 10 }])
})

t.test('lots holding less than the total: a dry run runs again, a spend fails loudly', async t => {
  const pg = await pgEngine(t, () => new Date('2024-01-01T00:00:00Z'), { maxAttempts: 2 })
  await pg.write(pg.points.add(0, { payer: 'A', points: 10, ts: '2022-01-01T00:00:00.000Z' }))
  // What a dry run under READ COMMITTED can see when a spend commits between its reads.
  await pg.pool.query('UPDATE ledger_totals SET balance = 15')
  await t.rejects(pg.write(pg.points.spend(0, 12, true)), { name: 'LedgerChangedDuringRead', code: '40001' })
  await t.rejects(pg.write(pg.points.spend(0, 12, false)), { message: /ledger 0: its total says 15 points but its lots hold fewer/ })
  await t.rejects(pg.write(pg.points.hold(0, 12, null)), { message: /ledger 0: its total says 15 points but its lots hold fewer/ }, 'and so does a hold')
  t.strictSame(await pg.points.balances(0), [{ payer: 'A', points: 10 }], 'nothing was spent or held')
})

// ---- The life of a point (issue 13): expiry, holds, reversals, on a clock that passes them ----

const START = Date.UTC(2024, 0, 1)
/** `seconds` after the sequence starts, stored form. */
const after = (seconds: number): string => new Date(START + seconds * 1000).toISOString()
// Expiries and holds' ends from a little before the operation's now to a minute after it, and
// ?at= within 150 s of the start: the clock (up to 10 s a step) passes many of them, some exactly
// (whole seconds), and a few are already past when given.
const expiresIn = fc.option(fc.integer({ min: -5, max: 60 }), { nil: undefined })
const soon = fc.integer({ min: 0, max: 150 })
const lifePoints = fc.oneof(
  { weight: 30, arbitrary: fc.integer({ min: 1, max: 100 }) },
  { weight: 10, arbitrary: fc.integer({ min: -40, max: -1 }) },
  { weight: 1, arbitrary: fc.constant(MAX - 150) }
)
const lifeAdd = fc.record({ payer, points: lifePoints, ts, expiresIn })
const lifeLedger = fc.oneof({ weight: 8, arbitrary: fc.constant(0) }, { weight: 2, arbitrary: fc.constant(1) }, { weight: 1, arbitrary: fc.constant(9) })
// A hold or a spend to act on: one of the last four made (`pick` back from the newest), in its own
// ledger or, now and then, asked of the operation's ledger; none made yet: id pick + 1.
const target = fc.record({ pick: fc.nat({ max: 3 }), own: fc.oneof({ weight: 5, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }) })
const some = fc.option(fc.integer({ min: 1, max: 30 }), { nil: undefined })
const step = fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 10 }).map(s => s * 1000), fc.integer({ min: 1, max: 10_000 }))
const status = fc.constantFrom(undefined, 'pending' as const, 'captured' as const, 'voided' as const, 'expired' as const)

const lifeOperation = fc.oneof(
  { weight: 10, arbitrary: fc.record({ kind: fc.constant('add' as const), ledger: lifeLedger, add: lifeAdd }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('batch' as const), ledger: lifeLedger, adds: fc.array(lifeAdd, { minLength: 1, maxLength: 8 }), refuseAt }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('spend' as const), ledger: lifeLedger, points: fc.integer({ min: 1, max: 60 }), dryRun: fc.boolean() }) },
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('hold' as const), ledger: lifeLedger, points: fc.integer({ min: 1, max: 40 }), expiresIn }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('capture' as const), ledger: lifeLedger, target, points: some }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('void' as const), ledger: lifeLedger, target }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('reverse' as const), ledger: lifeLedger, target, points: some }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('settle' as const), ledger }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('due' as const), ledger }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('dueLedgers' as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('balances' as const), ledger }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('details' as const), ledger }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('balancesAt' as const), ledger, at: soon }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('getHold' as const), ledger, target }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('holds' as const), ledger, status, page }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('reversals' as const), ledger, target, page }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('expirations' as const), ledger, page }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('transactions' as const), ledger, page }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('spends' as const), ledger, page }) }
).chain(op => step.map(ms => ({ ...op, ms })))
type LifeOperation = typeof lifeOperation extends fc.Arbitrary<infer O> ? O : never
type LifeAdd = typeof lifeAdd extends fc.Arbitrary<infer A> ? A : never

/** A seed whose first 20 sequences meet every outcome the test counts (see below). */
const LIFE_COVERAGE_SEED = 1

interface Made { id: number, ledger: number }

/** The ledger and id an operation on a hold or a spend acts on (see target). */
function targetOf (op: { ledger: number, target: { pick: number, own: boolean } }, made: Made[]): Made {
  const entry = made[made.length - 1 - op.target.pick] ?? made[0]
  if (entry === undefined) return { id: op.target.pick + 1, ledger: op.ledger }
  return { id: entry.id, ledger: op.target.own ? entry.ledger : op.ledger }
}

async function applyLife (engine: Engine, op: LifeOperation, now: number, holds: Made[], spends: Made[]): Promise<unknown> {
  const { points, write } = engine
  const answer = async (call: () => Promise<unknown>): Promise<unknown> => await outcome(call)
  // `seconds` after now, stored form.
  const expiry = (seconds: number): string => new Date(now + seconds * 1000).toISOString()
  const newAdd = ({ expiresIn, ...add }: LifeAdd): NewAdd =>
    add.points > 0 && expiresIn !== undefined ? { ...add, expiresAt: expiry(expiresIn) } : add
  switch (op.kind) {
    case 'add': return await answer(async () => await write(points.add(op.ledger, newAdd(op.add))))
    case 'batch': return await answer(async () => await write(points.addBatch(op.ledger, handOver(op.adds.map(newAdd), op.refuseAt))))
    case 'spend': return await answer(async () => await write(points.spend(op.ledger, op.points, op.dryRun)))
    case 'hold': return await answer(async () => await write(points.hold(op.ledger, op.points, op.expiresIn === undefined ? null : expiry(op.expiresIn))))
    case 'capture': {
      const hold = targetOf(op, holds)
      return await answer(async () => await write(points.capture(hold.ledger, hold.id, op.points)))
    }
    case 'void': {
      const hold = targetOf(op, holds)
      return await answer(async () => await write(points.void(hold.ledger, hold.id)))
    }
    case 'reverse': {
      const spend = targetOf(op, spends)
      return await answer(async () => await write(points.reverse(spend.ledger, spend.id, op.points)))
    }
    case 'settle': return await answer(async () => await write(points.settle(op.ledger)))
    case 'due': return await answer(async () => await points.due(op.ledger))
    case 'dueLedgers': return await answer(async () => await points.dueLedgers(2))
    case 'balances': return await answer(async () => await points.balances(op.ledger))
    case 'details': return await answer(async () => await points.balanceDetails(op.ledger))
    case 'balancesAt': return await answer(async () => await points.balancesAt(op.ledger, after(op.at)))
    case 'getHold': {
      const hold = targetOf(op, holds)
      return await answer(async () => await points.getHold(hold.ledger, hold.id))
    }
    case 'holds': return await answer(async () => await points.listHolds(op.ledger, op.status, op.page))
    case 'reversals': {
      const spend = targetOf(op, spends)
      return await answer(async () => await points.listReversals(spend.ledger, spend.id, op.page))
    }
    case 'expirations': return await answer(async () => await points.listExpirations(op.ledger, op.page))
    case 'transactions': return await answer(async () => await points.listTransactions(op.ledger, op.page))
    case 'spends': return await answer(async () => await points.listSpends(op.ledger, op.page))
  }
}

t.test('random adds with expiries, holds, captures, voids, reversals and settlings answer the same on PostgreSQL as on SQLite', async t => {
  const dir = tempDir(t)
  let runs = 0
  const seen = new Map<string, number>()
  const count = (what: string, n = 1): void => { seen.set(what, (seen.get(what) ?? 0) + n) }
  const drawOrder = fc.constantFrom<DrawOrder>('timestamp', 'expiry')
  const property = fc.asyncProperty(drawOrder, fc.array(lifeOperation, { minLength: 25, maxLength: 60 }), async (order, operations) => {
    const run = ++runs
    let clock = START
    const now = (): Date => new Date(clock)
    const cleanup: Array<() => unknown> = []
    try {
      const sqlite = await sqliteEngine(dir, `life${run}`, now, order)
      cleanup.push(() => sqlite.db.close())
      const pg = await pgEngine({ teardown: fn => { cleanup.push(fn) } }, now, { drawOrder: order })
      for (const engine of [sqlite, pg]) await engine.createUser(1)
      // The holds and spends made so far, from SQLite's answers (a spend's id is the next one).
      const holds: Made[] = []
      const spends: Made[] = []
      for (const [i, op] of operations.entries()) {
        clock += op.ms
        const expected = await applyLife(sqlite, op, clock, holds, spends)
        count((expected as { code?: string }).code ?? `${op.kind} answered`)
        deepStrictEqual(await applyLife(pg, op, clock, holds, spends), expected, `operation ${i} at ${now().toISOString()}: ${JSON.stringify(op)}`)
        if (!('ok' in (expected as object))) continue
        const ok = (expected as { ok: { id: number, spend_id: number } }).ok
        if (op.kind === 'hold') holds.push({ id: ok.id, ledger: op.ledger })
        if (op.kind === 'capture') spends.push({ id: ok.spend_id, ledger: holds.find(hold => hold.id === ok.id)!.ledger })
        if (op.kind === 'spend' && !op.dryRun) spends.push({ id: spends.length + 1, ledger: op.ledger })
      }
      for (const ledgerId of [0, 1, 9]) {
        for (const limit of [3, 100]) {
          deepStrictEqual(await lifeHistory(pg.points, ledgerId, limit), await lifeHistory(sqlite.points, ledgerId, limit), `ledger ${ledgerId}, pages of ${limit}`)
        }
      }
      const rows = await sqlite.rows()
      deepStrictEqual(await pg.rows(), rows, 'the same rows')
      deepStrictEqual(checkInvariants(sqlite.db), [])
      deepStrictEqual(await checkInvariantsPostgres(pg.pool), [])
      for (const hold of rows.point_holds as Array<{ status: string }>) count(`hold ${hold.status}`)
      const expirations = rows.point_expirations as Array<{ hold_id: number | null, reversal_id: number | null }>
      count('expirations of lots', expirations.filter(e => e.hold_id === null && e.reversal_id === null).length)
      count('expirations of released holds', expirations.filter(e => e.hold_id !== null).length)
      count('expirations of reversals', expirations.filter(e => e.reversal_id !== null).length)
      count('draws taken over', (rows.point_adjustment_draws as Array<{ cause_id: number, adjustment_id: number }>).filter(d => d.cause_id !== d.adjustment_id).length)
    } finally {
      for (const fn of cleanup.reverse()) await fn()
    }
  })
  // Each run makes a fresh schema: a failure's shrinking is cut short rather than timing out.
  const options = { interruptAfterTimeLimit: 120_000, markInterruptAsFailure: true }
  // Some outcomes come up a few times in thirty sequences, so a check that random ones met them
  // all would fail now and then by chance. So the sequences of one seed, which meet them all,
  // are checked for it (a generator that drifted would not), and fresh ones explore beside them.
  await fc.assert(property, { ...options, numRuns: 20, seed: LIFE_COVERAGE_SEED })
  const covered = new Map(seen)
  await fc.assert(property, { ...options, numRuns: 15 })
  t.equal(runs >= 35, true, `${runs} random sequences compared`)
  for (const what of ['add answered', 'batch answered', 'spend answered', 'hold answered', 'capture answered', 'void answered', 'reverse answered',
    'settle answered', 'details answered', 'balancesAt answered', 'INVALID_EXPIRY', 'INSUFFICIENT_POINTS', 'HOLD_NOT_FOUND', 'HOLD_NOT_PENDING',
    'CAPTURE_EXCEEDS_HOLD', 'SPEND_NOT_FOUND', 'REVERSAL_EXCEEDS_SPEND', 'INVALID_TIMESTAMP', 'hold captured', 'hold voided', 'hold expired',
    'hold pending', 'expirations of lots', 'expirations of released holds', 'expirations of reversals', 'draws taken over']) {
    t.ok((covered.get(what) ?? 0) > 0, `${what}: ${covered.get(what) ?? 0} in the seeded sequences`)
  }
})

t.test('holds and spends in expiry order over pages of lots, then a settling of many lots and a hold', async t => {
  let clock = 0
  const answers = await onBoth(t, async ({ points, write }) => {
    clock = Date.parse('2024-01-01T00:00:00.500Z')
    // 250 one-point lots of A, B and C: every third never expires, the others expire a minute
    // apart from 2024-02-01, the newest soonest.
    const adds = Array.from({ length: 250 }, (_, i): NewAdd => ({
      payer: ['A', 'B', 'C'][i % 3]!,
      points: 1,
      ts: minute('2022-01-01T00:00:00Z', i),
      ...(i % 3 !== 0 && { expiresAt: minute('2024-02-01T00:00:00Z', 250 - i) })
    }))
    const answers: unknown[] = [
      await write(points.addBatch(0, adds)),
      await outcome(async () => await write(points.spend(0, 50, true))),
      // 120 of the 166 that expire: two pages; it expires at 02:00, before most of its lots.
      await outcome(async () => await write(points.hold(0, 120, '2024-02-01T02:00:00.000Z'))),
      // The 46 others that expire, then the 84 that never do: the second page starts after one.
      await outcome(async () => await write(points.spend(0, 129, false))),
      await outcome(async () => await write(points.spend(0, 1, false))),
      await lifeHistory(points, 0, 100)
    ]
    clock = Date.parse('2024-02-02T00:00:00.000Z')
    answers.push(await points.due(0), await points.dueLedgers(10))
    await write(points.settle(0))
    answers.push(await points.due(0), await lifeHistory(points, 0, 100), await points.balancesAt(0, '2024-02-01T01:00:00.000Z'),
      await points.balancesAt(0, '2024-02-01T03:00:00.000Z'))
    return answers
  }, { now: () => new Date(clock), drawOrder: 'expiry' })
  const dry = answers[1] as { ok: PayerPoints[] }
  t.strictSame(dry.ok.map(p => p.payer).sort(), ['B', 'C'], 'the soonest expiries first: never-expiring A lots last')
  t.match(answers[2], { ok: { status: 'pending', drawn_from: Array.from({ length: 120 }, () => ({ points: 1 })) } })
  t.strictSame(answers[3], { ok: [{ payer: 'C', points: -23 }, { payer: 'B', points: -23 }, { payer: 'A', points: -83 }] })
  t.strictSame(answers[4], { ok: [{ payer: 'A', points: -1 }] }, 'the last lot, the newest that never expires')
  t.strictSame(answers[6], true, 'due once its lots and hold are past their expiry')
  t.strictSame(answers[7], [0])
  t.strictSame(answers[8], false, 'nothing due once settled')
})
