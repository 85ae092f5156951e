import { join } from 'node:path'
import t from 'tap'
import { checkInvariants } from '../../src/storage/sqlite/check.js'
import { openDatabase } from '../../src/storage/sqlite/open.js'
import { tempDir } from '../helper.js'
import { startServer } from '../process.js'

// npm run test:crash. The real server on a temp file takes concurrent adds, spends, credit
// changes and events over HTTP; it is killed with SIGKILL at a random moment and restarted.
// Then: every acknowledged write is there, and every invariant holds (nothing half-applied).
const ROUNDS = 20
const WORKERS = 6
const payers = ['DANNON', 'UNILEVER', 'MILLER COORS']
const pick = <T>(list: T[]): T => list[Math.floor(Math.random() * list.length)]!
const between = (low: number, high: number) => low + Math.floor(Math.random() * (high - low + 1))

interface Acked { key: string, add?: { id: number, payer: string, points: number } }

async function send (url: string, key: string, method: string, path: string, body?: object) {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: { 'content-type': 'application/json', 'idempotency-key': key },
    ...(body !== undefined && { body: JSON.stringify(body) })
  })
  return { status: res.status, body: await res.json() as any }
}

/** One worker: random writes until the server dies under it. */
async function work (url: string, round: number, worker: number, acked: Acked[], fiveHundreds: string[]): Promise<void> {
  for (let i = 0; ; i++) {
    const key = `r${round}-w${worker}-${i}`
    const user = between(1, 3)
    const op = between(0, 6)
    let res
    try {
      if (op === 0) res = await send(url, key, 'POST', '/add', { payer: pick(payers), points: between(1, 50), timestamp: `2022-01-${String(between(1, 28)).padStart(2, '0')}T00:00:00Z` })
      else if (op === 1) res = await send(url, key, 'POST', `/users/${user}/points/add`, { payer: pick(payers), points: between(-5, 50) || 1, timestamp: '2022-02-01T00:00:00Z' })
      else if (op === 2) res = await send(url, key, 'POST', '/spend', { points: between(1, 30) })
      else if (op === 3) res = await send(url, key, 'POST', `/users/${user}/points/spend`, { points: between(1, 10) })
      else if (op === 4) res = await send(url, key, 'POST', `/api/credits/${user}/add`, { amount: between(1, 20) })
      else if (op === 5) res = await send(url, key, 'POST', `/api/credits/${user}/deduct`, { amount: between(1, 10) })
      else res = await send(url, key, 'POST', '/event', { type: pick(['deposit', 'withdraw']), amount: String(between(1, 300)), user_id: user, time: round * 100_000 + worker * 10_000 + i })
    } catch {
      return // the server is gone: this request was not acknowledged
    }
    if (res.status >= 500) fiveHundreds.push(`${key}: ${JSON.stringify(res.body)}`)
    if (res.status < 300) acked.push({ key, ...((op === 0 || op === 1) && { add: { id: res.body.id, payer: res.body.payer, points: res.body.points } }) })
  }
}

t.test(`${ROUNDS} rounds of kill -9 under load: nothing acknowledged is lost, nothing is half-applied`, async t => {
  const dbPath = join(tempDir(t), 'crash.db')
  const acked: Acked[] = []
  const fiveHundreds: string[] = []
  const broken: string[] = []
  let held = 0
  for (let round = 1; round <= ROUNDS; round++) {
    const server = startServer({ DB_PATH: dbPath, DAILY_CREDITS_ENABLED: 'false' })
    const url = await server.listening
    if (round === 1) {
      for (const name of ['a', 'b', 'c']) await send(url, `user-${name}`, 'POST', '/users', { email: `${name}@example.com`, name })
    }
    const workers = Array.from({ length: WORKERS }, async (_, w) => await work(url, round, w, acked, fiveHundreds))
    await new Promise(resolve => setTimeout(resolve, between(150, 700)))
    server.kill('SIGKILL')
    await Promise.all(workers)
    const { signal } = await server.exited
    if (signal !== 'SIGKILL') broken.push(`round ${round}: the server ended by ${String(signal)}, not the kill`)

    // Reopen the file as the restarted service would, and look.
    const db = openDatabase(dbPath)
    const problems = checkInvariants(db)
    const findKey = db.prepare('SELECT 1 FROM idempotency_keys WHERE key = ?').pluck()
    const findAdd = db.prepare('SELECT payer, points FROM point_transactions WHERE id = ?')
    for (const { key, add } of acked) {
      if (findKey.get(key) === undefined) problems.push(`acknowledged ${key} is missing`)
      if (add !== undefined) {
        const row = findAdd.get(add.id) as { payer: string, points: number } | undefined
        if (row?.payer !== add.payer || row.points !== add.points) problems.push(`acknowledged add ${add.id} is ${JSON.stringify(row)}`)
      }
    }
    db.close()
    if (problems.length === 0) held++
    else broken.push(`round ${round}: ${problems.slice(0, 5).join('; ')}`)
  }
  // A last clean start: the file still serves.
  const server = startServer({ DB_PATH: dbPath, DAILY_CREDITS_ENABLED: 'false' })
  const url = await server.listening
  t.equal((await fetch(`${url}/health`)).status, 200)
  server.kill('SIGTERM')
  t.equal((await server.exited).code, 0)

  t.comment(`crash rounds: ${held}/${ROUNDS} held`)
  t.comment(`${acked.length} acknowledged writes checked after every crash`)
  t.strictSame(broken, [], 'every round held')
  t.strictSame(fiveHundreds, [], 'no 5xx, no SQLITE_BUSY reached a client')
  t.ok(acked.length > ROUNDS * 10, `load was real: ${acked.length} acknowledged writes`)
})
