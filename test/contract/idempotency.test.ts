import t from 'tap'
import { build, call, canonicalAdds, get, snapshot, sql, value, workOf } from '../helper.js'

type App = Awaited<ReturnType<typeof build>>
const keyed = async (app: App, method: 'POST' | 'PUT' | 'PATCH' | 'DELETE', url: string, key: string, payload?: object) =>
  await call(app, { method, url, headers: { 'idempotency-key': key }, ...(payload !== undefined && { payload }) })

t.test('a repeat with the same key, route and body gets the stored answer and applies nothing', async t => {
  const app = await build(t)
  for (const add of canonicalAdds) await call(app, { method: 'POST', url: '/add', payload: add })
  const first = await keyed(app, 'POST', '/spend', 'spend-1', { points: 5000 })
  t.equal(first.status, 200)
  t.notOk(first.headers['idempotent-replayed'])
  const after = await snapshot(app)
  const again = await keyed(app, 'POST', '/spend', 'spend-1', { points: 5000 })
  t.equal(again.status, 200)
  t.equal(again.headers['idempotent-replayed'], 'true')
  t.strictSame(again.body, first.body)
  const stored = await sql(app, "SELECT key, status FROM idempotency_keys WHERE key = 'spend-1'")
  t.strictSame(stored, [{ key: 'spend-1', status: 200 }])
  t.strictSame(await snapshot(app), after, 'the repeat changed nothing')
  t.strictSame((await get(app, '/balance')).body, { DANNON: 1000, 'MILLER COORS': 5300, UNILEVER: 0 }, 'spent once')
})

type Write = ['POST' | 'PUT' | 'PATCH' | 'DELETE', string, object | undefined, number, { holdId?: number, spendId?: number }?]

// Every write route of the API, in an order that builds on itself ({userId} is user 1; a hold's
// or a spend's id is given where the path has one). The test
// below holds this list to the routes the app serves, so a new write route must be added here.
const writes: Write[] = [
  ['POST', '/users', { email: 'ada@example.com', name: 'Ada' }, 201],
  ['POST', '/add', canonicalAdds[0]!, 200],
  ['POST', '/addTransaction', canonicalAdds[1]!, 200],
  ['POST', '/add/batch', { adds: canonicalAdds.slice(2) }, 200],
  ['POST', '/spend?dry_run=true', { points: 1 }, 200],
  ['POST', '/spend', { points: 1 }, 200],
  ['POST', '/holds', { points: 2 }, 201],
  ['POST', '/holds/{holdId}/capture', { points: 1 }, 200, { holdId: 1 }],
  ['POST', '/holds', { points: 1, expires_at: '2100-01-01T00:00:00Z' }, 201],
  ['POST', '/holds/{holdId}/void', {}, 200, { holdId: 2 }],
  ['POST', '/spends/{spendId}/reversals', { points: 1 }, 201, { spendId: 1 }],
  ['POST', '/users/{userId}/points/add', canonicalAdds[0]!, 200],
  ['POST', '/users/{userId}/points/add/batch', { adds: canonicalAdds.slice(1, 2) }, 200],
  ['POST', '/users/{userId}/points/spend', { points: 1 }, 200],
  ['POST', '/users/{userId}/points/holds', { points: 2 }, 201],
  ['POST', '/users/{userId}/points/holds/{holdId}/capture', {}, 200, { holdId: 3 }],
  ['POST', '/users/{userId}/points/holds', { points: 1 }, 201],
  ['POST', '/users/{userId}/points/holds/{holdId}/void', {}, 200, { holdId: 4 }],
  ['POST', '/users/{userId}/points/spends/{spendId}/reversals', {}, 201, { spendId: 3 }],
  ['POST', '/api/credits/{userId}/add', { amount: 5 }, 200],
  ['POST', '/api/credits/{userId}/deduct', { amount: 2 }, 200],
  ['PATCH', '/api/credits/{userId}/reset', undefined, 200],
  ['POST', '/api/credits/{userId}/external-update', { credits: 9 }, 200],
  ['POST', '/event', { type: 'withdraw', amount: '500', user_id: 1, time: 5 }, 200],
  ['PUT', '/users/{userId}/alert-profile', { risk: 'high', overrides: { velocity_count: 9, withdrawal_limit: '20.00' } }, 200]
]
// /flushDB erases what the others build: test/contract/write-path.test.ts replays it on its own.
const flushes = ['POST /flushDB', 'DELETE /flushDB']

