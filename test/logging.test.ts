import { Writable } from 'node:stream'
import { join } from 'node:path'
import t from 'tap'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { tempDir } from './helper.js'
import { startServer } from './process.js'

t.test('one JSON line per request, with method, url, status and time', async t => {
  const lines: Array<Record<string, unknown>> = []
  const stream = new Writable({ write (chunk, _encoding, done) { lines.push(JSON.parse(String(chunk))); done() } })
  const app = buildApp(loadConfig({ DB_PATH: join(tempDir(t), 'app.db'), DAILY_CREDITS_ENABLED: 'false' }), { logger: { level: 'info', stream } })
  t.teardown(() => app.close())
  await app.ready()
  lines.length = 0
  await app.inject('/balance')
  await app.inject({ method: 'POST', url: '/spend', payload: { points: 1 } })
  t.equal(lines.length, 2, 'one line each')
  t.match(lines[0], { level: 30, msg: 'request', method: 'GET', url: '/balance', statusCode: 200, ms: Number })
  t.match(lines[1], { msg: 'request', method: 'POST', url: '/spend', statusCode: 400 })
})

t.test('LOG_PRETTY=true: human-readable lines through pino-pretty', async t => {
  const server = startServer({ DB_PATH: join(tempDir(t), 'app.db'), DAILY_CREDITS_ENABLED: 'false', LOG_PRETTY: 'true' })
  const url = await server.listening
  await fetch(`${url}/balance`)
  // pino-pretty writes from a worker thread: give it a moment before stopping.
  await new Promise(resolve => setTimeout(resolve, 300))
  server.kill('SIGTERM')
  const { code, stdout } = await server.exited
  t.equal(code, 0)
  t.match(stdout, /INFO.*: Server listening at http:\/\/127\.0\.0\.1:\d+/)
  t.match(stdout, /INFO.*: request\n\s+reqId: "req-1"\n\s+method: "GET"\n\s+url: "\/balance"\n\s+statusCode: 200/)
  t.notMatch(stdout, /^\{/m, 'no JSON lines')
})
