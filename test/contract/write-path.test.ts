import t from 'tap'
import { build, call, canonicalAdds, expectError, get, post, snapshot } from '../helper.js'

// One write path: every write route, PUT and PATCH and /flushDB included, runs in the engine's
// transaction with the Idempotency-Key record (src/http/write-path.ts).

const keyed = async (app: Awaited<ReturnType<typeof build>>, method: 'POST' | 'PUT' | 'PATCH' | 'DELETE', url: string, key: string, payload?: unknown) =>
  await call(app, { method, url, headers: { 'idempotency-key': key }, ...(payload !== undefined && { payload: payload as object }) })

t.test('PUT /users/:id/alert-profile honours Idempotency-Key', async t => {
  const app = await build(t)
  const body = { risk: 'high', overrides: { withdrawal_limit: '20.00', velocity_count: 9 } }
  const first = await keyed(app, 'PUT', '/users/7/alert-profile', 'profile-1', body)
  t.equal(first.status, 200)
  t.equal(first.headers['idempotent-replayed'], undefined)
  // Someone else changes the profile; the retry must not put the old one back.
  t.equal((await call(app, { method: 'PUT', url: '/users/7/alert-profile', payload: { risk: 'low' } })).status, 200)
  const retry = await keyed(app, 'PUT', '/users/7/alert-profile', 'profile-1', body)
  t.equal(retry.status, 200)
  t.equal(retry.headers['idempotent-replayed'], 'true')
  t.strictSame(retry.body, first.body, 'the first answer, replayed')
  t.equal((await get(app, '/users/7/alert-profile')).body.risk, 'low', 'and nothing applied again')
  expectError(t, await keyed(app, 'PUT', '/users/7/alert-profile', 'profile-1', { risk: 'medium' }), 409, 'IDEMPOTENCY_KEY_REUSED')
  const before = await snapshot(app)
  expectError(t, await keyed(app, 'PUT', '/users/7/alert-profile', 'bad key', body), 400, 'INVALID_IDEMPOTENCY_KEY')
  t.strictSame(await snapshot(app), before)
})

t.test('/flushDB honours Idempotency-Key: a retry is answered, not erased again', async t => {
  const app = await build(t)
  for (const add of canonicalAdds) t.equal((await post(app, '/add', add)).status, 200)
  const first = await keyed(app, 'POST', '/flushDB', 'flush-1')
  t.equal(first.status, 200)
  t.strictSame(first.body, { flushed: true })
  t.strictSame((await get(app, '/balance')).body, {})
  t.equal((await post(app, '/add', canonicalAdds[0])).status, 200)
  const retry = await keyed(app, 'POST', '/flushDB', 'flush-1')
  t.equal(retry.headers['idempotent-replayed'], 'true')
  t.strictSame((await get(app, '/balance')).body, { DANNON: 300 }, 'the add after the flush is still there')
  expectError(t, await keyed(app, 'DELETE', '/flushDB', 'flush-1'), 409, 'IDEMPOTENCY_KEY_REUSED')
})

t.test('the fingerprint is of the body\'s content, not the order of its keys', async t => {
  const app = await build(t)
  const first = await call(app, { method: 'POST', url: '/add', headers: { 'idempotency-key': 'k', 'content-type': 'application/json' }, payload: '{"payer":"DANNON","points":300,"timestamp":"2022-10-31T10:00:00Z"}' })
  const swapped = await call(app, { method: 'POST', url: '/add', headers: { 'idempotency-key': 'k', 'content-type': 'application/json' }, payload: '{"timestamp":"2022-10-31T10:00:00Z","points":300,"payer":"DANNON"}' })
  t.equal(first.status, 200)
  t.equal(swapped.status, 200)
  t.equal(swapped.headers['idempotent-replayed'], 'true')
  t.strictSame(swapped.body, first.body)
  t.strictSame((await get(app, '/balance')).body, { DANNON: 300 }, 'applied once')
  const other = await call(app, { method: 'POST', url: '/add', headers: { 'idempotency-key': 'k' }, payload: { payer: 'DANNON', points: 301, timestamp: '2022-10-31T10:00:00Z' } })
  expectError(t, other, 409, 'IDEMPOTENCY_KEY_REUSED')
})

t.test('routes that take no body refuse one; none, or {}, is fine', async t => {
  const app = await build(t)
  const user = (await post(app, '/users', { email: 'ada@example.com', name: 'Ada' })).body
  t.equal((await post(app, `/api/credits/${user.id as number}/add`, { amount: 5 })).status, 200)
  for (const payload of [[1, 2, 3], { a: 1 }, 'x', 7]) {
    for (const [method, url] of [['PATCH', `/api/credits/${user.id as number}/reset`], ['POST', '/flushDB'], ['DELETE', '/flushDB']] as const) {
      const before = await snapshot(app)
      const res = await call(app, { method, url, headers: { 'content-type': 'application/json' }, payload: JSON.stringify(payload) })
      expectError(t, res, 400, 'INVALID_REQUEST')
      t.strictSame(await snapshot(app), before, `${method} ${url} with ${JSON.stringify(payload)} changed nothing`)
    }
  }
  t.equal((await call(app, { method: 'PATCH', url: `/api/credits/${user.id as number}/reset`, payload: {} })).status, 200)
  t.equal((await call(app, { method: 'PATCH', url: `/api/credits/${user.id as number}/reset` })).status, 200)
  t.equal((await call(app, { method: 'POST', url: '/flushDB' })).status, 200)
})

