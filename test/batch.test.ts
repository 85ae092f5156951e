import fc from 'fast-check'
import t from 'tap'
import { build, call, canonicalAdds, expectError, get, post, snapshot } from './helper.js'

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
  const before = snapshot(app)
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
    t.strictSame(snapshot(app), before, 'nothing changed')
  }
  for (const body of [{ adds: [] }, { adds: [{ payer: 'X', points: '1', timestamp: '2022-11-01T00:00:00Z' }] }, { adds: canonicalAdds, extra: 1 }, {}]) {
    expectError(t, await post(app, '/add/batch', body), 400, 'INVALID_REQUEST')
  }
  t.match((await post(app, '/add/batch', { adds: [canonicalAdds[1], { payer: 'X', points: 'x', timestamp: 't' }] })).body.message, /body\/adds\/1\/points/, 'a schema error names the add')
  expectError(t, await post(app, '/add/batch', { adds: Array.from({ length: 10_001 }, () => canonicalAdds[1]) }), 400, 'INVALID_REQUEST')
  t.strictSame(snapshot(app), before)
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
  const before = snapshot(app)
  expectError(t, await call(app, { method: 'POST', url: '/add', headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ ...canonicalAdds[0], pad: 'x'.repeat(1024 * 1024) }) }), 413, 'BODY_TOO_LARGE')
  t.strictSame(snapshot(app), before)
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
  const before = snapshot(app)
  expectError(t, await post(app, '/users/99/points/add/batch', { adds: canonicalAdds }), 404, 'USER_NOT_FOUND')
  t.strictSame(snapshot(app), before)
})

t.test('the index is the first add refused, whichever rule refuses it', async t => {
  const app = await build(t)
  const before = snapshot(app)
  // One by one, adds[0] is refused first (DANNON has nothing), though adds[1] breaks a rule
  // that needs no database: the batch must name adds[0] too.
  for (const bad of [{ payer: 'X', points: 0, timestamp: '2022-11-01T00:00:00Z' }, { payer: 'X', points: 1, timestamp: '2022-11-01T00:00:00.0001Z' }]) {
    const res = await post(app, '/add/batch', { adds: [{ payer: 'DANNON', points: -5, timestamp: '2022-11-01T00:00:00Z' }, bad] })
    expectError(t, res, 400, 'BATCH_REJECTED')
    t.equal(res.body.index, 0)
    t.match(res.body.message, /^adds\[0\] refused \(INSUFFICIENT_PAYER_POINTS\)/)
  }
  t.strictSame(snapshot(app), before, 'nothing changed')
})

t.test('a batch that meets a full disk is 503 STORAGE_UNAVAILABLE, not a refusal, and stores nothing', async t => {
  const app = await build(t)
  t.equal((await post(app, '/add', canonicalAdds[0])).status, 200)
  app.db.pragma(`max_page_count = ${app.db.pragma('page_count', { simple: true }) as number}`)
  const before = snapshot(app)
  const adds = Array.from({ length: 2000 }, (_, i) => ({ payer: `PAYER ${i}`, points: 1, timestamp: '2022-11-01T00:00:00Z' }))
  const res = await post(app, '/add/batch', { adds })
  expectError(t, res, 503, 'STORAGE_UNAVAILABLE')
  t.notOk('index' in res.body, 'no add was at fault')
  t.strictSame(snapshot(app), before, 'nothing changed')
})

// Few payers and times, so negative adds, backdating and refusals collide often.
const add = fc.record({
  payer: fc.constantFrom('DANNON', 'UNILEVER', 'MILLER COORS'),
  points: fc.oneof(fc.integer({ min: 1, max: 100 }), fc.integer({ min: -120, max: -1 })),
  timestamp: fc.integer({ min: 0, max: 7 }).map(day => `2022-01-0${day + 1}T00:00:00Z`)
})

t.test('property: a batch leaves exactly the state the same adds posted one by one leave', async t => {
  const [batched, oneByOne] = [await build(t), await build(t)]
  let runs = 0
  await fc.assert(fc.asyncProperty(fc.array(add, { minLength: 1, maxLength: 30 }), async adds => {
    runs++
    await Promise.all([batched, oneByOne].map(async app => await app.inject({ method: 'POST', url: '/flushDB' })))
    const answers = []
    for (const a of adds) answers.push(await post(oneByOne, '/add', a))
    const refused = answers.findIndex(res => res.status !== 200)
    const res = await post(batched, '/add/batch', { adds })
    if (refused === -1) {
      if (res.status !== 200 || res.body.count !== adds.length || res.body.first_id !== answers[0]!.body.id || res.body.last_id !== answers[answers.length - 1]!.body.id) return false
      const state = async (app: typeof batched) => [(await get(app, '/balance')).body, (await get(app, '/transactions?limit=500')).body.items.map(({ created_at: _, ...rest }: Record<string, unknown>) => rest), app.db.prepare('SELECT transaction_id, remaining, adjusted FROM point_lots ORDER BY 1').all()]
      return JSON.stringify(await state(batched)) === JSON.stringify(await state(oneByOne))
    }
    // One by one, the adds before the refused one were stored; the batch stores none.
    return res.status === 400 && res.body.code === 'BATCH_REJECTED' && res.body.index === refused &&
      res.body.message.includes(`(${answers[refused]!.body.code as string})`) &&
      JSON.stringify((await get(batched, '/balance')).body) === '{}'
  }), { numRuns: 300 })
  t.ok(runs >= 300, `${runs} random batches compared`)
})