t.test('every write route honours the key', async t => {
  const app = await build(t)
  for (const [i, [method, path, body, status, ids]] of writes.entries()) {
    const url = path.replace('{userId}', '1').replace('{holdId}', String(ids?.holdId)).replace('{spendId}', String(ids?.spendId))
    const first = await keyed(app, method, url, `k${i}`, body)
    t.equal(first.status, status, `${method} ${url}`)
    const before = await snapshot(app)
    const repeat = await keyed(app, method, url, `k${i}`, body)
    t.equal(repeat.status, status, `${method} ${url}: the stored status`)
    t.strictSame(repeat.body, first.body, `${method} ${url}: the stored body`)
    t.equal(repeat.headers['idempotent-replayed'], 'true')
    const { idempotency_keys: _keys, ...data } = await snapshot(app)
    const { idempotency_keys: _before, ...dataBefore } = before
    t.strictSame(data, dataBefore, `${method} ${url}: applied once`)
    const badKey = await keyed(app, method, url, 'two words', body)
    t.equal(badKey.body.code, 'INVALID_IDEMPOTENCY_KEY', `${method} ${url}: a malformed key is refused`)
  }
  t.equal((await get(app, '/api/credits/1')).body.credits, 9)
  t.equal((await get(app, '/users/1/events')).body.items.length, 1)
  t.equal((await get(app, '/users/1/alert-profile')).body.risk, 'high')
})

t.test('the list above is every write route the API serves, and each declares Idempotency-Key', async t => {
  const app = await build(t)
  const spec = app.swagger() as { paths: Record<string, Record<string, { parameters?: Array<{ in: string, name: string }> }>> }
  const served: string[] = []
  for (const [path, operations] of Object.entries(spec.paths)) {
    for (const [method, operation] of Object.entries(operations)) {
      if (method === 'get' || method === 'head') continue
      served.push(`${method.toUpperCase()} ${path}`)
      t.ok(operation.parameters?.some(p => p.in === 'header' && p.name === 'idempotency-key'), `${method.toUpperCase()} ${path} declares the header`)
    }
  }
  const listed = [...new Set(writes.map(([method, path]) => `${method} ${path.replace(/\?.*$/, '')}`)), ...flushes]
  t.strictSame(served.sort(), listed.sort())
})

t.test('the same key with another route or body is 409 and changes nothing', async t => {
  const app = await build(t)
  await keyed(app, 'POST', '/add', 'k', canonicalAdds[0]!)
  const before = await snapshot(app)
  for (const [url, body] of [['/add', canonicalAdds[1]], ['/addTransaction', canonicalAdds[0]], ['/spend', { points: 1 }]] as const) {
    const res = await keyed(app, 'POST', url, 'k', body!)
    t.equal(res.status, 409, url)
    t.strictSame(res.body, {
      statusCode: 409, error: 'Conflict', message: 'This Idempotency-Key was used for a different request (route or body)', code: 'IDEMPOTENCY_KEY_REUSED'
    })
  }
  t.equal((await keyed(app, 'POST', '/spend?dry_run=true', 'dry', { points: 1 })).status, 200)
  t.equal((await keyed(app, 'POST', '/spend', 'dry', { points: 1 })).status, 409, 'the query string is part of the request')
  t.strictSame(await snapshot(app), { ...before, idempotency_keys: (await snapshot(app)).idempotency_keys })
  t.equal(await value(app, 'SELECT count(*) FROM point_spends'), 0)
})

t.test('a refused request stores no key, so its retry runs again', async t => {
  const app = await build(t)
  const refused = await keyed(app, 'POST', '/spend', 'retry-me', { points: 100 })
  t.equal(refused.body.code, 'INSUFFICIENT_POINTS')
  t.equal(await value(app, 'SELECT count(*) FROM idempotency_keys'), 0)
  await call(app, { method: 'POST', url: '/add', payload: { ...canonicalAdds[0], points: 100 } })
  const retried = await keyed(app, 'POST', '/spend', 'retry-me', { points: 100 })
  t.equal(retried.status, 200)
  t.notOk(retried.headers['idempotent-replayed'])
})

