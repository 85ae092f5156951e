import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { tempDir } from '../helper.js'
import { startServer } from '../process.js'
import { mask, replayReadme } from '../readme-session.js'

// The real sqlite3 CLI (Debian's sqlite3) reading the file of a running server: WAL lets a
// reader in while the service writes, and the views say what the API says.
const run = promisify(execFile)
const sqlite3 = async (dbPath: string, sql: string) =>
  JSON.parse((await run('sqlite3', ['-readonly', '-json', dbPath, sql], { timeout: 10_000 })).stdout || '[]') as Array<Record<string, unknown>>

const post = async (url: string, path: string, body: object) =>
  await fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })

t.test('sqlite3 reads the balance, credit and alert views of a running, writing server', async t => {
  const dbPath = join(tempDir(t), 'app.db')
  const server = startServer({ DB_PATH: dbPath, DAILY_CREDITS_ENABLED: 'false' })
  t.teardown(() => server.kill('SIGKILL'))
  const url = await server.listening
  await post(url, '/users', { email: 'ada@example.com', name: 'Ada' })
  await post(url, '/api/credits/1/add', { amount: 42 })
  await post(url, '/users/1/points/add', { payer: 'DANNON', points: 300, timestamp: '2022-10-31T10:00:00Z' })
  await post(url, '/event', { type: 'withdraw', amount: '150', user_id: 1, time: 1 })

  // A writer keeps adding while sqlite3 reads, again and again.
  const load = { writing: true }
  let written = 0
  const writer = (async () => {
    for (let i = 0; load.writing && i < 5000; i++) {
      if ((await post(url, '/add', { payer: 'LOAD', points: 1, timestamp: '2022-01-01T00:00:00Z' })).ok) written++
    }
  })()
  const seen: number[] = []
  for (let read = 0; read < 20; read++) {
    const rows = await sqlite3(dbPath, "SELECT points FROM point_balances WHERE ledger_id = 0 AND payer = 'LOAD'")
    seen.push(Number(rows[0]?.points ?? 0))
  }
  load.writing = false
  await writer
  t.equal(seen.length, 20, 'every read got in while the service wrote (no "database is locked")')
  t.ok(seen.every((n, i) => i === 0 || n >= seen[i - 1]!), `each read saw a committed, growing balance: ${seen.join(' ')}`)
  t.ok(written > 0 && seen[seen.length - 1]! > 0, `${written} adds written during the reads`)

  const final = await sqlite3(dbPath, "SELECT points FROM point_balances WHERE payer = 'LOAD'")
  t.equal(final[0]!.points, written, 'the view shows every acknowledged add')
  t.strictSame(await sqlite3(dbPath, 'SELECT ledger_id, user_id, email, payer, points FROM point_balances WHERE ledger_id = 1'),
    [{ ledger_id: 1, user_id: 1, email: 'ada@example.com', payer: 'DANNON', points: 300 }])
  t.strictSame(await sqlite3(dbPath, 'SELECT user_id, email, credits FROM credit_balances'), [{ user_id: 1, email: 'ada@example.com', credits: 42 }])
  t.strictSame(await sqlite3(dbPath, 'SELECT user_id, email, code, alerts FROM alert_summary'), [{ user_id: 1, email: 'ada@example.com', code: 1100, alerts: 1 }])
  const details = await sqlite3(dbPath, 'SELECT code, type, amount, time, details FROM alert_details')
  t.strictSame(details, [{ code: 1100, type: 'withdraw', amount: '150.00', time: 1, details: '{"amount":"150.00","limit":"100.00"}' }])
  const api = await (await fetch(`${url}/api/credits/1`)).json() as { credits: number }
  t.equal(api.credits, 42, 'the API agrees')
})

t.test('the README\'s sqlite3 examples print what the real sqlite3 prints, in the README\'s one session', async t => {
  const outcomes = (await replayReadme(t, { sqlite3: 'cli' })).filter(o => o.step.command.startsWith('sqlite3 '))
  t.ok(outcomes.length >= 6, `${outcomes.length} sqlite3 examples`)
  for (const { step, actual } of outcomes) t.equal(mask(actual), mask(step.expected), step.command)
})

t.test('sqlite3 shows every stored string exactly as sent, and refused ones not at all', async t => {
  const dbPath = join(tempDir(t), 'app.db')
  const server = startServer({ DB_PATH: dbPath, DAILY_CREDITS_ENABLED: 'false' })
  t.teardown(() => server.kill('SIGKILL'))
  const url = await server.listening
  const payers = ['😀'.repeat(64), '👩‍👩‍👧‍👦', 'e\u0301', '\u00e9', '\ufeff\uffff', 'a\u0001\u007fb', '\\u0000']
  for (const payer of payers) {
    t.equal((await post(url, '/add', { payer, points: 1, timestamp: '2022-10-31T10:00:00Z' })).status, 200)
  }
  // Refused, so never seen as "DAN" or as bytes that are not UTF-8.
  t.equal((await post(url, '/add', { payer: 'DAN\u0000NON', points: 1, timestamp: '2022-10-31T10:00:00Z' })).status, 400)
  t.equal((await post(url, '/add', { payer: 'DAN\ud800', points: 1, timestamp: '2022-10-31T10:00:00Z' })).status, 400)
  const rows = await sqlite3(dbPath, 'SELECT payer, hex(payer) AS bytes, length(payer) AS length FROM point_balances ORDER BY payer')
  const expected = [...payers].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
  t.strictSame(rows.map(row => row.payer), expected, 'the view reads back every payer')
  t.strictSame(rows.map(row => row.bytes), expected.map(p => Buffer.from(p).toString('hex').toUpperCase()), 'as the UTF-8 bytes sent')
  t.strictSame(rows.map(row => row.length), expected.map(p => [...p].length), 'its length in code points')
})
