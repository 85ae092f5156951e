import t from 'tap'
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { build, call, canonicalAdds, freshDatabase, get, post, snapshot } from '../helper.js'

t.test('GET /health answers after a database round trip', async t => {
  const app = await build(t)
  const res = await get(app, '/health')
  t.equal(res.status, 200)
  t.strictSame(res.body, { status: 'ok' })
})

t.test('GET /live answers without touching the database', async t => {
  const app = await build(t)
  // Every way to the database fails from here on, whichever the engine.
  const gone = async () => { throw new Error('the database is gone') }
  Object.assign(app.storage, { ping: gone, read: gone, write: gone, writeOnce: gone })
  t.equal((await get(app, '/health')).status, 500, 'the readiness probe feels it')
  const res = await get(app, '/live')
  t.equal(res.status, 200)
  t.strictSame(res.body, { status: 'live' })
})

t.test('unknown routes are 404 with the error shape', async t => {
  const app = await build(t)
  const res = await get(app, '/nope?x=1')
  t.equal(res.status, 404)
  t.strictSame(res.body, { statusCode: 404, error: 'Not Found', message: 'Route GET /nope not found', code: 'ROUTE_NOT_FOUND' })
})

t.test('a malformed URL is a 400 with the error shape', async t => {
  const app = await build(t)
  const res = await get(app, '/%E0%A4%A')
  t.equal(res.status, 400)
  t.strictSame(res.body, { statusCode: 400, error: 'Bad Request', message: "'/%E0%A4%A' is not a valid url component", code: 'BAD_URL' })
})

t.test('the docs page lists every route with its contract', async t => {
  const app = await build(t)
  const page = await app.inject('/docs/')
  t.equal(page.statusCode, 200)
  t.match(page.headers['content-type'], /text\/html/)
  const spec = (await get(app, '/docs/json')).body
  t.equal(spec.openapi, '3.0.3')
  const routes = Object.entries(spec.paths as Record<string, Record<string, any>>)
    .flatMap(([path, methods]) => Object.keys(methods).map(method => `${method.toUpperCase()} ${path}`))
  t.strictSame(routes.sort(), [
    'DELETE /flushDB',
    'GET /alerts',
    'GET /api/credits/{userId}', 'GET /api/credits/{userId}/history',
    'GET /balance', 'GET /balance/details', 'GET /expirations', 'GET /health', 'GET /holds', 'GET /holds/{holdId}',
    'GET /live', 'GET /spends', 'GET /spends/{spendId}/reversals', 'GET /transactions',
    'GET /users', 'GET /users/{userId}', 'GET /users/{userId}/alert-profile', 'GET /users/{userId}/events',
    'GET /users/{userId}/points/balance', 'GET /users/{userId}/points/balance/details', 'GET /users/{userId}/points/expirations',
    'GET /users/{userId}/points/holds', 'GET /users/{userId}/points/holds/{holdId}', 'GET /users/{userId}/points/spends',
    'GET /users/{userId}/points/spends/{spendId}/reversals', 'GET /users/{userId}/points/transactions',
    'PATCH /api/credits/{userId}/reset',
    'POST /add', 'POST /add/batch', 'POST /addTransaction',
    'POST /api/credits/{userId}/add', 'POST /api/credits/{userId}/deduct', 'POST /api/credits/{userId}/external-update',
    'POST /event', 'POST /flushDB', 'POST /holds', 'POST /holds/{holdId}/capture', 'POST /holds/{holdId}/void',
    'POST /spend', 'POST /spends/{spendId}/reversals', 'POST /users',
    'POST /users/{userId}/points/add', 'POST /users/{userId}/points/add/batch', 'POST /users/{userId}/points/holds',
    'POST /users/{userId}/points/holds/{holdId}/capture', 'POST /users/{userId}/points/holds/{holdId}/void',
    'POST /users/{userId}/points/spend', 'POST /users/{userId}/points/spends/{spendId}/reversals',
    'PUT /users/{userId}/alert-profile'
  ])
  for (const [path, methods] of Object.entries(spec.paths as Record<string, Record<string, any>>)) {
    for (const [method, op] of Object.entries(methods)) {
      t.ok(op.summary, `${method} ${path} has a summary`)
      t.ok(op.description, `${method} ${path} describes its rule`)
      t.ok(op.tags?.length, `${method} ${path} has tags`)
      t.ok(op.responses['200'] ?? op.responses['201'], `${method} ${path} documents its success`)
      t.ok(op.responses['500'], `${method} ${path} documents its 500`)
      t.match(op.responses['503']?.description, /SHUTTING_DOWN/, `${method} ${path} documents its 503`)
    }
  }
  t.ok(spec.paths['/add'].post.responses['400'].description.includes('INSUFFICIENT_PAYER_POINTS'), 'error codes are listed')
  t.ok(spec.paths['/add'].post.responses['415'], 'JSON routes document 415')
})