t.test('keys must be 1 to 255 visible ASCII characters, sent once', async t => {
  const app = await build(t)
  const before = await snapshot(app)
  for (const key of ['', ' ', 'has space', 'x'.repeat(256), 'tab\there', 'é']) {
    const res = await call(app, { method: 'POST', url: '/add', headers: { 'idempotency-key': key }, payload: canonicalAdds[0] })
    t.equal(res.status, 400, JSON.stringify(key))
    t.equal(res.body.code, 'INVALID_IDEMPOTENCY_KEY', JSON.stringify(key))
  }
  const twice = await call(app, { method: 'POST', url: '/add', headers: { 'idempotency-key': ['a', 'b'] }, payload: canonicalAdds[0] })
  t.equal(twice.status, 400, 'two headers')
  t.strictSame(await snapshot(app), before)
  t.equal((await keyed(app, 'POST', '/add', 'x'.repeat(255), canonicalAdds[0]!)).status, 200, '255 characters is fine')
  t.equal((await keyed(app, 'POST', '/add', '!~', canonicalAdds[0]!)).status, 200)
})

t.test('keys are kept IDEMPOTENCY_TTL_HOURS, then purged; an expired key is a new request', async t => {
  let clock = new Date('2026-11-22T00:00:00Z')
  const app = await build(t, { now: () => clock, env: { IDEMPOTENCY_TTL_HOURS: '2' } })
  await keyed(app, 'POST', '/add', 'old', canonicalAdds[0]!)
  clock = new Date('2026-11-22T01:59:59Z')
  t.equal((await keyed(app, 'POST', '/add', 'old', canonicalAdds[0]!)).headers['idempotent-replayed'], 'true', 'still kept')
  await keyed(app, 'POST', '/add', 'newer', canonicalAdds[1]!)
  clock = new Date('2026-11-22T02:00:01Z')
  const expired = await keyed(app, 'POST', '/add', 'old', canonicalAdds[0]!)
  t.notOk(expired.headers['idempotent-replayed'], 'past the TTL the key is not honoured, even before a purge')
  t.equal(expired.body.id, 3, 'and the add is applied again')
  clock = new Date('2026-11-22T04:00:00Z')
  t.equal((await app.storage.write(app.idempotency.purge())), 1, '"newer" (01:59:59) is past the TTL; "old" was stored again at 02:00:01')
  clock = new Date('2026-11-22T04:00:02Z')
  t.equal((await app.storage.write(app.idempotency.purge())), 1)
  t.equal(await value(app, 'SELECT count(*) FROM idempotency_keys'), 0)
  t.equal((await app.storage.write(app.idempotency.purge())), 0)
})

t.test('concurrent duplicates of one keyed spend apply once', async t => {
  const app = await build(t)
  await call(app, { method: 'POST', url: '/add', payload: { ...canonicalAdds[0], points: 1000 } })
  const answers = await Promise.all(Array.from({ length: 20 }, async () => await keyed(app, 'POST', '/spend', 'once', { points: 10 })))
  t.ok(answers.every(a => a.status === 200))
  t.equal(answers.filter(a => a.headers['idempotent-replayed'] === undefined).length, 1, 'one applied, the rest replayed')
  t.strictSame((await get(app, '/balance')).body, { DANNON: 990 })
})

t.test('the hourly purge is a write like any other, and a purge that fails is logged, not thrown', async t => {
  const app = await build(t)
  const logged: unknown[] = []
  app.log.error = ((obj: unknown, msg: unknown) => { logged.push([obj, msg]) }) as typeof app.log.error
  let purged = 0
  app.idempotency.purge = () => workOf(app, () => { purged++; return 0 })
  await app.purgeExpiredKeys()
  t.equal(purged, 1)
  app.idempotency.purge = () => workOf(app, () => { throw new Error('the disk is full') })
  await app.purgeExpiredKeys()
  t.match(logged, [[{ err: { message: 'the disk is full' } }, 'purging expired idempotency keys failed']])
})
