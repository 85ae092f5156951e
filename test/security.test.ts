import t from 'tap'
import { build, call, canonicalAdds, get } from './helper.js'

const token = 'test-token-0123456789'

t.test('with API_TOKEN set, every route but /health and the docs needs the bearer token', async t => {
  const app = await build(t, { env: { API_TOKEN: token } })
  const routes: Array<['GET' | 'POST' | 'DELETE', string, object?]> = [
    ['GET', '/balance'], ['POST', '/add', canonicalAdds[0]], ['POST', '/spend', { points: 1 }], ['GET', '/transactions'],
    ['POST', '/users', { email: 'a@example.com', name: 'A' }], ['GET', '/users'], ['GET', '/api/credits/1'],
    ['POST', '/event', { type: 'deposit', amount: '1', user_id: 1, time: 1 }], ['GET', '/alerts'], ['POST', '/flushDB'], ['DELETE', '/flushDB']
  ]
  for (const [method, url, payload] of routes) {
    for (const authorization of [undefined, 'Bearer wrong-token-0123456789', `Basic ${token}`, token, `bearer ${token}`]) {
      const res = await call(app, { method, url, ...(payload && { payload }), ...(authorization !== undefined && { headers: { authorization } }) })
      t.equal(res.status, 401, `${method} ${url} with ${authorization ?? 'no header'}`)
      t.strictSame(res.body, { statusCode: 401, error: 'Unauthorized', message: 'Send Authorization: Bearer <API_TOKEN>', code: 'UNAUTHORIZED' })
    }
  }
  t.equal(app.db.prepare('SELECT count(*) FROM point_transactions').pluck().get(), 0, 'nothing written')
  const ok = await call(app, { method: 'POST', url: '/add', payload: canonicalAdds[0], headers: { authorization: `Bearer ${token}` } })
  t.equal(ok.status, 200)
  t.equal((await call(app, { method: 'POST', url: '/flushDB', headers: { authorization: `Bearer ${token}` } })).status, 200,
    'flush with the token, and ALLOW_FLUSH=true')
  t.equal((await get(app, '/health')).status, 200, 'health is open')
  t.equal((await app.inject('/docs/')).statusCode, 200, 'the docs are open')
  const spec = (await get(app, '/docs/json')).body
  t.strictSame(spec.components.securitySchemes, { bearer: { type: 'http', scheme: 'bearer' } }, 'the docs page can send the token')
})

t.test('the token does not open /flushDB without ALLOW_FLUSH', async t => {
  const app = await build(t, { env: { API_TOKEN: token, ALLOW_FLUSH: 'false' } })
  const res = await call(app, { method: 'POST', url: '/flushDB', headers: { authorization: `Bearer ${token}` } })
  t.equal(res.status, 404)
})

t.test('without API_TOKEN, no token is needed', async t => {
  const app = await build(t)
  t.equal((await get(app, '/balance')).status, 200)
  t.notOk((await get(app, '/docs/json')).body.components?.securitySchemes)
})

t.test('security headers on responses, and a CSP the docs page works with', async t => {
  const app = await build(t)
  const api = await app.inject('/balance')
  t.equal(api.headers['x-content-type-options'], 'nosniff')
  t.equal(api.headers['x-frame-options'], 'SAMEORIGIN')
  t.match(api.headers['strict-transport-security'], /max-age=/)
  t.match(api.headers['content-security-policy'], /default-src 'self'/)
  t.notMatch(api.headers['content-security-policy'], /upgrade-insecure-requests/, 'served over plain http')
  const docs = await app.inject('/docs/')
  t.equal(docs.statusCode, 200)
  t.match(docs.headers['content-security-policy'], /script-src 'self'/)
  t.notMatch(docs.headers['content-security-policy'], /upgrade-insecure-requests/)
})

t.test('DB_SYNCHRONOUS sets the pragma', async t => {
  t.equal((await build(t)).db.pragma('synchronous', { simple: true }), 1, 'NORMAL by default')
  t.equal((await build(t, { env: { DB_SYNCHRONOUS: 'full' } })).db.pragma('synchronous', { simple: true }), 2, 'FULL')
})
