import fc from 'fast-check'
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { build, call, canonicalAdds, expectError, get, post, propertyRuns, snapshot } from '../helper.js'

// POST /add/batch and /users/:id/points/add/batch: up to 10 000 adds, stored in order, all or none.

t.test('a batch stores every add in order, as one at a time would', async t => {
  const app = await build(t)
  const res = await post(app, '/add/batch', { adds: canonicalAdds })
  t.equal(res.status, 200)
  t.strictSame(res.body, { count: 5, first_id: 1, last_id: 5 })
  t.strictSame((await get(app, '/balance')).body, { DANNON: 1100, 'MILLER COORS': 10000, UNILEVER: 200 })
  t.strictSame((await get(app, '/transactions')).body.items.map((x: { id: number, payer: string, points: number }) => [x.id, x.payer, x.points]).reverse(),
    canonicalAdds.map((add, i) => [i + 1, add.payer, add.points]))
  t.strictSame((await post(app, '/spend', { points: 5000 })).body,
    [{ payer: 'DANNON', points: -100 }, { payer: 'UNILEVER', points: -200 }, { payer: 'MILLER COORS', points: -4700 }], 'the canonical example holds')
})

t.test('a refused add refuses the whole batch, names its index and why, and changes nothing', async t => {
  const app = await build(t)
  t.equal((await post(app, '/add', canonicalAdds[0])).status, 200)
  const before = await snapshot(app)
  const cases: Array<[unknown[], number, RegExp]> = [
    [[canonicalAdds[1], { payer: 'DANNON', points: -301, timestamp: '2022-11-01T00:00:00Z' }], 1, /adds\[1\] refused \(INSUFFICIENT_PAYER_POINTS\): Payer DANNON has 300 points; cannot take 301/],
    [[canonicalAdds[1], canonicalAdds[3], { payer: 'X', points: 0, timestamp: '2022-11-01T00:00:00Z' }], 2, /adds\[2\] refused \(ZERO_POINTS\)/],
    [[{ payer: 'X', points: 1, timestamp: '2022-11-01T00:00:00.0001Z' }], 0, /adds\[0\] refused \(INVALID_TIMESTAMP\)/],
    [[{ payer: 'X', points: Number.MAX_SAFE_INTEGER - 300, timestamp: '2022-11-01T00:00:00Z' }, { payer: 'X', points: 1, timestamp: '2022-11-01T00:00:00Z' }], 1, /adds\[1\] refused \(BALANCE_TOO_LARGE\)/]
  ]
  for (const [adds, index, message] of cases) {
    const res = await post(app, '/add/batch', { adds })
    expectError(t, res, 400, 'BATCH_REJECTED')
    t.equal(res.body.index, index)
    t.match(res.body.message, message)
    t.match(res.body.message, /Nothing of the batch was stored/)
    t.strictSame(await snapshot(app), before, 'nothing changed')
  }
  for (const body of [{ adds: [] }, { adds: [{ payer: 'X', points: '1', timestamp: '2022-11-01T00:00:00Z' }] }, { adds: canonicalAdds, extra: 1 }, {}]) {
    expectError(t, await post(app, '/add/batch', body), 400, 'INVALID_REQUEST')
  }
  t.match((await post(app, '/add/batch', { adds: [canonicalAdds[1], { payer: 'X', points: 'x', timestamp: 't' }] })).body.message, /body\/adds\/1\/points/, 'a schema error names the add')
  expectError(t, await post(app, '/add/batch', { adds: Array.from({ length: 10_001 }, () => canonicalAdds[1]) }), 400, 'INVALID_REQUEST')
  t.strictSame(await snapshot(app), before)
})

t.test('10 000 adds in one batch; the body may be up to 4 MiB, other routes keep 1 MiB', async t => {
  const app = await build(t)
  const adds = Array.from({ length: 10_000 }, (_, i) => ({ payer: `PAYER ${'x'.repeat(40)} ${i % 100}`, points: 1, timestamp: new Date(Date.UTC(2022, 0, 1) + i * 1000).toISOString() }))
  const payload = JSON.stringify({ adds })
  t.ok(payload.length > 1024 * 1024, 'over 1 MiB')
  const res = await call(app, { method: 'POST', url: '/add/batch', headers: { 'content-type': 'application/json' }, payload })
  t.equal(res.status, 200)
  t.strictSame(res.body, { count: 10_000, first_id: 1, last_id: 10_000 })
  const tooBig = JSON.stringify({ adds: [{ ...canonicalAdds[0], payer: 'x'.repeat(4 * 1024 * 1024) }] })
  expectError(t, await call(app, { method: 'POST', url: '/add/batch', headers: { 'content-type': 'application/json' }, payload: tooBig }), 413, 'BODY_TOO_LARGE')
  const before = await snapshot(app)
  expectError(t, await call(app, { method: 'POST', url: '/add', headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ ...canonicalAdds[0], pad: 'x'.repeat(1024 * 1024) }) }), 413, 'BODY_TOO_LARGE')
  t.strictSame(await snapshot(app), before)
})