t.test('on a route that takes no body, none and {} are the same request for Idempotency-Key', async t => {
  const app = await build(t)
  t.equal((await post(app, '/users', { email: 'ada@example.com', name: 'Ada' })).status, 201)
  t.equal((await post(app, '/api/credits/1/add', { amount: 5 })).status, 200)
  const first = await keyed(app, 'PATCH', '/api/credits/1/reset', 'reset-1')
  t.equal(first.status, 200)
  t.equal((await post(app, '/api/credits/1/add', { amount: 3 })).status, 200)
  const retry = await keyed(app, 'PATCH', '/api/credits/1/reset', 'reset-1', {})
  t.equal(retry.status, 200)
  t.equal(retry.headers['idempotent-replayed'], 'true')
  t.strictSame(retry.body, first.body)
  t.equal((await get(app, '/api/credits/1')).body.credits, 3, 'not reset again')
  t.equal((await keyed(app, 'POST', '/flushDB', 'flush-1', {})).status, 200)
  t.equal((await keyed(app, 'POST', '/flushDB', 'flush-1')).headers['idempotent-replayed'], 'true')
})

t.test('a cursor past 2^53−1 is refused like any id past it', async t => {
  const app = await build(t)
  for (const url of ['/transactions', '/spends', '/users', '/users/1/events', '/alerts', '/api/credits/1/history']) {
    for (const cursor of ['99999999999999999999999999999999', '9007199254740993', '9007199254740992']) {
      expectError(t, await get(app, `${url}?cursor=${cursor}`), 400, 'INVALID_REQUEST')
    }
  }
  t.equal((await get(app, '/transactions?cursor=9007199254740991')).status, 200, '2^53−1 itself is a cursor')
})

t.test('every integer path and query parameter is bounded at 2^53−1', async t => {
  // Parameters arrive as text and a canonical integer becomes a Number (src/schemas.ts), which
  // rounds past 2^53−1: a maximum no higher refuses such a value instead of reading it rounded.
  const app = await build(t)
  const spec = app.swagger() as { paths: Record<string, Record<string, { parameters?: Array<{ in: string, name: string, schema: { type?: string, maximum?: number, enum?: number[] } }> }>> }
  let checked = 0
  for (const [path, operations] of Object.entries(spec.paths)) {
    for (const [method, { parameters = [] }] of Object.entries(operations)) {
      for (const { in: where, name, schema } of parameters) {
        if (schema.type !== 'integer' || where === 'header') continue
        checked++
        const bound = schema.maximum ?? (schema.enum !== undefined ? Math.max(...schema.enum) : Infinity)
        t.ok(bound <= Number.MAX_SAFE_INTEGER, `${method.toUpperCase()} ${path}: ${where} ${name} has a maximum of at most 2^53−1`)
      }
    }
  }
  t.ok(checked > 20, `${checked} integer parameters checked`)
})

t.test('a body with a __proto__ key is refused and says why', async t => {
  const app = await build(t)
  const before = await snapshot(app)
  for (const payload of [
    '{"payer":"DANNON","points":300,"timestamp":"2022-10-31T10:00:00Z","__proto__":{"x":1}}',
    '{"payer":"DANNON","points":300,"timestamp":"2022-10-31T10:00:00Z","constructor":{"prototype":{"x":1}}}',
    // A byte-order mark is skipped as always: the refusal still names the key.
    '\uFEFF{"payer":"DANNON","points":300,"timestamp":"2022-10-31T10:00:00Z","__proto__":{"x":1}}'
  ]) {
    const res = await call(app, { method: 'POST', url: '/add', headers: { 'content-type': 'application/json' }, payload })
    expectError(t, res, 400, 'FORBIDDEN_KEY')
    t.match(res.body.message, /valid JSON but has a "__proto__" key or a "constructor" with a "prototype"/)
  }
  expectError(t, await call(app, { method: 'POST', url: '/add', headers: { 'content-type': 'application/json' }, payload: '{"payer":' }), 400, 'INVALID_JSON')
  expectError(t, await call(app, { method: 'POST', url: '/add', headers: { 'content-type': 'application/json' }, payload: '\uFEFF{"payer":' }), 400, 'INVALID_JSON')
  t.strictSame(await snapshot(app), before)
})

t.test('a body nested past the stack with an escape in it is refused as what it is', async t => {
  const app = await build(t)
  const payload = `{"payer":"\\u0041","x":${'['.repeat(20_000)}${']'.repeat(20_000)}}`
  const res = await call(app, { method: 'POST', url: '/add', headers: { 'content-type': 'application/json' }, payload })
  expectError(t, res, 400, 'INVALID_REQUEST')
  t.equal(res.body.message, 'The body is nested too deep')
})

t.test('refusals the hooks make carry the security headers too', async t => {
  const app = await build(t)
  for (const res of [await app.inject({ method: 'GET', url: '/add' }), await app.inject({ method: 'GET', url: '/nope' })]) {
    t.equal(res.headers['x-content-type-options'], 'nosniff', `${res.statusCode}`)
    t.match(res.headers['content-security-policy'], /default-src 'self'/)
  }
})
