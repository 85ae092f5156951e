import fc from 'fast-check'
import t from 'tap'
import { build, call, canonicalAdds, snapshot } from '../helper.js'

// npm run test:fuzz. Malformed and hostile requests for every route: every answer is a 4xx
// with the error shape, never a 5xx, and the database is exactly as it was afterwards.

type Method = 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE'
interface Route { method: Method, path: string, body?: Record<string, unknown> }

// Every route, with a valid body where it takes one: each request below breaks it on purpose.
const routes: Route[] = [
  { method: 'POST', path: '/add', body: { ...canonicalAdds[0] } },
  { method: 'POST', path: '/addTransaction', body: { ...canonicalAdds[0] } },
  { method: 'POST', path: '/spend', body: { points: 1 } },
  { method: 'GET', path: '/balance' },
  { method: 'GET', path: '/transactions' },
  { method: 'GET', path: '/spends' },
  { method: 'POST', path: '/users', body: { email: 'fuzz@example.com', name: 'Fuzz' } },
  { method: 'GET', path: '/users' },
  { method: 'GET', path: '/users/{id}' },
  { method: 'POST', path: '/users/{id}/points/add', body: { ...canonicalAdds[0] } },
  { method: 'POST', path: '/users/{id}/points/spend', body: { points: 1 } },
  { method: 'GET', path: '/users/{id}/points/balance' },
  { method: 'GET', path: '/users/{id}/points/transactions' },
  { method: 'GET', path: '/api/credits/{id}' },
  { method: 'POST', path: '/api/credits/{id}/add', body: { amount: 1 } },
  { method: 'POST', path: '/api/credits/{id}/deduct', body: { amount: 1 } },
  { method: 'PATCH', path: '/api/credits/{id}/reset' },
  { method: 'POST', path: '/api/credits/{id}/external-update', body: { credits: 1 } },
  { method: 'GET', path: '/api/credits/{id}/history' },
  { method: 'POST', path: '/event', body: { type: 'deposit', amount: '1.00', user_id: 1, time: 999 } },
  { method: 'GET', path: '/users/{id}/alert-profile' },
  { method: 'PUT', path: '/users/{id}/alert-profile', body: { risk: 'high' } },
  { method: 'GET', path: '/users/{id}/events' },
  { method: 'GET', path: '/alerts' },
  { method: 'GET', path: '/health' }
]

const hostileString = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom("'; DROP TABLE users; --", '" OR 1=1 --', 'NaN', 'Infinity', '-Infinity', '1e309', '0x10', ' 5', '5 ', '٣', '\u0000', '%00', '../../etc/passwd', '{{7*7}}', '$ne', 'null', 'true', '9007199254740993', '-0', '１２３')
)
const hostileValue = fc.oneof(
  hostileString,
  fc.constantFrom(null, true, false, [], {}, -1, 0, 1.5, -0.5, 1e308, -1e308, 2 ** 53, -(2 ** 53), Number.MAX_VALUE),
  fc.double(),
  fc.object({ maxDepth: 3 }),
  fc.array(fc.anything(), { maxLength: 5 })
)
// A nesting 2000 levels deep, as JSON text.
const deep = '['.repeat(2000) + ']'.repeat(2000)

// Any generated value as text; String() throws on objects without a prototype.
const asText = (value: unknown): string => typeof value === 'string' ? value : JSON.stringify(value) ?? 'undefined'

// Text that cannot be stored as sent (issue 10, item 4): each must be refused, never repaired.
const nul = fc.constantFrom('\u0000', 'DAN\u0000NON', 'x\u0000', '\u0000\u0000')
const loneSurrogate = fc.constantFrom('\ud800', 'DAN\udfffNON', '\ude00\ud83d', 'x\ud83d')
const notUtf8 = fc.constantFrom([0xff], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf0, 0x9f, 0x98], [0xf4, 0x90, 0x80, 0x80], [0x80], [0xe9])
const foreignCharset = fc.constantFrom('latin1', 'ISO-8859-1', '"utf-16"', 'windows-1252', 'us-ascii', 'utf-32', '')

interface Fuzzed {
  route: Route
  method: Method
  url: string
  headers: Record<string, string>
  payload?: string | Buffer
  /** The status and code a breakage must get, where only one is right. */
  expected?: [number, string]
}