t.test('Idempotency-Key: a retried batch is a replay, not a second import', async t => {
  const app = await build(t)
  const send = async () => await call(app, { method: 'POST', url: '/add/batch', headers: { 'idempotency-key': 'import-2022-10' }, payload: { adds: canonicalAdds } })
  const first = await send()
  const retry = await send()
  t.equal(retry.status, 200)
  t.equal(retry.headers['idempotent-replayed'], 'true')
  t.strictSame(retry.body, first.body)
  t.strictSame((await get(app, '/balance')).body, { DANNON: 1100, 'MILLER COORS': 10000, UNILEVER: 200 }, 'applied once')
})

t.test('a user\'s ledger takes batches too; an unknown user is 404', async t => {
  const app = await build(t)
  const user = (await post(app, '/users', { email: 'ada@example.com', name: 'Ada' })).body
  const res = await post(app, `/users/${user.id as number}/points/add/batch`, { adds: canonicalAdds })
  t.equal(res.status, 200)
  t.strictSame((await get(app, `/users/${user.id as number}/points/balance`)).body, { DANNON: 1100, 'MILLER COORS': 10000, UNILEVER: 200 })
  t.strictSame((await get(app, '/balance')).body, {}, 'the default ledger is untouched')
  const before = await snapshot(app)
  expectError(t, await post(app, '/users/99/points/add/batch', { adds: canonicalAdds }), 404, 'USER_NOT_FOUND')
  t.strictSame(await snapshot(app), before)
})

t.test('the index is the first add refused, whichever rule refuses it', async t => {
  const app = await build(t)
  const before = await snapshot(app)
  // One by one, adds[0] is refused first (DANNON has nothing), though adds[1] breaks a rule
  // that needs no database: the batch must name adds[0] too.
  for (const bad of [{ payer: 'X', points: 0, timestamp: '2022-11-01T00:00:00Z' }, { payer: 'X', points: 1, timestamp: '2022-11-01T00:00:00.0001Z' }]) {
    const res = await post(app, '/add/batch', { adds: [{ payer: 'DANNON', points: -5, timestamp: '2022-11-01T00:00:00Z' }, bad] })
    expectError(t, res, 400, 'BATCH_REJECTED')
    t.equal(res.body.index, 0)
    t.match(res.body.message, /^adds\[0\] refused \(INSUFFICIENT_PAYER_POINTS\)/)
  }
  t.strictSame(await snapshot(app), before, 'nothing changed')
})

// What the API and the database show, the migration record aside: two apps on the same clock that
// were sent the same adds must show the same.
async function state (app: FastifyInstance): Promise<string> {
  const { schemaversion: _, ...tables } = await snapshot(app)
  const api = await Promise.all(['/balance', '/transactions?limit=500', '/spends?limit=500'].map(async url => (await get(app, url)).body))
  return JSON.stringify({ api, tables })
}

const clock = () => new Date('2026-01-01T00:00:00Z')

/**
 * Sends `history` (adds and spends) one by one to two emptied apps, then `batch` to one as a
 * batch and to the other one add at a time. Throws, saying why, unless the batch's answer and
 * both apps' state are what the adds one at a time imply; answers whether the batch was stored.
 */
async function sameAsOneByOne (apps: [FastifyInstance, FastifyInstance], history: Operation[], batch: Add[]): Promise<boolean> {
  const [batched, oneByOne] = apps
  for (const app of apps) {
    await app.inject({ method: 'POST', url: '/flushDB' })
    for (const op of history) await post(app, op.kind === 'spend' ? '/spend' : '/add', op.body)
  }
  const before = await state(batched)
  const answers = []
  for (const add of batch) answers.push(await post(oneByOne, '/add', add))
  const refused = answers.findIndex(res => res.status !== 200)
  const res = await post(batched, '/add/batch', { adds: batch })
  if (refused === -1) {
    const expected = { count: batch.length, first_id: answers[0]!.body.id, last_id: answers[answers.length - 1]!.body.id }
    if (JSON.stringify(res.body) !== JSON.stringify(expected)) throw new Error(`answered ${JSON.stringify(res.body)}, not ${JSON.stringify(expected)}`)
    if (await state(batched) !== await state(oneByOne)) throw new Error('the states differ')
    return true
  }
  // One by one, the adds before the refused one were stored; the batch stores none.
  const code = answers[refused]!.body.code as string
  if (res.status !== 400 || res.body.code !== 'BATCH_REJECTED' || res.body.index !== refused || !(res.body.message as string).startsWith(`adds[${refused}] refused (${code})`)) {
    throw new Error(`answered ${JSON.stringify(res.body)}; one by one, adds[${refused}] was the first refused (${code})`)
  }
  if (await state(batched) !== before) throw new Error('a refused batch changed something')
  return false
}

