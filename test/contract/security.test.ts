import t from 'tap'
import { build, call, canonicalAdds, get, snapshot, value } from '../helper.js'

const token = 'test-token-0123456789'

t.test('with API_TOKEN set, every route but the probes and the docs needs the bearer token', async t => {
  const app = await build(t, { env: { API_TOKEN: token } })
  const routes: Array<['GET' | 'POST' | 'DELETE', string, object?]> = [
    ['GET', '/balance'], ['POST', '/add', canonicalAdds[0]], ['POST', '/spend', { points: 1 }], ['GET', '/transactions'],
    ['POST', '/users', { email: 'a@example.com', name: 'A' }], ['GET', '/users'], ['GET', '/api/credits/1'],
    ['POST', '/event', { type: 'deposit', amount: '1', user_id: 1, time: 1 }], ['GET', '/alerts'], ['POST', '/flushDB'], ['DELETE', '/flushDB']
  ]
  for (const [method, url, payload] of routes) {
    for (const authorization of [undefined, '', 'Bearer wrong-token-0123456789', `Basic ${token}`, token, `Bearer${token}`, `Bearer ${token}x`, `Bearer ${token.slice(1)}`]) {
      const res = await call(app, { method, url, ...(payload && { payload }), ...(authorization !== undefined && { headers: { authorization } }) })
      t.equal(res.status, 401, `${method} ${url} with ${authorization ?? 'no header'}`)
      t.strictSame(res.body, { statusCode: 401, error: 'Unauthorized', message: 'Send Authorization: Bearer <API_TOKEN>', code: 'UNAUTHORIZED' })
      t.equal(res.headers['www-authenticate'], 'Bearer realm="tally"', 'a 401 names the scheme to use')
    }
  }
  t.equal(await value(app, 'SELECT count(*) FROM point_transactions'), 0, 'nothing written')
  const ok = await call(app, { method: 'POST', url: '/add', payload: canonicalAdds[0], headers: { authorization: `Bearer ${token}` } })
  t.equal(ok.status, 200)
  t.equal((await call(app, { method: 'POST', url: '/flushDB', headers: { authorization: `Bearer ${token}` } })).status, 200,
    'flush with the token, and ALLOW_FLUSH=true')
  t.equal((await get(app, '/health')).status, 200, 'health is open')
  t.equal((await get(app, '/live')).status, 200, 'live is open')
  t.equal((await app.inject('/docs/')).statusCode, 200, 'the docs are open')
  const spec = (await get(app, '/docs/json')).body
  t.strictSame(spec.components.securitySchemes, { bearer: { type: 'http', scheme: 'bearer' } }, 'the docs page can send the token')
  t.strictSame(spec.security, [{ bearer: [] }], 'every route needs it, by default')
  t.strictSame(spec.paths['/live'].get.security, [], 'the docs page shows /live as open')
  t.strictSame(spec.paths['/health'].get.security, [], 'and /health')
  t.notOk(spec.paths['/balance'].get.security, '/balance keeps the default')
})

t.test('the auth scheme is case-insensitive (RFC 7235); the token is not', async t => {
  const app = await build(t, { env: { API_TOKEN: token } })
  for (const scheme of ['Bearer', 'bearer', 'BEARER', 'bEaReR']) {
    const res = await call(app, { method: 'POST', url: '/add', payload: canonicalAdds[0], headers: { authorization: `${scheme} ${token}` } })
    t.equal(res.status, 200, `${scheme} <token>`)
    t.notOk(res.headers['www-authenticate'], 'no challenge on success')
  }
  const before = await snapshot(app)
  const res = await call(app, { method: 'POST', url: '/add', payload: canonicalAdds[0], headers: { authorization: `bearer ${token.toUpperCase()}` } })
  t.equal(res.status, 401, 'the token itself is compared exactly')
  t.equal(res.headers['www-authenticate'], 'Bearer realm="tally"')
  t.strictSame(await snapshot(app), before, 'nothing changed')
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

// Exactly what @fastify/helmet 13 sent (helmet 8's defaults, no upgrade-insecure-requests), now
// computed once (src/http/security-headers.ts): written out here so a change shows.
const helmetHeaders = {
  'content-security-policy': "default-src 'self';base-uri 'self';font-src 'self' https: data:;form-action 'self';frame-ancestors 'self';img-src 'self' data:;object-src 'none';script-src 'self';script-src-attr 'none';style-src 'self' https: 'unsafe-inline'",
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'origin-agent-cluster': '?1',
  'referrer-policy': 'no-referrer',
  'strict-transport-security': 'max-age=31536000; includeSubDomains',
  'x-content-type-options': 'nosniff',
  'x-dns-prefetch-control': 'off',
  'x-download-options': 'noopen',
  'x-frame-options': 'SAMEORIGIN',
  'x-permitted-cross-domain-policies': 'none',
  'x-xss-protection': '0'
}

t.test('security headers on every response, and a CSP the docs page works with', async t => {
  const app = await build(t)
  const responses = [
    await app.inject('/balance'),
    await app.inject('/live'),
    await app.inject({ method: 'POST', url: '/spend', payload: { points: 1 } }),
    await app.inject('/nope'),
    await app.inject({ method: 'POST', url: '/add', payload: '{', headers: { 'content-type': 'application/json' } })
  ]
  for (const res of responses) {
    const sent = Object.fromEntries(Object.keys(helmetHeaders).map(name => [name, res.headers[name]]))
    t.strictSame(sent, helmetHeaders, `${res.statusCode} ${res.raw.req.url}`)
  }
  const docs = await app.inject('/docs/')
  t.equal(docs.statusCode, 200)
  t.equal(docs.headers['content-security-policy'],
    "default-src 'self'; base-uri 'self'; font-src 'self' https: data:; frame-ancestors 'self'; img-src 'self' data: validator.swagger.io; object-src 'none'; script-src 'self' ; script-src-attr 'none'; style-src 'self' https:  'unsafe-inline';",
    'the docs page sends its own CSP, without upgrade-insecure-requests')
  t.equal(docs.headers['x-frame-options'], 'SAMEORIGIN', 'and the other headers')
})