const badId = fc.oneof(fc.constantFrom('0', '-1', '1.5', 'abc', '1e3', '99999999999999999999', '%20', 'null', '1;2'), hostileString.map(s => encodeURIComponent(s) || 'x'))

// Breaks a request in one way that no route accepts; other parts may be hostile too.
const fuzzed: fc.Arbitrary<Fuzzed> = fc.record({
  route: fc.constantFrom(...routes),
  breakage: fc.constantFrom('extra-field', 'wrong-type', 'not-an-object', 'malformed-json', 'wrong-content-type', 'oversize', 'deep', 'bad-id', 'unknown-query', 'bad-query',
    'nul', 'lone-surrogate', 'not-utf8', 'foreign-charset', 'proto-key', 'body-on-no-body', 'huge-cursor', 'bad-idempotency-key'),
  id: fc.constantFrom('1', '2'),
  wrongId: badId,
  key: hostileString,
  value: hostileValue,
  other: fc.anything({ maxDepth: 2 }),
  badText: fc.oneof(nul, loneSurrogate),
  badBytes: notUtf8,
  charset: foreignCharset
}).map(({ route, breakage, id, wrongId, key, value, other, badText, badBytes, charset }) => {
  const hasId = route.path.includes('{id}')
  const takesBody = route.body !== undefined
  // A breakage the route can feel: body breakages need a body, bad ids need an id.
  if (breakage === 'body-on-no-body' && (takesBody || route.method === 'GET')) breakage = 'unknown-query'
  if (breakage === 'huge-cursor' && route.method !== 'GET') breakage = 'unknown-query'
  if (breakage === 'bad-idempotency-key' && route.method === 'GET') breakage = 'unknown-query'
  if (!takesBody && !['bad-id', 'unknown-query', 'bad-query', 'body-on-no-body', 'huge-cursor', 'bad-idempotency-key'].includes(breakage)) breakage = 'unknown-query'
  if (breakage === 'bad-id' && !hasId) breakage = 'unknown-query'
  if (breakage === 'bad-query' && route.method !== 'GET') breakage = 'unknown-query'
  const path = route.path.replace('{id}', breakage === 'bad-id' ? wrongId : id)
  const headers: Record<string, string> = { 'content-type': 'application/json' }
  let url = path
  let payload: string | Buffer | undefined = takesBody ? JSON.stringify(route.body) : undefined
  let expected: [number, string] | undefined
  const fields = Object.keys(route.body ?? {})
  // Bad text goes into one of the body's strings, or, where it has none, into a field's name.
  const textField = fields.find(field => typeof route.body![field] === 'string')
  const withText = (text: string): string => JSON.stringify(textField !== undefined ? { ...route.body, [textField]: text } : { ...route.body, [`x${text}`]: 1 })
  switch (breakage) {
    case 'extra-field': payload = JSON.stringify({ ...route.body, [`x${key}`]: value }); break
    case 'wrong-type': {
      // Replace one field with a value of another type than the schema's.
      const field = fields[Math.abs(JSON.stringify(value).length) % fields.length]!
      const original = route.body![field]
      const wrong = typeof value === typeof original ? (typeof original === 'string' ? 12345 : asText(value)) : value
      payload = JSON.stringify({ ...route.body, [field]: wrong })
      break
    }
    case 'not-an-object': payload = JSON.stringify([other, value]); break
    case 'malformed-json': payload = `${JSON.stringify(route.body).slice(0, -1)}${key.replace(/[}\]]/g, '')},`; break
    case 'wrong-content-type': headers['content-type'] = fc.sample(fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/xml', 'text/html'), 1)[0]!; break
    case 'oversize': payload = JSON.stringify({ ...route.body, pad: 'x'.repeat(1024 * 1024) }); break
    case 'deep': payload = `{"a":${deep}}`; break
    case 'bad-id': break
    case 'unknown-query': url = `${path}?${encodeURIComponent(`zz${key}`)}=${encodeURIComponent(asText(value))}`; break
    case 'bad-query': url = `${path}?limit=${encodeURIComponent(typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= 500 ? 'x' : asText(value))}`; break
    // JSON.stringify writes a lone surrogate as a \u escape; the text around it is hostile too.
    case 'nul':
    case 'lone-surrogate': {
      // The hostile text around it without surrogates of its own, which could pair with it.
      const around = key.replace(/\p{Surrogate}/gu, '')
      payload = withText(`${around}${badText}${around}`)
      expected = [400, 'INVALID_REQUEST']
      break
    }
    case 'not-utf8': {
      const [before, after] = withText('\u0001SPLIT\u0001').split('\\u0001SPLIT\\u0001') as [string, string]
      payload = Buffer.concat([Buffer.from(before), Buffer.from(badBytes), Buffer.from(after)])
      expected = [400, 'INVALID_REQUEST']
      break
    }
    // Item 8: a __proto__ key is refused and named; a body where none is taken; a cursor past
    // 2^53−1; a malformed Idempotency-Key on any write.
    case 'proto-key': payload = `${JSON.stringify(route.body).slice(0, -1)},"__proto__":${JSON.stringify({ x: value })}}`; expected = [400, 'FORBIDDEN_KEY']; break
    case 'body-on-no-body': payload = JSON.stringify([other, value]); expected = [400, 'INVALID_REQUEST']; break
    case 'huge-cursor': url = `${path}?cursor=${fc.sample(fc.bigInt({ min: 9007199254740992n, max: 10n ** 40n }), 1)[0]!}`; expected = [400, 'INVALID_REQUEST']; break
    case 'bad-idempotency-key': headers['idempotency-key'] = key.length % 2 === 0 ? 'k'.repeat(256) : 'two words'; expected = [400, 'INVALID_IDEMPOTENCY_KEY']
      if (!takesBody) delete headers['content-type']
      break
    case 'foreign-charset': headers['content-type'] = `application/json; charset=${charset}`; expected = [415, 'UNSUPPORTED_MEDIA_TYPE']; break
  }
  return { route, method: route.method, url, headers, ...(payload !== undefined && { payload }), ...(expected !== undefined && { expected }) }
})

t.test('hostile requests to every route: always a 4xx with the error shape, nothing changes', async t => {
  const app = await build(t)
  // Some data to protect: users, points, credits, events.
  await call(app, { method: 'POST', url: '/users', payload: { email: 'ada@example.com', name: 'Ada' } })
  for (const add of canonicalAdds) await call(app, { method: 'POST', url: '/add', payload: add })
  await call(app, { method: 'POST', url: '/users/1/points/add', payload: canonicalAdds[0] })
  await call(app, { method: 'POST', url: '/api/credits/1/add', payload: { amount: 10 } })
  await call(app, { method: 'POST', url: '/event', payload: { type: 'withdraw', amount: '500', user_id: 1, time: 1000 } })
  const before = await snapshot(app)

  let tried = 0
  const failures: string[] = []
  await fc.assert(fc.asyncProperty(fuzzed, async request => {
    tried++
    const res = await app.inject({ method: request.method, url: request.url, headers: request.headers, ...(request.payload !== undefined && { payload: request.payload }) })
    let body: any
    try { body = JSON.parse(res.body) } catch { body = res.body }
    const shaped = typeof body === 'object' && body !== null && Object.keys(body).sort().join() === 'code,error,message,statusCode' &&
      body.statusCode === res.statusCode && typeof body.code === 'string' && typeof body.message === 'string'
    const unexpected = request.expected !== undefined && (res.statusCode !== request.expected[0] || body.code !== request.expected[1])
    if (res.statusCode < 400 || res.statusCode >= 500 || !shaped || unexpected) {
      failures.push(`${request.method} ${request.url} ${JSON.stringify(String(request.payload ?? '').slice(0, 200))} -> ${res.statusCode} ${res.body.slice(0, 200)}`)
      return false
    }
    return true
  }), { numRuns: 3000 })
  t.comment(`fuzz: ${tried} hostile requests tried`)
  t.strictSame(failures, [], 'every answer a 4xx with the error shape')
  t.strictSame(await snapshot(app), before, 'the database is exactly as it was')
})

// The HTTP layer (issue 10, item 6): a method the path does not take, a parameter too long, and
// requests Node's parser refuses, sent as raw bytes. Every answer has the error shape, never a 5xx.

const methods: Method[] = ['GET', 'POST', 'PATCH', 'PUT', 'DELETE']

t.test('a method the path does not take, or a parameter over 100 characters: 405 with Allow, or 414', async t => {
  const app = await build(t)
  await call(app, { method: 'POST', url: '/users', payload: { email: 'ada@example.com', name: 'Ada' } })
  const before = await snapshot(app)
  const failures: string[] = []
  await fc.assert(fc.asyncProperty(fc.constantFrom(...routes), fc.constantFrom(...methods), fc.string({ minLength: 101, maxLength: 400 }), async (route, method, long) => {
    const takes = routes.filter(other => other.path === route.path).map(other => other.method)
    const wrongMethod = !takes.includes(method)
    // A wrong method on the route's path, or the right one with an id of over 100 characters (cut
    // to 400, never inside a %-escape, which would make it a malformed URL instead).
    if (!wrongMethod && !route.path.includes('{id}')) return true
    const url = route.path.replace('{id}', wrongMethod ? '1' : encodeURIComponent(long).slice(0, 400).replace(/%[0-9A-F]?$/, '').padEnd(101, 'x'))
    const res = await app.inject({ method, url, headers: { 'content-type': 'application/json' }, ...(route.body && { payload: JSON.stringify(route.body) }) })
    const body = JSON.parse(res.body)
    const expected = wrongMethod ? 405 : 414
    const ok = res.statusCode === expected && body.statusCode === expected && body.code === (wrongMethod ? 'METHOD_NOT_ALLOWED' : 'URI_TOO_LONG') &&
      (!wrongMethod || takes.every(m => String(res.headers.allow).includes(m)))
    if (!ok) failures.push(`${method} ${url.slice(0, 120)} -> ${res.statusCode} ${res.body.slice(0, 200)} allow=${String(res.headers.allow)}`)
    return ok
  }), { numRuns: 500 })
  t.strictSame(failures, [], 'every one a 405 with Allow, or a 414, in the error shape')
  t.strictSame(await snapshot(app), before, 'the database is exactly as it was')
})

// Raw requests, each on its own connection: a valid one broken in one or more places.
const wireRequest = fc.record({
  method: fc.constantFrom('GET', 'POST', 'FOO', 'G ET', 'get', '', 'POST\u0000', 'DELETE'),
  path: fc.constantFrom('/balance', '/add', '/users/1', '*', '', '/ba lance', '/\u0001', `/users/${'1'.repeat(120)}`),
  version: fc.constantFrom('HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/1.1 extra', '', 'HTTP/9.9', 'http/1.1'),
  host: fc.constantFrom('Host: tally\r\n', '', 'Host: tally\r\nHost: other\r\n'),
  headers: fc.array(fc.constantFrom(
    'Content-Type: application/json', 'Content-Length: -1', 'Content-Length: 2', 'Content-Length: 1\r\nContent-Length: 2',
    'Transfer-Encoding: chunked', 'Transfer-Encoding: chunked\r\nContent-Length: 3', 'Transfer-Encoding: gzip, chunked',
    'X-Bad: a\u0001b', 'Bad Name: x', ' X-Folded: x', 'X-Nothing', `X-Long: ${'x'.repeat(17 * 1024)}`, 'Expect: nonsense',
    'Expect: 100-continue', 'Content-Type: application/json; charset=latin1', 'Authorization: bearer x'
  ), { maxLength: 4 }),
  body: fc.oneof(fc.constantFrom('', '{}', 'zz\r\n{}\r\n0\r\n\r\n', '2\r\n{}\r\n0\r\n\r\n', '{"points": 1}', '-1'), fc.string({ unit: 'binary', maxLength: 30 }))
}).map(({ method, path, version, host, headers, body }) =>
  `${method} ${path} ${version}\r\n${host}${headers.map(h => `${h}\r\n`).join('')}\r\n${body}`)

/** Every response on the wire, in order (a 1xx has no body). */
function responses (raw: Buffer): Array<{ status: number, body: string }> {
  const found: Array<{ status: number, body: string }> = []
  let rest = raw
  while (rest.length > 0) {
    const end = rest.indexOf('\r\n\r\n')
    if (end < 0) throw new Error(`an incomplete response: ${JSON.stringify(rest.toString('latin1').slice(0, 200))}`)
    const head = rest.subarray(0, end).toString('latin1')
    const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(head)?.[1])
    const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0)
    found.push({ status, body: rest.subarray(end + 4, end + 4 + length).toString('utf8') })
    rest = rest.subarray(end + 4 + length)
  }
  return found
}