interface Add { payer: string, points: number, timestamp: string }
type Operation = { kind: 'add', body: Add } | { kind: 'spend', body: { points: number } }

t.test('a batch with negative and backdated adds, on a ledger whose payers have adjusted lots, is one at a time', async t => {
  const apps: [FastifyInstance, FastifyInstance] = [await build(t, { now: clock }), await build(t, { now: clock })]
  const history: Operation[] = [
    { kind: 'add', body: { payer: 'DANNON', points: 100, timestamp: '2022-01-02T00:00:00Z' } },
    { kind: 'add', body: { payer: 'DANNON', points: -50, timestamp: '2022-01-03T00:00:00Z' } },
    { kind: 'add', body: { payer: 'UNILEVER', points: 500, timestamp: '2022-01-02T00:00:00Z' } },
    { kind: 'spend', body: { points: 20 } }
  ]
  // DANNON's draw moves onto the backdated lot; both payers and the ledger end lower than they began.
  const batch = [
    { payer: 'DANNON', points: 30, timestamp: '2022-01-01T00:00:00Z' },
    { payer: 'DANNON', points: -45, timestamp: '2022-01-04T00:00:00Z' },
    { payer: 'UNILEVER', points: -400, timestamp: '2022-01-04T00:00:00Z' }
  ]
  t.equal(await sameAsOneByOne(apps, history, batch), true, 'stored, and the same as one at a time')
  t.strictSame((await get(apps[0], '/balance')).body, { DANNON: 15, UNILEVER: 100 })
  const drawn = (await get(apps[0], '/transactions')).body.items.find((x: { id: number }) => x.id === 2).drawn_from
  t.strictSame(drawn.map((d: { transaction_id: number, points: number }) => [d.transaction_id, d.points]), [[4, 30], [1, 20]], 'the draw of adds[1] of the history moved onto the backdated add')
})

// Few payers and times, so negative adds, backdating and refusals collide often; now and then an
// add that is refused whatever the state (zero, a timestamp finer than a millisecond, a balance
// past 2^53-1).
const payer = fc.constantFrom('DANNON', 'UNILEVER', 'MILLER COORS', 'KELLOGG')
const timestamp = fc.integer({ min: 0, max: 7 }).map(day => `2022-01-0${day + 1}T00:00:00Z`)
const positive = fc.record({ payer, points: fc.integer({ min: 1, max: 100 }), timestamp })
const anyAdd = fc.oneof(
  { weight: 40, arbitrary: positive },
  { weight: 15, arbitrary: fc.record({ payer, points: fc.integer({ min: -60, max: -1 }), timestamp }) },
  { weight: 1, arbitrary: fc.record({ payer, points: fc.constant(0), timestamp }) },
  { weight: 1, arbitrary: fc.record({ payer, points: fc.constant(1), timestamp: fc.constant('2022-01-01T00:00:00.0001Z') }) },
  { weight: 1, arbitrary: fc.record({ payer, points: fc.constant(Number.MAX_SAFE_INTEGER), timestamp }) }
)
const operation: fc.Arbitrary<Operation> = fc.oneof(
  { weight: 4, arbitrary: anyAdd.filter(add => add.points !== 0 && add.points < 1000 && !add.timestamp.includes('.')).map(body => ({ kind: 'add' as const, body })) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 150 }).map(points => ({ kind: 'spend' as const, body: { points } })) }
)
// Mixed adds around a long run of positive ones, so that runs of 100 and more go in one statement.
const batch = fc.tuple(fc.array(anyAdd, { maxLength: 12 }), fc.oneof(fc.constant([]), fc.array(positive, { minLength: 90, maxLength: 230 })), fc.array(anyAdd, { maxLength: 12 }))
  .map(parts => parts.flat())
  .filter(adds => adds.length > 0)

// Each case posts its adds one by one as well as in a batch: ~250 requests, many times slower on PostgreSQL.
const BATCH_RUNS = propertyRuns(150, 50)

t.test('property: a batch leaves exactly the state the same adds posted one by one leave', async t => {
  const apps: [FastifyInstance, FastifyInstance] = [await build(t, { now: clock }), await build(t, { now: clock })]
  let runs = 0
  let accepted = 0
  await fc.assert(fc.asyncProperty(fc.array(operation, { maxLength: 15 }), batch, async (history, adds) => {
    runs++
    if (await sameAsOneByOne(apps, history, adds)) accepted++
  }), { numRuns: BATCH_RUNS })
  t.ok(runs >= BATCH_RUNS, `${runs} random batches compared, ${accepted} of them stored`)
  // A third of the batches are stored; fewer than a tenth would mean the generator drifted. At
  // a fifth of the cases (CI's SERIALIZABLE pass), too few to tell by chance, only runs count.
  if (BATCH_RUNS >= 50) t.ok(accepted >= BATCH_RUNS / 10, 'many batches were stored, not only refused')
})
