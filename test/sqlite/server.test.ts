import { existsSync, writeFileSync } from 'node:fs'
import { connect, createServer, type Socket } from 'node:net'
import { join } from 'node:path'
import t from 'tap'
import { openDatabase } from '../../src/storage/sqlite/open.js'
import { tempDir } from '../helper.js'
import { startServer } from '../process.js'

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
  const dbPath = join(tempDir(t), 'app.db')
  const server = startServer({ PORT: String(port), DB_PATH: dbPath, DAILY_CREDITS_ENABLED: 'true' })
  const { code, stdout } = await server.exited
  t.equal(code, 1)
  t.match(stdout, /EADDRINUSE.*"msg":"could not start"/)
  // The file is migrated (that happens before listening, and is what the next start does anyway),
  // but the daily grant's catch-up waits until the server listens: it never ran.
  const db = openDatabase(dbPath)
  t.teardown(() => db.close())
  t.equal(db.prepare('SELECT count(*) FROM daily_grant_runs').pluck().get(), 0, 'no daily grant ran')
  t.notMatch(stdout, /daily credits/)
})

t.test('a database that cannot be opened stops start-up with one line naming DB_PATH, the path and the cause', async t => {
  const dir = tempDir(t)
  const notADatabase = join(dir, 'notes.txt')
  writeFileSync(notADatabase, 'these are notes, not a database: SQLite reads this header and refuses it\n'.repeat(2))
  const cases: Array<[string, string]> = [
    [dir, 'SQLITE_CANTOPEN: unable to open database file'],
    [notADatabase, 'SQLITE_NOTADB: file is not a database'],
    [join(notADatabase, 'data', 'app.db'), `ENOTDIR: not a directory, mkdir '${notADatabase}/data'`],
    // Node 20's recursive mkdir spun at 100 % CPU forever on this one: the limit turns a hang
    // into a failure (a SIGKILLed child has code null).
    ['/proc/no-such-dir/app.db', "ENOENT: no such file or directory, mkdir '/proc/no-such-dir'"]
  ]
  for (const [dbPath, cause] of cases) {
    const { code, stdout, stderr } = await startServer({ DB_PATH: dbPath }, 20_000).exited
    t.equal(code, 1, dbPath)
    t.equal(stderr, `tally: cannot open DB_PATH "${dbPath}": ${cause}\n`)
    t.notMatch(stdout, /could not start/, 'no JSON stack')
  }
})

// A raw socket, so the test decides exactly what is on the wire when SIGTERM comes.
function open (url: string): { socket: Socket, received: Promise<string> } {
  const { hostname, port } = new URL(url)
  const socket = connect(Number(port), hostname)
  const received = new Promise<string>(resolve => {
    let text = ''
    socket.setEncoding('utf8')
    socket.on('data', chunk => { text += chunk })
    socket.on('error', () => {})
    socket.on('close', () => { resolve(text) })
  })
  return { socket, received }
}

t.test('SIGTERM with a client stalled mid-upload, one mid-headers and one idle: the drain closes them after its grace and exits 0', async t => {
  const dbPath = join(tempDir(t), 'app.db')
  const server = startServer({ DB_PATH: dbPath })
  const url = await server.listening
  // Content-Length 100, then 10 bytes of body, then nothing.
  const stalled = open(url)
  stalled.socket.write('POST /add HTTP/1.1\r\nHost: tally\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"payer":"')
  const halfHeaders = open(url)
  halfHeaders.socket.write('GET /health HTTP/1.1\r\nHost: tally\r\n')
  const idle = open(url)
  idle.socket.write('GET /health HTTP/1.1\r\nHost: tally\r\nConnection: keep-alive\r\n\r\n')
  // Once the idle socket's answer is back, the server has surely read the others' bytes too.
  await new Promise<void>(resolve => idle.socket.once('data', () => resolve()))
  await new Promise(resolve => setTimeout(resolve, 200))
  const sent = Date.now()
  server.kill('SIGTERM')
  const { code, stdout } = await server.exited
  const took = Date.now() - sent
  t.equal(code, 0, 'exits 0')
  t.ok(took < 5000, `well within close-with-grace's 10 s (took ${took} ms)`)
  t.match(stdout, /"closed":2,"answering":0,"msg":"drain deadline: closed the connections with nothing to answer"/)
  t.equal(await stalled.received, '', 'the stalled upload is closed unanswered: its add was never whole')
  t.equal(await halfHeaders.received, '')
  t.match(await idle.received, /^HTTP\/1\.1 200 [^]*"status":"ok"/, 'the idle socket had its answer, then was closed')
  t.notOk(existsSync(`${dbPath}-wal`), 'the database was closed cleanly')
  const db = openDatabase(dbPath)
  t.teardown(() => db.close())
  t.equal(db.prepare('SELECT count(*) FROM point_transactions').pluck().get(), 0, 'nothing of the stalled add was stored')
})
