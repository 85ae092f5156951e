import { Writable } from 'node:stream'
import { join } from 'node:path'
import t from 'tap'
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { openDatabase } from '../../src/storage/sqlite/open.js'
import { call, expectError, get, post, snapshot, tempDir } from '../helper.js'

// What a user sees when the trouble is on our side: the disk is full, or another process holds
// the write lock. Writes are answered 503 with a code and nothing changed, the log says so once,
// and nothing else waits.

async function start (t: Parameters<typeof tempDir>[0]) {
  const path = join(tempDir(t), 'app.db')
  const lines: Array<{ level: number, msg: string }> = []
  const stream = new Writable({ write (chunk, _encoding, done) { lines.push(JSON.parse(String(chunk))); done() } })
  const app = buildApp(loadConfig({ DB_PATH: path, DAILY_CREDITS_ENABLED: 'false', LOG_LEVEL: 'info' }), { logger: { level: 'info', stream } })
  t.teardown(() => app.close())
  await app.ready()
  const other = openDatabase(path)
  t.teardown(() => { if (other.inTransaction) other.exec('ROLLBACK'); other.close() })
  return { app, other, lines }
}

const add = (points: number, payer = 'DANNON') => ({ payer, points, timestamp: '2022-10-31T10:00:00Z' })
const sleep = async (ms: number) => await new Promise(resolve => setTimeout(resolve, ms))

t.test('a batch where one write meets a full disk: every answer matches the file', async t => {
  const { app, other } = await start(t)
  // Hold the lock so that every write below queues up and runs in one batch once it is free.
  other.exec('BEGIN IMMEDIATE')
  const keyedAdd = call(app, { method: 'POST', url: '/add', headers: { 'idempotency-key': 'a' }, payload: add(300) })
  const full = app.writes.run(() => app.db.prepare("INSERT INTO idempotency_keys (key, fingerprint, status, body, created_at) VALUES ('big', 'f', 200, @body, 'x')")
    .run({ body: 'x'.repeat(200_000) }))
  const plainAdd = post(app, '/add', add(200, 'UNILEVER'))
  const keyedSpend = call(app, { method: 'POST', url: '/spend', headers: { 'idempotency-key': 's' }, payload: { points: 100 } })
  const refused = post(app, '/spend', { points: 10_000 })
  await sleep(50)
  app.db.pragma(`max_page_count = ${app.db.pragma('page_count', { simple: true }) as number}`)
  other.exec('COMMIT')

  await t.rejects(full, { code: 'SQLITE_FULL' }, 'the write that met the full disk fails with its own error')
  t.equal((await keyedAdd).status, 200)
  t.equal((await plainAdd).status, 200)
  const spend = await keyedSpend
  t.equal(spend.status, 200)
  t.strictSame(spend.body, [{ payer: 'DANNON', points: -100 }])
  t.equal((await refused).status, 400)
  t.strictSame(other.prepare('SELECT payer, balance FROM payer_balances ORDER BY payer').all(),
    [{ payer: 'DANNON', balance: 200 }, { payer: 'UNILEVER', balance: 200 }], 'the file holds exactly the answered writes')
  t.strictSame(other.prepare('SELECT key FROM idempotency_keys ORDER BY key').pluck().all(), ['a', 's'])
  const replay = await call(app, { method: 'POST', url: '/spend', headers: { 'idempotency-key': 's' }, payload: { points: 100 } })
  t.equal(replay.headers['idempotent-replayed'], 'true', 'a retry of an answered write is a replay, not a second spend')
  t.strictSame((await get(app, '/balance')).body, { DANNON: 200, UNILEVER: 200 })
})

