import t, { type Test } from 'tap'
import type { NewAdd, StoredBatch, TransactionView } from '../../src/points/store.js'
import { checkInvariantsPostgres } from '../../src/storage/postgres/check.js'
import type { Isolation } from '../../src/storage/postgres/transaction.js'
import { usingPGlite } from '../postgres.js'
import { outcome, pgEngine, type PgEngine } from './points-engines.js'

// Many transactions at once on one database, as several tally processes make them: each write in
// its own PgTransactions transaction, up to ten at a time.

const skip = usingPGlite ? 'PGlite is one session and runs one transaction at a time: set TEST_DATABASE_URL to run these on a server' : false
const now = (): Date => new Date('2024-01-01T00:00:00Z')
// Under SERIALIZABLE, writers of one ledger that wait for its row fail with 40001 once its holder
// commits, and run again: ten at once on one ledger need more attempts than a request gets.
const attempts = (isolation: Isolation): number => isolation === 'serializable' ? 100 : 10
const random = (min: number, max: number): number => min + Math.floor(Math.random() * (max - min + 1))
const ts = (day: number): string => `2022-01-${String(day).padStart(2, '0')}T00:00:00.000Z`

/** Every transaction of the ledger, newest first. */
async function allTransactions (pg: PgEngine, ledgerId: number): Promise<TransactionView[]> {
  return (await pg.points.listTransactions(ledgerId, { limit: 10_000 })).items
}

async function expectSound (t: Test, pg: PgEngine): Promise<void> {
  t.strictSame(await checkInvariantsPostgres(pg.pool), [], 'db:check finds nothing wrong')
  const { rows } = await pg.pool.query('SELECT count(*) AS negative FROM payer_balances WHERE balance < 0')
  t.equal(rows[0].negative, 0, 'no balance is negative')
}

for (const isolation of ['read_committed', 'serializable'] as Isolation[]) {
  t.test(`50 spends at once never draw more than the ledger holds (${isolation})`, { skip }, async t => {
    const pg = await pgEngine(t, now, { size: 10, isolation, maxAttempts: attempts(isolation) })
    const adds = Array.from({ length: 40 }, (_, i): NewAdd => ({ payer: ['A', 'B', 'C'][i % 3]!, points: random(1, 40), ts: ts(random(1, 28)) }))
    await pg.write(pg.points.addBatch(0, adds))
    const held = adds.reduce((sum, add) => sum + add.points, 0)
    const sizes = Array.from({ length: 50 }, () => random(1, Math.ceil(held / 15)))
    t.ok(sizes.reduce((a, b) => a + b, 0) > held, 'the spends ask for more than there is')

    const answers = await Promise.all(sizes.map(async points => await outcome(async () => await pg.write(pg.points.spend(0, points, false)))))
    let drawn = 0
    answers.forEach((answer, i) => {
      const { ok, code } = answer as { ok?: Array<{ points: number }>, code?: string }
      if (ok === undefined) return t.equal(code, 'INSUFFICIENT_POINTS')
      t.equal(ok.reduce((sum, payer) => sum - payer.points, 0), sizes[i], `spend ${i} drew what it asked`)
      drawn += sizes[i]!
    })
    t.ok(drawn <= held, `drew ${drawn} of ${held}`)
    t.ok(answers.some(answer => 'code' in (answer as object)), 'some were refused')
    const balances = await pg.points.balances(0)
    t.equal(balances.reduce((sum, payer) => sum + payer.points, 0), held - drawn, 'the balances hold the rest')
    const spends = (await pg.points.listSpends(0, { limit: 100 })).items
    t.equal(spends.reduce((sum, spend) => sum + spend.points, 0), drawn, 'each spend recorded once')
    await expectSound(t, pg)
  })

  t.test(`adds, backdated adds and negative adds on one payer at once (${isolation})`, { skip }, async t => {
    const pg = await pgEngine(t, now, { size: 10, isolation, maxAttempts: attempts(isolation) })
    await pg.write(pg.points.add(0, { payer: 'A', points: 10, ts: ts(15) }))
    const adds = Array.from({ length: 60 }, (_, i): NewAdd => ({ payer: 'A', points: i % 2 === 0 ? random(1, 20) : -random(1, 25), ts: ts(random(1, 28)) }))
    const answers = await Promise.all(adds.map(async add => await outcome(async () => await pg.write(pg.points.add(0, add)))))
    let balance = 10
    answers.forEach((answer, i) => {
      const { ok, code } = answer as { ok?: unknown, code?: string }
      if (ok === undefined) return t.equal(code, 'INSUFFICIENT_PAYER_POINTS')
      balance += adds[i]!.points
    })
    t.strictSame(await pg.points.balances(0), [{ payer: 'A', points: balance }])
    t.equal((await allTransactions(pg, 0)).length, 1 + answers.filter(answer => 'ok' in (answer as object)).length, 'every accepted add stored once')
    await expectSound(t, pg)
  })
}

t.test('batches, adds and spends on two ledgers at once: no deadlock, and each batch\'s ids are its own and consecutive', { skip }, async t => {
  // One attempt only: a deadlock (40P01) would surface instead of being run again.
  const pg = await pgEngine(t, now, { size: 10, isolation: 'read_committed', maxAttempts: 1 })
  await pg.createUser(1)
  // A negative add in the middle of each batch: it is stored in statements of its own, between
  // which other transactions could insert if nothing stopped them.
  const batch = (n: number): NewAdd[] => [
    ...Array.from({ length: 10 }, (_, i) => ({ payer: `P${n}`, points: 5, ts: ts(1 + i) })),
    { payer: `P${n}`, points: -3, ts: ts(20) },
    ...Array.from({ length: 10 }, (_, i) => ({ payer: `P${n}`, points: 5, ts: ts(1 + i) }))
  ]
  const work: Array<Promise<unknown>> = []
  for (let n = 0; n < 10; n++) {
    work.push(pg.write(pg.points.addBatch(0, batch(n))).then(stored => ({ n, stored })))
    for (let i = 0; i < 4; i++) {
      work.push(pg.write(pg.points.add(1, { payer: 'Q', points: 3, ts: ts(random(1, 28)) })))
      work.push(pg.write(pg.points.add(0, { payer: 'R', points: 2, ts: ts(random(1, 28)) })))
      work.push(outcome(async () => await pg.write(pg.points.spend(i % 2, 2, false))))
    }
  }
  const results = await Promise.all(work)
  const byId = new Map((await allTransactions(pg, 0)).map(item => [item.id, item]))
  const others = new Set((await allTransactions(pg, 1)).map(item => item.id))
  for (const { n, stored } of results.filter((r): r is { n: number, stored: StoredBatch } => (r as { n?: number }).n !== undefined)) {
    t.equal(stored.last_id - stored.first_id + 1, 21)
    const ids = Array.from({ length: 21 }, (_, i) => stored.first_id + i)
    const expected = batch(n).map(add => ({ payer: add.payer, points: add.points }))
    t.strictSame(ids.map(id => byId.get(id)).map(item => item === undefined ? undefined : { payer: item.payer, points: item.points }), expected, `batch ${n}: ids ${stored.first_id}..${stored.last_id} are its adds, in order`)
    t.notOk(ids.some(id => others.has(id)), `batch ${n}: no id of another ledger among them`)
  }
  await expectSound(t, pg)
})
