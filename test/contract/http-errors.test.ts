import { connect, type Socket } from 'node:net'
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { clientErrorBody } from '../../src/http/protocol-errors.js'
import { build, call, canonicalAdds, freshDatabase, snapshot } from '../helper.js'

interface RawAnswer { status: number, headers: Record<string, string>, body: any, text: string }

/** Writes `request` to a fresh connection as given, and reads what comes back until the server closes it. */
async function sendRaw (app: FastifyInstance, request: string): Promise<RawAnswer> {
  return parse(await exchange(app, request))
}

async function exchange (app: FastifyInstance, request: string): Promise<string> {
  const { port } = app.server.address() as { port: number }
  const socket = connect(port, '127.0.0.1')
  return await new Promise<string>((resolve, reject) => {
    let received = ''
    socket.setEncoding('utf8')
    socket.on('data', chunk => { received += chunk })
    socket.on('close', () => { resolve(received) })
    socket.on('error', reject)
    socket.write(request)
  })
}

/** A raw connection to `app`, and everything it receives until it closes. */
function open (app: FastifyInstance): { client: Socket, received: Promise<string> } {
  const { port } = app.server.address() as { port: number }
  const client = connect(port, '127.0.0.1')
  const received = new Promise<string>(resolve => {
    let text = ''
    client.setEncoding('utf8')
    client.on('data', chunk => { text += chunk })
    client.on('close', () => { resolve(text) })
  })
  return { client, received }
}

function parse (text: string): RawAnswer {
  const [head = '', body = ''] = text.split('\r\n\r\n')
  const [statusLine = '', ...lines] = head.split('\r\n')
  const headers = Object.fromEntries(lines.map(line => {
    const colon = line.indexOf(':')
    return [line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()]
  }))
  return { status: Number(statusLine.split(' ')[1]), headers, body: body === '' ? undefined : JSON.parse(body), text }
}

async function listening (t: Parameters<typeof build>[0]): Promise<FastifyInstance> {
  const app = await build(t)
  await app.listen({ port: 0, host: '127.0.0.1' })
  return app
}

const json = 'Content-Type: application/json\r\n'
const malformed: Array<[string, string, string]> = [
  ['an unknown method', 'FOO /balance HTTP/1.1\r\nHost: tally\r\n\r\n', 'Invalid method encountered'],
  ['a broken request line', 'GET /balance HTTP/1.1 extra\r\nHost: tally\r\n\r\n', 'Expected CRLF after version'],
  ['a bad HTTP version', 'GET /balance HTTP/7.1\r\nHost: tally\r\n\r\n', 'Invalid HTTP version'],
  ['an invalid header character', 'GET /balance HTTP/1.1\r\nHost: tally\r\nX-Bad: a\u0001b\r\n\r\n', 'Invalid header value char'],
  ['a space in a header name', 'GET /balance HTTP/1.1\r\nHost: tally\r\nBad Header: x\r\n\r\n', 'Invalid header token'],
  ['Content-Length: -1', `POST /add HTTP/1.1\r\nHost: tally\r\n${json}Content-Length: -1\r\n\r\n{}`, 'Invalid character in Content-Length'],
  ['Content-Length with Transfer-Encoding', `POST /add HTTP/1.1\r\nHost: tally\r\n${json}Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n`, 'Transfer-Encoding can\'t be present with Content-Length'],
  ['a bad chunk size', `POST /add HTTP/1.1\r\nHost: tally\r\n${json}Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n`, 'Invalid character in chunk size']
]

t.test('a request Node\'s parser refuses is answered in the error shape, 400 MALFORMED_REQUEST, and the connection closed', async t => {
  const app = await listening(t)
  await call(app, { method: 'POST', url: '/add', payload: canonicalAdds[0] })
  const before = await snapshot(app)
  for (const [what, request, reason] of malformed) {
    const res = await sendRaw(app, request)
    t.equal(res.status, 400, what)
    t.strictSame(res.body, { statusCode: 400, error: 'Bad Request', message: `Malformed HTTP request: ${reason}`, code: 'MALFORMED_REQUEST' }, what)
    t.equal(res.headers.connection, 'close')
    t.equal(Number(res.headers['content-length']), Buffer.byteLength(JSON.stringify(res.body)))
    t.equal(res.headers['content-type'], 'application/json; charset=utf-8')
  }
  t.strictSame(await snapshot(app), before, 'nothing changed')
})