t.test('a full disk is 503 STORAGE_UNAVAILABLE, logged once when it starts and once when it clears', async t => {
  const { app, other, lines } = await start(t)
  app.db.pragma(`max_page_count = ${app.db.pragma('page_count', { simple: true }) as number}`)
  let acknowledged = 0
  const refusals = []
  // Adds fill the pages there are; once a write needs a new one, the disk is "full".
  for (let i = 0; refusals.length < 20 && i < 5000; i++) {
    const res = await post(app, '/add', add(1, `PAYER ${i}`))
    if (res.status === 200) acknowledged++
    else refusals.push(res)
  }
  t.equal(refusals.length, 20)
  t.ok(acknowledged > 0)
  t.strictSame(refusals[0]!.body, {
    statusCode: 503,
    error: 'Service Unavailable',
    message: 'The database cannot be written or read right now (disk full or I/O error); nothing was changed, retry later',
    code: 'STORAGE_UNAVAILABLE'
  })
  t.ok(refusals.every(r => r.status === 503 && r.body.code === 'STORAGE_UNAVAILABLE'))
  t.equal(other.prepare('SELECT sum(balance) FROM payer_balances').pluck().get(), acknowledged, 'every acknowledged add is there, no other')
  const before = await snapshot(app)
  t.equal((await post(app, '/add', add(1, 'ONE MORE PAYER'))).status, 503)
  t.strictSame(await snapshot(app), before, 'a refused write changed nothing')

  app.db.pragma('max_page_count = 1073741823')
  t.equal((await post(app, '/add', add(1, 'AFTER'))).status, 200)
  t.equal((await post(app, '/add', add(1, 'AFTER AGAIN'))).status, 200)
  const trouble = lines.filter(line => /database trouble/.test(line.msg))
  t.strictSame(trouble.map(line => [line.level, line.msg]), [
    [50, 'database trouble: requests are answered 503 STORAGE_UNAVAILABLE until it clears'],
    [30, 'database trouble cleared: writes commit again']
  ], 'two lines for 21 refusals')
  t.equal(lines.filter(line => line.level >= 50).length, 1, 'no stack per request')
})

t.test('another process holding the write lock for 3 s freezes nothing', async t => {
  const { app, other } = await start(t)
  t.equal((await post(app, '/add', add(300))).status, 200)
  other.exec('BEGIN IMMEDIATE')
  let locked = true
  setTimeout(() => { other.exec('COMMIT'); locked = false }, 3000)
  const write = post(app, '/add', add(200, 'UNILEVER'))
  await sleep(20)
  // Everything that does not need the lock is answered while it is held.
  for (const url of ['/live', '/health', '/balance', '/transactions', '/spends', '/users', '/docs/json']) {
    const asked = Date.now()
    const res = await get(app, url)
    t.equal(res.status, 200, url)
    t.equal(locked, true, `${url} answered while the lock is held`)
    // Generous, so a loaded machine cannot fail it; a blocked event loop takes seconds.
    t.ok(Date.now() - asked < 1000, `${url} did not wait for the lock`)
  }
  t.strictSame((await get(app, '/balance')).body, { DANNON: 300 })
  const res = await write
  t.equal(locked, false, 'the write waited for the lock')
  t.equal(res.status, 200)
  t.strictSame((await get(app, '/balance')).body, { DANNON: 300, UNILEVER: 200 })
})

t.test('a write that waits 5 s for the lock is 503 DATABASE_BUSY, nothing changed', async t => {
  const { app, other, lines } = await start(t)
  t.equal((await post(app, '/add', add(300))).status, 200)
  const before = await snapshot(app)
  other.exec('BEGIN IMMEDIATE')
  const started = Date.now()
  const [a, b] = await Promise.all([post(app, '/add', add(1)), post(app, '/spend', { points: 1 })])
  t.ok(Date.now() - started >= 5000, 'it waited 5 s')
  other.exec('ROLLBACK')
  for (const res of [a, b]) {
    t.equal(res.status, 503)
    t.strictSame(res.body, {
      statusCode: 503,
      error: 'Service Unavailable',
      message: 'The database is busy: another process held the write lock for 5 s; nothing was changed, retry',
      code: 'DATABASE_BUSY'
    })
  }
  t.strictSame(await snapshot(app), before)
  t.equal((await post(app, '/add', add(1))).status, 200)
  t.strictSame(lines.filter(line => /database trouble/.test(line.msg)).map(line => line.msg), [
    'database trouble: requests are answered 503 DATABASE_BUSY until it clears',
    'database trouble cleared: writes commit again'
  ])
})

t.test('a batch that meets a full disk is 503 STORAGE_UNAVAILABLE, not a refusal, and stores nothing', async t => {
  const { app } = await start(t)
  t.equal((await post(app, '/add', add(300))).status, 200)
  app.db.pragma(`max_page_count = ${app.db.pragma('page_count', { simple: true }) as number}`)
  const before = await snapshot(app)
  const adds = Array.from({ length: 2000 }, (_, i) => ({ payer: `PAYER ${i}`, points: 1, timestamp: '2022-11-01T00:00:00Z' }))
  const res = await post(app, '/add/batch', { adds })
  expectError(t, res, 503, 'STORAGE_UNAVAILABLE')
  t.notOk('index' in res.body, 'no add was at fault')
  t.strictSame(await snapshot(app), before, 'nothing changed')
})
