import { existsSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import t from 'tap'
import { openDatabase } from '../src/db/open.js'
import { tempDir } from './helper.js'
import { startServer } from './process.js'

t.test('starts, serves, and on SIGTERM finishes what it answered and closes the file cleanly', async t => {
  const dbPath = join(tempDir(t), 'app.db')
  const server = startServer({ DB_PATH: dbPath })
  const url = await server.listening
  t.match(url, /^http:\/\/127\.0\.0\.1:\d+$/)
  const health = await fetch(`${url}/health`)
  t.equal(health.status, 200)
  // A burst of adds with SIGTERM in the middle: each one acknowledged must be stored.
  const adds = Array.from({ length: 30 }, async (_, i) => {
    try {
      const res = await fetch(`${url}/add`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ payer: 'P', points: i + 1, timestamp: '2022-01-01T00:00:00Z' })
      })
      return res.status === 200 ? i + 1 : 0
    } catch {
      return 0 // refused once shutdown began: not acknowledged
    }
  })
  await new Promise(resolve => setTimeout(resolve, 5))
  server.kill('SIGTERM')
  const acknowledged = (await Promise.all(adds)).reduce((a, b) => a + b, 0)
  const { code, stdout } = await server.exited
  t.equal(code, 0, 'exits 0')
  t.match(stdout, /"signal":"SIGTERM".*"msg":"shutting down"/)
  t.notOk(existsSync(`${dbPath}-wal`), 'the database was closed: its WAL is checkpointed away')
  const db = openDatabase(dbPath)
  t.teardown(() => db.close())
  t.equal(db.prepare("SELECT coalesce(sum(balance), 0) FROM payer_balances WHERE payer = 'P'").pluck().get(), acknowledged,
    'every acknowledged add is stored, and nothing else')
})

t.test('a bad variable stops start-up with one clear line', async t => {
  const server = startServer({ PORT: 'abc' })
  const { code, stderr } = await server.exited
  t.equal(code, 1)
  t.equal(stderr, 'tally: invalid configuration: PORT must be an integer from 0 to 65535 (got "abc")\n')
})

t.test('a port already taken stops start-up', async t => {
  const blocker = createServer()
  await new Promise<void>(resolve => blocker.listen(0, '127.0.0.1', resolve))
  t.teardown(() => blocker.close())
  const port = (blocker.address() as { port: number }).port
  const server = startServer({ PORT: String(port), DB_PATH: join(tempDir(t), 'app.db') })
  const { code, stdout } = await server.exited
  t.equal(code, 1)
  t.match(stdout, /EADDRINUSE.*"msg":"could not start"/)
})
