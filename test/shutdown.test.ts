import { connect, type Socket } from 'node:net'
import { join } from 'node:path'
import t from 'tap'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { DRAIN_GRACE_MS, DRAIN_LIMIT_MS } from '../src/system/shutdown.js'
import { tempDir } from './helper.js'

// Raw sockets, so the test decides exactly what is on the wire when close() begins.
function open (port: number): { socket: Socket, received: Promise<string> } {
  const socket = connect(port, '127.0.0.1')
  const received = new Promise<string>((resolve, reject) => {
    let text = ''
    socket.setEncoding('utf8')
    socket.on('data', chunk => { text += chunk })
    socket.on('close', () => { resolve(text) })
    socket.on('error', reject)
  })
  return { socket, received }
}

t.test('on close, a request in flight is answered and its socket let go; one arriving during the drain is refused in tally\'s shape', async t => {
  const app = buildApp(loadConfig({ DB_PATH: join(tempDir(t), 'app.db'), DAILY_CREDITS_ENABLED: 'false' }), { logger: false })
  // A route the test holds open, standing for a write waiting on its commit.
  let release = (): void => {}
  let entered = (): void => {}
  const inside = new Promise<void>(resolve => { entered = resolve })
  app.get('/held', async () => {
    entered()
    await new Promise<void>(resolve => { release = resolve })
    return { done: true }
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }

  const inFlight = open(port)
  inFlight.socket.write('GET /held HTTP/1.1\r\nHost: tally\r\nConnection: keep-alive\r\n\r\n')
  // Half a request's headers: the socket is not idle, so close() leaves it to finish.
  const late = open(port)
  late.socket.write('GET /health HTTP/1.1\r\nHost: tally\r\n')
  await inside

  const closed = app.close()
  late.socket.write('Connection: keep-alive\r\n\r\n')
  const refused = await late.received
  t.match(refused, /^HTTP\/1\.1 503 /, 'the late request is refused')
  t.match(refused, /\r\nconnection: close\r\n/i, 'and its socket closed')
  t.strictSame(JSON.parse(refused.slice(refused.indexOf('\r\n\r\n') + 4)), {
    statusCode: 503,
    error: 'Service Unavailable',
    message: 'The service is shutting down; nothing was changed, retry once it is back',
    code: 'SHUTTING_DOWN'
  })

  release()
  const answered = await inFlight.received
  t.match(answered, /^HTTP\/1\.1 200 /, 'the request in flight is answered')
  t.match(answered, /\r\nconnection: close\r\n/i, 'with Connection: close, so the server lets the socket go')
  t.match(answered, /\{"done":true\}$/)
  // Before the fix the kept-alive socket held close() open for keepAliveTimeout (72 s).
  await closed
  t.pass('close() finished once both were answered')
})

t.test('the drain has a deadline: after its grace a stalled upload is closed, while a request that fully arrived is still answered', async t => {
  const app = buildApp(loadConfig({ DB_PATH: join(tempDir(t), 'app.db'), DAILY_CREDITS_ENABLED: 'false' }), { logger: false })
  let release = (): void => {}
  let entered = (): void => {}
  const inside = new Promise<void>(resolve => { entered = resolve })
  app.post('/held', async () => {
    entered()
    await new Promise<void>(resolve => { release = resolve })
    return { done: true }
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }

  const answering = open(port)
  answering.socket.write('POST /held HTTP/1.1\r\nHost: tally\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}')
  const stalled = open(port)
  stalled.socket.write('POST /add HTTP/1.1\r\nHost: tally\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"payer":"')
  await inside
  await new Promise(resolve => setTimeout(resolve, 100))

  const began = Date.now()
  const closed = app.close()
  const stalledEnd = await Promise.race([stalled.received, new Promise(resolve => setTimeout(resolve, 5000, 'still open after 5 s'))])
  const cutAfter = Date.now() - began
  stalled.socket.destroy() // so that a failure here does not hang the close below
  t.equal(stalledEnd, '', 'the stalled upload is closed unanswered')
  t.ok(cutAfter >= DRAIN_GRACE_MS - 50 && cutAfter < DRAIN_GRACE_MS + 1000, `after the grace (${cutAfter} ms)`)
  // Past the deadline, the request being answered still has its socket.
  await new Promise(resolve => setTimeout(resolve, 200))
  t.equal(answering.socket.destroyed, false, 'the request being answered keeps its socket')
  release()
  const answered = await answering.received
  t.match(answered, /^HTTP\/1\.1 200 [^]*\r\nconnection: close\r\n[^]*\{"done":true\}$/i)
  await closed
})

t.test('the drain has a limit: an answer that never comes is cut at DRAIN_LIMIT_MS, and close() finishes', async t => {
  const app = buildApp(loadConfig({ DB_PATH: join(tempDir(t), 'app.db'), DAILY_CREDITS_ENABLED: 'false' }), { logger: false })
  let entered = (): void => {}
  const inside = new Promise<void>(resolve => { entered = resolve })
  app.post('/never', async () => {
    entered()
    return await new Promise(() => {})
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  const waiting = open(port)
  waiting.socket.write('POST /never HTTP/1.1\r\nHost: tally\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}')
  await inside
  const began = Date.now()
  const closed = app.close()
  t.equal(await waiting.received, '', 'closed unanswered at the limit')
  const cutAfter = Date.now() - began
  t.ok(cutAfter >= DRAIN_LIMIT_MS - 50 && cutAfter < DRAIN_LIMIT_MS + 1000, `at the limit (${cutAfter} ms)`)
  await closed
})