t.test('headers or a URL over 16 KiB: 431 HEADERS_TOO_LARGE', async t => {
  const app = await listening(t)
  const body = { statusCode: 431, error: 'Request Header Fields Too Large', message: 'The request line and headers together are over 16 KiB', code: 'HEADERS_TOO_LARGE' }
  const header = await sendRaw(app, `GET /balance HTTP/1.1\r\nHost: tally\r\nX-Pad: ${'x'.repeat(17 * 1024)}\r\n\r\n`)
  t.equal(header.status, 431)
  t.strictSame(header.body, body)
  t.equal(header.headers.connection, 'close')
  const url = await sendRaw(app, `GET /balance?${'x'.repeat(17 * 1024)} HTTP/1.1\r\nHost: tally\r\n\r\n`)
  t.equal(url.status, 431)
  t.strictSame(url.body, body)
})

t.test('a request that does not arrive in time: 408 REQUEST_TIMEOUT', async t => {
  const app = await listening(t)
  // Node raises this only with a requestTimeout (Fastify's default has none): raise it by hand.
  const accepted = new Promise<Socket>(resolve => app.server.once('connection', resolve))
  const { client, received } = open(app)
  client.write('GET /balance HTTP/1.1\r\nHost: tally\r\n')
  app.server.emit('clientError', Object.assign(new Error('Request timeout'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' }), await accepted)
  const res = parse(await received)
  t.equal(res.status, 408)
  t.strictSame(res.body, { statusCode: 408, error: 'Request Timeout', message: 'The request did not arrive in time', code: 'REQUEST_TIMEOUT' })
  t.equal(res.headers.connection, 'close')
})

t.test('nothing is written to a socket that is gone, or after a response has begun', async t => {
  const app = buildApp(loadConfig({ ...await freshDatabase(t), DAILY_CREDITS_ENABLED: 'false' }), { logger: false })
  t.teardown(() => app.close())
  // A route that sends its headers at once and the rest later, as a reply sent before its body arrived.
  let release = (): void => {}
  app.get('/early', async (_request, reply) => {
    reply.hijack()
    reply.raw.writeHead(200, { 'content-type': 'text/plain' })
    reply.raw.flushHeaders()
    release = () => { reply.raw.end('late') }
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  const client = connect(port, '127.0.0.1')
  const received = new Promise<string>(resolve => {
    let text = ''
    client.setEncoding('utf8')
    client.on('data', chunk => {
      text += chunk
      // The response has begun: now break the request's body.
      if (text.includes('\r\n\r\n')) client.write('zz\r\n')
    })
    client.on('close', () => { resolve(text) })
  })
  client.write('GET /early HTTP/1.1\r\nHost: tally\r\nTransfer-Encoding: chunked\r\n\r\n')
  const text = await received
  release()
  t.match(text, /^HTTP\/1\.1 200 OK\r\n/, 'the response that had begun')
  t.notMatch(text, /MALFORMED_REQUEST|HTTP\/1\.1 400/, 'and no second status line inside it')

  // A socket the client already reset: nothing to answer.
  const destroyed: string[] = []
  const gone = { writable: false, destroy: () => { destroyed.push('destroyed') } } as unknown as Socket
  app.server.emit('clientError', Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }), gone)
  t.strictSame(destroyed, ['destroyed'], 'just closed')
})

t.test('the error shape for any other client error', async t => {
  t.strictSame(clientErrorBody(Object.assign(new Error('Something new'), { code: 'E_SOMETHING_NEW', bytesParsed: 0, rawPacket: { type: 'Buffer', data: [] } })),
    { statusCode: 400, error: 'Bad Request', message: 'Malformed HTTP request: Something new', code: 'MALFORMED_REQUEST' })
})

t.test('a connection that ends mid-request is told so, if it still reads', async t => {
  const app = await listening(t)
  const before = await snapshot(app)
  const { client, received } = open(app)
  client.end(`POST /add HTTP/1.1\r\nHost: tally\r\n${json}Content-Length: 50\r\n\r\n{"payer"`)
  const res = parse(await received)
  t.equal(res.status, 400)
  t.strictSame(res.body, { statusCode: 400, error: 'Bad Request', message: 'Malformed HTTP request: the connection ended before the request was complete', code: 'MALFORMED_REQUEST' })
  t.strictSame(await snapshot(app), before, 'nothing changed')
})

t.test('an HTTP/1.1 request without Host: 400 MALFORMED_REQUEST in the error shape', async t => {
  const app = await listening(t)
  const res = await sendRaw(app, 'GET /balance HTTP/1.1\r\nConnection: close\r\n\r\n')
  t.equal(res.status, 400)
  t.strictSame(res.body, { statusCode: 400, error: 'Bad Request', message: 'Malformed HTTP request: an HTTP/1.1 request must send a Host header', code: 'MALFORMED_REQUEST' })
  const old = await sendRaw(app, 'GET /balance HTTP/1.0\r\n\r\n')
  t.equal(old.status, 200, 'HTTP/1.0 has no Host header to require')
  t.strictSame(old.body, {})
})

t.test('an Expect other than 100-continue: 417 EXPECTATION_FAILED in the error shape', async t => {
  const app = await listening(t)
  const before = await snapshot(app)
  const res = await sendRaw(app, `POST /add HTTP/1.1\r\nHost: tally\r\nExpect: 200-ok\r\n${json}Content-Length: 2\r\n\r\n{}`)
  t.equal(res.status, 417)
  t.strictSame(res.body, { statusCode: 417, error: 'Expectation Failed', message: 'The only Expect header tally meets is Expect: 100-continue', code: 'EXPECTATION_FAILED' })
  t.equal(res.headers.connection, 'close')
  const continued = await exchange(app, `POST /add HTTP/1.1\r\nHost: tally\r\nExpect: 100-continue\r\nConnection: close\r\n${json}Content-Length: 2\r\n\r\n{}`)
  t.match(continued, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 400 /, '100-continue is met (and then the body judged)')
  t.strictSame(await snapshot(app), before, 'nothing changed')
})

t.test('a path parameter over 100 characters: 414 URI_TOO_LONG', async t => {
  const app = await build(t)
  const before = await snapshot(app)
  for (const url of [`/users/${'1'.repeat(101)}`, `/api/credits/${'x'.repeat(200)}/add`]) {
    const res = await call(app, { method: url.endsWith('/add') ? 'POST' : 'GET', url, payload: { amount: 1 } })
    t.equal(res.status, 414, url)
    t.equal(res.body.code, 'URI_TOO_LONG')
    t.strictSame(Object.keys(res.body).sort(), ['code', 'error', 'message', 'statusCode'])
    t.equal(res.body.error, 'URI Too Long')
  }
  t.equal((await call(app, { method: 'GET', url: `/users/${'9'.repeat(100)}` })).status, 400, 'at 100 characters: the id is checked as usual')
  t.strictSame(await snapshot(app), before, 'nothing changed')
})

t.test('a known path with a method it does not take: 405 METHOD_NOT_ALLOWED with Allow', async t => {
  const app = await build(t)
  await call(app, { method: 'POST', url: '/users', payload: { email: 'ada@example.com', name: 'Ada' } })
  const before = await snapshot(app)
  const cases: Array<[string, string, string]> = [
    ['GET', '/add', 'POST'],
    ['PUT', '/add?x=1', 'POST'],
    ['DELETE', '/balance', 'GET, HEAD'],
    ['OPTIONS', '/balance', 'GET, HEAD'],
    ['POST', '/users/1', 'GET, HEAD'],
    ['DELETE', '/users', 'GET, HEAD, POST'],
    ['GET', '/users/1/points/add', 'POST'],
    ['POST', '/users/1/points/balance', 'GET, HEAD'],
    ['POST', '/users/1/alert-profile', 'GET, HEAD, PUT'],
    ['GET', '/api/credits/1/reset', 'PATCH'],
    ['GET', '/flushDB', 'DELETE, POST'],
    ['POST', '/health', 'GET, HEAD'],
    ['POST', '/docs/json', 'GET, HEAD']
  ]
  for (const [method, url, allow] of cases) {
    const res = await call(app, { method: method as 'GET', url })
    t.equal(res.status, 405, `${method} ${url}`)
    t.equal(res.headers.allow, allow)
    const path = url.replace(/\?.*$/, '')
    t.strictSame(res.body, { statusCode: 405, error: 'Method Not Allowed', message: `Method ${method} is not allowed on ${path}; it takes ${allow}`, code: 'METHOD_NOT_ALLOWED' })
  }
  const broken = await call(app, { method: 'PATCH', url: '/alerts', headers: { 'content-type': 'application/json' }, payload: '{"x":' })
  t.equal(broken.status, 405, 'the method is judged before the body')
  t.equal(broken.body.code, 'METHOD_NOT_ALLOWED')
  const head = await app.inject({ method: 'HEAD', url: '/add' })
  t.equal(head.statusCode, 405, 'HEAD on a POST route')
  t.equal(head.headers.allow, 'POST')
  for (const [method, url] of [['GET', '/nope'], ['POST', '/users/1/nope'], ['GET', '/users/1/points'], ['DELETE', '/']]) {
    const res = await call(app, { method: method as 'GET', url: url! })
    t.equal(res.status, 404, `${method} ${url}: no route takes the path`)
    t.equal(res.body.code, 'ROUTE_NOT_FOUND')
    t.notOk(res.headers.allow)
  }
  t.strictSame(await snapshot(app), before, 'nothing changed')
})