t.test('broken HTTP on the wire: every answer is in the error shape, never a 5xx', async t => {
  const app = await build(t)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  const before = await snapshot(app)
  const { connect } = await import('node:net')
  let tried = 0
  const statuses = new Map<number, number>()
  const failures: string[] = []
  await fc.assert(fc.asyncProperty(wireRequest, async request => {
    tried++
    const raw = await new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = []
      const socket = connect(port, '127.0.0.1')
      socket.on('data', chunk => { chunks.push(chunk) })
      socket.on('close', () => { resolve(Buffer.concat(chunks)) })
      socket.on('error', reject)
      // The whole request, then end: a server waiting for more sees the end of the stream.
      socket.end(request, 'latin1')
    })
    let answers: Array<{ status: number, body: string }>
    try { answers = responses(raw) } catch (err) { answers = []; failures.push(`${JSON.stringify(request.slice(0, 200))} -> ${(err as Error).message}`) }
    const finals = answers.filter(answer => answer.status >= 200)
    for (const { status } of finals) statuses.set(status, (statuses.get(status) ?? 0) + 1)
    for (const { status, body } of finals) {
      let parsed: any
      try { parsed = JSON.parse(body) } catch { parsed = undefined }
      const shaped = status < 400 || (typeof parsed === 'object' && parsed !== null &&
        Object.keys(parsed).sort().join() === 'code,error,message,statusCode' && parsed.statusCode === status)
      if (status >= 500 || !shaped) failures.push(`${JSON.stringify(request.slice(0, 200))} -> ${status} ${body.slice(0, 200)}`)
    }
    if (finals.length === 0) failures.push(`${JSON.stringify(request.slice(0, 200))} -> no answer`)
    return true
  }), { numRuns: 400 })
  t.comment(`fuzz: ${tried} broken requests sent on the wire, answered ${[...statuses].sort().map(([status, n]) => `${status} ×${n}`).join(', ')}`)
  t.strictSame(failures, [], 'every one answered in the error shape, never a 5xx')
  t.strictSame(await snapshot(app), before, 'the database is exactly as it was')
})