t.test('/flushDB exists only with ALLOW_FLUSH=true', async t => {
  const guarded = await build(t, { env: { ALLOW_FLUSH: 'false' } })
  await post(guarded, '/add', canonicalAdds[0])
  const before = await snapshot(guarded)
  for (const method of ['POST', 'DELETE'] as const) {
    const res = await call(guarded, { method, url: '/flushDB' })
    t.equal(res.status, 404, `${method} is not found`)
    t.equal(res.body.code, 'ROUTE_NOT_FOUND')
  }
  t.strictSame(await snapshot(guarded), before, 'nothing flushed')
  t.notOk((await get(guarded, '/docs/json')).body.paths['/flushDB'], 'and it is not documented')

  const app = await build(t)
  for (const method of ['POST', 'DELETE'] as const) {
    for (const add of canonicalAdds) await post(app, '/add', add)
    await post(app, '/spend', { points: 10 })
    const res = await call(app, { method, url: '/flushDB' })
    t.equal(res.status, 200)
    t.strictSame(res.body, { flushed: true })
    t.equal((await app.inject('/balance')).body, '{}', `${method}: empty`)
    t.strictSame((await post(app, '/add', canonicalAdds[0])).body.id, 1, `${method}: ids start again at 1`)
    await call(app, { method, url: '/flushDB' })
  }
  const fresh = await build(t)
  // The migration record is kept; only the times it was applied differ between the two files.
  const withoutRunAt = (state: Record<string, unknown[]>) => ({
    ...state,
    schemaversion: state.schemaversion!.map(row => ({ ...(row as object), run_at: undefined }))
  })
  t.strictSame(withoutRunAt(await snapshot(app)), withoutRunAt(await snapshot(fresh)), 'the freshly migrated state')
})

t.test('data survives closing and reopening the database', async t => {
  const database = await freshDatabase(t)
  // The logger built from LOG_LEVEL, as server.ts uses it.
  const first = buildApp(loadConfig({ ...database, LOG_LEVEL: 'silent' }))
  t.teardown(() => first.close())
  await first.ready()
  for (const add of canonicalAdds) await post(first, '/add', add)
  await post(first, '/spend', { points: 5000 })
  await first.close()

  const second = await build(t, { database })
  t.strictSame((await get(second, '/balance')).body, { DANNON: 1000, 'MILLER COORS': 5300, UNILEVER: 0 })
  t.equal((await get(second, '/spends')).body.items.length, 1)
  t.equal((await post(second, '/add', canonicalAdds[0])).body.id, 6, 'ids continue')
})

t.test('a 5xx never carries internals', async t => {
  const app = buildApp(loadConfig({ ...await freshDatabase(t), DAILY_CREDITS_ENABLED: 'false' }), { logger: false })
  app.get('/boom', async () => { throw new Error('SELECT secret FROM internals') })
  t.teardown(() => app.close())
  await app.ready()
  const res = await get(app, '/boom')
  t.equal(res.status, 500)
  t.strictSame(res.body, {
    statusCode: 500,
    error: 'Internal Server Error',
    message: 'Internal Server Error: the request was not completed',
    code: 'INTERNAL_ERROR'
  })
})