// The token (issue 10, item 7): any Authorization but the right token is a 401 with the challenge.
t.test('hostile Authorization headers: a 401 with WWW-Authenticate, and the scheme in any case works', async t => {
  const token = 'fuzz-token-0123456789'
  const app = await build(t, { env: { API_TOKEN: token } })
  const before = await snapshot(app)
  const guarded = routes.filter(route => route.path !== '/health')
  const scheme = fc.constantFrom('Bearer', 'bearer', 'BEARER', 'bEARER', 'Basic', 'Token', '', 'Bearer:', 'Bearer\t')
  const wrong = fc.oneof(
    fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map(c => String.fromCharCode(c)), maxLength: 60 }),
    fc.constantFrom(token.toUpperCase(), token.slice(1), `${token}x`, `${token} ${token}`, `"${token}"`, token.replace('0', 'O'))
  )
  const failures: string[] = []
  await fc.assert(fc.asyncProperty(fc.constantFrom(...guarded), scheme, wrong, fc.boolean(), async (route, s, value, right) => {
    const rightScheme = s.toLowerCase() === 'bearer'
    const authorization = `${s} ${right ? token : value}`
    const url = route.path.replace('{id}', '1')
    // GET requests only, so the right token changes nothing either.
    if (route.method !== 'GET') return true
    const res = await app.inject({ method: 'GET', url, headers: { authorization } })
    const open = right && rightScheme
    const body = JSON.parse(res.body)
    const ok = open
      ? res.statusCode !== 401
      : res.statusCode === 401 && res.headers['www-authenticate'] === 'Bearer realm="tally"' && body.code === 'UNAUTHORIZED'
    if (!ok) failures.push(`${url} ${JSON.stringify(authorization)} -> ${res.statusCode} ${res.body.slice(0, 200)}`)
    return ok
  }), { numRuns: 1000 })
  t.strictSame(failures, [], 'the right token in any letter case of the scheme opens; nothing else does')
  t.strictSame(await snapshot(app), before, 'the database is exactly as it was')
})
