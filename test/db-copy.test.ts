import { createHash } from 'node:crypto'
import { copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import type { FastifyInstance } from 'fastify'
import type pg from 'pg'
import t, { type Test } from 'tap'
import { compareOrdered, comparisons, copiedTables, copySqliteToPostgres, formatSummary, type CopySummary } from '../src/storage/copy.js'
import { migratePostgres } from '../src/storage/postgres/migrate.js'
import { createPool } from '../src/storage/postgres/pool.js'
import { migrate, migrationsDir } from '../src/storage/sqlite/migrate.js'
import { openDatabase, type Db } from '../src/storage/sqlite/open.js'
import { build, call, canonicalAdds, tempDir } from './helper.js'
import { freshPostgres } from './postgres.js'
import { runCommand } from './process.js'

// One clock for every app of a test, so that the PostgreSQL app's answers to writes made after
// the copy can be compared byte for byte with the SQLite app's.
const now = (): Date => new Date('2024-05-01T12:00:00.000Z')

/** A file holding every kind of row, written through tally's API; answers its path. */
async function populated (t: Test): Promise<string> {
  const dbPath = join(tempDir(t), 'app.db')
  const app = await build(t, { dbPath, now })
  const ok = async (method: 'POST' | 'PUT' | 'PATCH', url: string, payload?: unknown, headers?: Record<string, string>): Promise<any> => {
    const res = await call(app, { method, url, ...(payload !== undefined && { payload: payload as object }), ...(headers !== undefined && { headers }) })
    t.ok(res.status < 300, `${method} ${url}: ${res.status} ${JSON.stringify(res.body)}`)
    return res.body
  }
  for (const name of ['Ada', 'Bob', 'Cy']) await ok('POST', '/users', { email: `${name}@Example.com`, name })
  await ok('POST', '/users', { email: 'dee@example.com', name: 'Dee' }, { 'idempotency-key': 'new-user' })

  // The default ledger: the canonical adds (a negative one among them), a backdated add that
  // takes over the negative add's draw, a batch, payers whose names sort differently by UTF-8
  // bytes than by UTF-16 units, and spends.
  for (const add of canonicalAdds) await ok('POST', '/add', add)
  await ok('POST', '/add', { payer: 'DANNON', points: 100, timestamp: '2022-10-30T01:00:00+01:00' })
  await ok('POST', '/add/batch', {
    adds: [
      { payer: 'ÉCLAIR 🍰', points: 40, timestamp: '2022-11-03T00:00:00Z' },
      { payer: 'ＺＥＮ', points: 60, timestamp: '2022-11-03T00:00:00Z' },
      { payer: 'UNILEVER', points: -50, timestamp: '2022-11-04T00:00:00Z' }
    ]
  })
  await ok('POST', '/spend', { points: 5000 })
  await ok('POST', '/spend', { points: 120 }, { 'idempotency-key': 'spend-once' })
  await ok('POST', '/addTransaction', { payer: 'DANNON', points: 7, timestamp: '2022-11-05T00:00:00.5Z' }, { 'idempotency-key': 'add-once' })

  // Users' own ledgers.
  await ok('POST', '/users/1/points/add', { payer: 'ACME', points: 50, timestamp: '2023-01-01T00:00:00Z' })
  await ok('POST', '/users/1/points/add', { payer: 'ACME', points: -10, timestamp: '2023-01-02T00:00:00Z' })
  await ok('POST', '/users/1/points/spend', { points: 15 })
  await ok('POST', '/users/3/points/add/batch', { adds: [{ payer: 'P', points: 9, timestamp: '2023-02-01T00:00:00Z' }] })

  // The life of a point: an add that expires later, one already expired (an expiration), holds
  // pending, captured in part and voided, and a spend's reversal.
  await ok('POST', '/add', { payer: 'MILLER COORS', points: 500, timestamp: '2022-11-07T00:00:00Z', expires_at: '2030-01-01T00:00:00Z' })
  await ok('POST', '/add', { payer: 'DANNON', points: 30, timestamp: '2022-11-06T00:00:00Z', expires_at: '2022-12-01T00:00:00Z' })
  await ok('POST', '/holds', { points: 100 })
  const captured = await ok('POST', '/holds', { points: 50, expires_at: '2030-01-01T00:00:00Z' })
  await ok('POST', `/holds/${captured.id as number}/capture`, { points: 20 })
  const voided = await ok('POST', '/users/1/points/holds', { points: 5 }, { 'idempotency-key': 'hold-once' })
  await ok('POST', `/users/1/points/holds/${voided.id as number}/void`, {})
  await ok('POST', '/spends/1/reversals', { points: 100 })

  // Credits of every kind.
  await ok('POST', '/api/credits/1/add', { amount: 10 })
  await ok('POST', '/api/credits/1/deduct', { amount: 3 }, { 'idempotency-key': 'deduct-once' })
  await ok('POST', '/api/credits/2/add', { amount: 8 })
  await ok('PATCH', '/api/credits/2/reset')
  await ok('POST', '/api/credits/3/external-update', { credits: 7 })
  const run = await app.storage.write(app.credits.grantDaily('2024-05-01', 5, 'command'))
  t.equal(run.users_credited, 4)

  // Events firing every code for user 1, others for users with and without a record, profiles.
  await ok('PUT', '/users/2/alert-profile', { risk: 'high', overrides: { withdrawal_limit: '250.00', velocity_count: 4 } })
  await ok('PUT', '/users/3/alert-profile', { risk: 'low' }, { 'idempotency-key': 'profile-once' })
  const codes = new Set<number>()
  const events = [
    ['withdraw', '150.00'], ['withdraw', '10.00'], ['withdraw', '10'], ['deposit', '1.00'], ['deposit', '2.50'], ['deposit', '300.00']
  ]
  for (const [i, [type, amount]] of events.entries()) {
    for (const code of (await ok('POST', '/event', { type, amount, user_id: 1, time: 1000 + i })).alert_codes) codes.add(code)
  }
  t.strictSame([...codes].sort((a, b) => a - b), [30, 123, 300, 500, 1100], 'every alert code fired')
  await ok('POST', '/event', { type: 'withdraw', amount: '200.00', user_id: 2, t: 50 })
  await ok('POST', '/event', { type: 'deposit', amount: '0.01', user_id: 42, time: 7 }, { 'idempotency-key': 'event-once' })
  await app.close()
  return dbPath
}

/** A pool on a fresh, empty PostgreSQL schema, ended when t ends. */
async function target (t: Test): Promise<{ pool: pg.Pool, url: string, poolSize: number }> {
  const { url, poolSize } = await freshPostgres(t)
  const pool = createPool({ url, size: poolSize })
  t.teardown(() => pool.end())
  return { pool, url, poolSize }
}

function readOnly (t: Test, path: string): Db {
  const db = new Database(path, { readonly: true, fileMustExist: true })
  t.teardown(() => db.close())
  return db
}

/** Every row of every copied table in primary-key order (each table's key is its first one or two columns). */
async function pgRows (pool: pg.Pool): Promise<Record<string, unknown[]>> {
  const rows: Record<string, unknown[]> = {}
  for (const table of copiedTables) rows[table] = (await pool.query(`SELECT * FROM ${table} ORDER BY 1, 2`)).rows
  return rows
}
function sqliteRows (db: Db): Record<string, unknown[]> {
  return Object.fromEntries(copiedTables.map(table => [table, db.prepare(`SELECT * FROM ${table} ORDER BY 1, 2`).all()]))
}

const emptyRows = Object.fromEntries([...copiedTables, 'alert_states'].map(table => [table, 0]))

// What both apps are asked after the copy; pages are followed to their end.
const reads = [
  '/balance', '/transactions?limit=3', '/spends?limit=1', '/users?limit=2', '/users/1', '/users/4',
  '/users/1/points/balance', '/users/1/points/transactions', '/users/1/points/spends', '/users/3/points/balance',
  '/users/2/points/balance', '/api/credits/1', '/api/credits/2', '/api/credits/3/history', '/api/credits/1/history?limit=2',
  '/users/1/events?limit=4', '/users/42/events', '/users/2/events', '/alerts?limit=3', '/alerts?user_id=1',
  '/alerts?code=30', '/alerts?user_id=1&code=1100', '/alerts?user_id=2', '/users/2/alert-profile',
  '/users/3/alert-profile', '/users/1/alert-profile', '/holds?limit=2', '/holds?status=captured', '/holds/1',
  '/users/1/points/holds', '/expirations', '/balance/details', '/users/1/points/balance/details', '/spends/1/reversals',
  '/balance?at=2024-05-01T12:00:00Z', '/balance?at=2023-01-01T00:00:00Z'
]

async function answers (app: FastifyInstance, t: Test): Promise<Array<{ url: string, status: number, type: unknown, body: string }>> {
  const all = []
  for (const first of reads) {
    for (let url: string | undefined = first; url !== undefined;) {
      const res: { statusCode: number, headers: Record<string, unknown>, body: string } = await app.inject({ method: 'GET', url })
      all.push({ url, status: res.statusCode, type: res.headers['content-type'], body: res.body })
      const cursor: unknown = res.statusCode === 200 ? (JSON.parse(res.body) as { next_cursor?: unknown }).next_cursor : undefined
      url = typeof cursor === 'string' || typeof cursor === 'number' ? `${first}${first.includes('?') ? '&' : '?'}cursor=${cursor}` : undefined
    }
  }
  t.ok(all.length > reads.length, 'some pages were followed')
  return all
}

t.test('a file with every kind of row: copied whole, and tally on PostgreSQL answers as it did on the file', async t => {
  const dbPath = await populated(t)
  const { pool, url, poolSize } = await target(t)
  const db = readOnly(t, dbPath)
  const heard: string[] = []
  const summary = await copySqliteToPostgres(db, pool, { progress: step => heard.push(step) })

  const counts = Object.fromEntries(copiedTables.map(table => [table, db.prepare(`SELECT count(*) FROM ${table}`).pluck().get()]))
  const withEvents = db.prepare('SELECT count(DISTINCT user_id) FROM events').pluck().get()
  t.strictSame(summary, {
    rows: { ...counts, alert_states: withEvents },
    compared: {
      ledgers: db.prepare('SELECT count(*) FROM ledger_totals').pluck().get(),
      payers: db.prepare('SELECT count(*) FROM payer_balances').pluck().get(),
      users: 4
    },
    differences: [],
    differenceCount: 0,
    problems: [],
    committed: true
  })
  for (const [table, count] of Object.entries(counts)) t.ok(count as number > 0, `the file has ${table} rows`)
  t.equal(withEvents, 3)
  t.strictSame(heard.slice(0, 2), ['migrating the PostgreSQL database', 'copying point_transactions'])
  t.ok(heard.includes('checking: balances match their lots'), 'progress names the checks')
  t.strictSame(await pgRows(pool), sqliteRows(db), 'every row of every table, ids and all')
  t.strictSame((await pool.query('SELECT user_id FROM alert_states ORDER BY 1')).rows, [{ user_id: 1 }, { user_id: 2 }, { user_id: 42 }])
  t.equal((await pool.query('SELECT count(*) AS n FROM schemaversion WHERE version > 2')).rows[0].n, 0, "postgrator's record is PostgreSQL's own")
  db.close()

  // Two tallies, one on each engine, asked the same things.
  const onFile = await build(t, { dbPath, now })
  const onServer = await build(t, { env: { DATABASE_URL: url, PG_POOL_SIZE: String(poolSize) }, now })
  t.equal(onServer.storage.engine, 'postgres')
  const expected = await answers(onFile, t)
  t.strictSame(await answers(onServer, t), expected, 'every GET answers the same bytes')
  t.ok(expected.every(a => a.status === 200), 'and they are answers, not refusals')

  // A keyed request made before the copy replays its stored answer on the server too.
  const replay = { method: 'POST' as const, url: '/spend', payload: { points: 120 }, headers: { 'idempotency-key': 'spend-once' } }
  const [fileReplay, serverReplay] = [await onFile.inject(replay), await onServer.inject(replay)]
  t.equal(serverReplay.body, fileReplay.body)
  t.equal(serverReplay.headers['idempotency-replayed'], fileReplay.headers['idempotency-replayed'])

  // The next rows get the same ids on both: the sequences stand just past the copied ids.
  const writes = [
    { method: 'POST' as const, url: '/users', payload: { email: 'eve@example.com', name: 'Eve' } },
    { method: 'POST' as const, url: '/add', payload: { payer: 'NEW', points: 5, timestamp: '2024-01-01T00:00:00Z' } },
    { method: 'POST' as const, url: '/spend', payload: { points: 5 } },
    { method: 'POST' as const, url: '/event', payload: { type: 'deposit', amount: '5.00', user_id: 1, time: 2000 } },
    { method: 'POST' as const, url: '/api/credits/5/add', payload: { amount: 2 } }
  ]
  for (const write of writes) {
    const [a, b] = [await onFile.inject(write), await onServer.inject(write)]
    t.equal(b.statusCode, a.statusCode, `${write.url}: same status`)
    t.equal(b.body, a.body, `${write.url}: same answer`)
  }
  t.match(JSON.parse((await onServer.inject({ method: 'GET', url: '/users/5' })).body), { id: 5, email: 'eve@example.com' })
  t.strictSame(await answers(onServer, t), await answers(onFile, t), 'and the same history after them')
})

t.test('every sequence stands just past its ids; an empty file copies to an empty database', async t => {
  const dbPath = join(tempDir(t), 'empty.db')
  const file = openDatabase(dbPath)
  await migrate(file)
  file.exec("INSERT INTO daily_grant_runs (id, day, trigger, users_credited, ran_at) VALUES (41, '2024-01-01', 'command', 0, 'x')")
  file.close()
  const { pool } = await target(t)
  const summary = await copySqliteToPostgres(readOnly(t, dbPath), pool)
  t.strictSame(summary.rows, { ...emptyRows, daily_grant_runs: 1 })
  t.equal(summary.committed, true)
  const next = async (table: string): Promise<number> =>
    (await pool.query(`SELECT nextval(pg_get_serial_sequence('${table}', 'id')) AS id`)).rows[0].id
  t.equal(await next('daily_grant_runs'), 42, 'max + 1')
  t.equal(await next('users'), 1, 'an empty table starts at 1')
  t.equal(await next('point_adjustment_draws'), 1)
})

t.test('a target that already has rows is refused, naming the tables, and nothing changes', async t => {
  const dbPath = await populated(t)
  const { pool } = await target(t)
  const db = readOnly(t, dbPath)
  await copySqliteToPostgres(db, pool)
  const before = await pgRows(pool)
  await t.rejects(copySqliteToPostgres(db, pool), {
    message: `the PostgreSQL database already has rows (in ${copiedTables.join(', ')}, alert_states): db:copy copies into an empty database only`
  })
  t.strictSame(await pgRows(pool), before, 'unchanged')

  // One row anywhere is enough: here a table only PostgreSQL has.
  const { pool: other } = await target(t)
  await migratePostgres(other)
  await other.query('INSERT INTO alert_states (user_id) VALUES (9)')
  await t.rejects(copySqliteToPostgres(db, other), { message: /already has rows \(in alert_states\)/ })
  t.equal((await other.query('SELECT count(*) AS n FROM users')).rows[0].n, 0)
})

t.test('a file not at the latest schema version, or with a table db:copy does not know, is refused before the target is touched', async t => {
  const dir = tempDir(t)
  const { pool } = await target(t)
  const files = readdirSync(migrationsDir).sort()
  const latest = files.length

  const bare = join(dir, 'bare.db')
  openDatabase(bare).close()
  await t.rejects(copySqliteToPostgres(readOnly(t, bare), pool),
    { message: `DB_PATH is at schema version 0, not ${latest}: run \`npm run migrate\` on it first` })

  // Migrated with all but the last migration, as a file from an older tally is.
  const older = join(dir, 'older.db')
  const olderMigrations = join(dir, 'migrations')
  mkdirSync(olderMigrations)
  for (const name of files.slice(0, -1)) copyFileSync(join(migrationsDir, name), join(olderMigrations, name))
  const olderDb = openDatabase(older)
  await migrate(olderDb, olderMigrations)
  olderDb.close()
  await t.rejects(copySqliteToPostgres(readOnly(t, older), pool),
    { message: `DB_PATH is at schema version ${latest - 1}, not ${latest}: run \`npm run migrate\` on it first` })

  const extra = join(dir, 'extra.db')
  const extraDb = openDatabase(extra)
  await migrate(extraDb)
  extraDb.exec('CREATE TABLE notes (id INTEGER PRIMARY KEY); CREATE TABLE audit (x)')
  extraDb.close()
  await t.rejects(copySqliteToPostgres(readOnly(t, extra), pool), { message: 'DB_PATH has tables db:copy does not copy: audit, notes' })

  t.equal((await pool.query('SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = current_schema()')).rows[0].n, 0,
    'the target was not even migrated')
})

t.test('large tables travel in batches, whether many rows or a few large ones', async t => {
  const dbPath = join(tempDir(t), 'large.db')
  const file = openDatabase(dbPath)
  await migrate(file)
  // 12 001 events (three batches of rows) and two stored answers of 3 MiB (one batch each).
  file.exec(`WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 12001)
    INSERT INTO events (id, user_id, type, amount, time, created_at) SELECT i, 1 + i % 7, 'deposit', i, i, 'c' FROM n`)
  const body = JSON.stringify({ payer: 'x'.repeat(3 * 1024 * 1024) })
  file.prepare("INSERT INTO idempotency_keys VALUES (?, 'f', 200, ?, 'c')").run('a', body)
  file.prepare("INSERT INTO idempotency_keys VALUES (?, 'f', 200, ?, 'c')").run('b', body)
  file.close()
  const { pool } = await target(t)
  const summary = await copySqliteToPostgres(readOnly(t, dbPath), pool)
  t.equal(summary.committed, true)
  t.strictSame(summary.rows, { ...emptyRows, events: 12001, idempotency_keys: 2, alert_states: 7 })
  t.strictSame((await pool.query('SELECT count(*) AS n, sum(amount) AS total, max(id) AS last FROM events')).rows,
    [{ n: 12001, total: String(12001 * 12002 / 2), last: 12001 }])
  t.strictSame((await pool.query('SELECT key, length(body) AS length FROM idempotency_keys ORDER BY key')).rows,
    [{ key: 'a', length: body.length }, { key: 'b', length: body.length }])
})

t.test('a connection that breaks mid-copy fails the copy, not the process, and leaves the target empty', async t => {
  const dbPath = await populated(t)
  const { pool } = await target(t)
  const db = readOnly(t, dbPath)
  await t.rejects(copySqliteToPostgres(db, pool, {
    beforeVerify: async client => { (client as unknown as { connection: { stream: { destroy: () => void } } }).connection.stream.destroy() }
  }), /Connection terminated|not queryable/)
  t.equal(db.inTransaction, false, 'the file\'s read transaction is over')
  t.equal((await copySqliteToPostgres(db, pool)).committed, true, 'the next copy finds the target empty')
})

/** Runs a copy of `dbPath` whose target is broken by `sql` just before it is verified. */
async function tamperedCopy (t: Test, dbPath: string, sql: string): Promise<{ summary: CopySummary, pool: pg.Pool }> {
  const { pool } = await target(t)
  const summary = await copySqliteToPostgres(readOnly(t, dbPath), pool, { beforeVerify: async client => { await client.query(sql) } })
  return { summary, pool }
}

t.test('a copy that differs from the file is reported and rolled back, leaving the target empty', async t => {
  const dbPath = await populated(t)
  const db = readOnly(t, dbPath)
  const one = (sql: string): number => db.prepare(sql).pluck().get() as number
  const lot = one("SELECT max(transaction_id) FROM point_lots WHERE ledger_id = 0 AND payer = 'DANNON'")
  const dannon = one("SELECT balance FROM payer_balances WHERE ledger_id = 0 AND payer = 'DANNON'")
  const total = one('SELECT balance FROM ledger_totals WHERE ledger_id = 0')
  const credits = one('SELECT credits FROM users WHERE id = 3')
  const entries = one('SELECT count(*) FROM credit_entries')
  const keys = one('SELECT count(*) FROM idempotency_keys')
  // 7 more points in DANNON's newest lot and 1 more credit for user 3, each kept consistent
  // down to the totals, so that every invariant still holds: only the comparison can see them.
  const { summary, pool } = await tamperedCopy(t, dbPath, `
    UPDATE point_transactions SET points = points + 7 WHERE id = ${lot};
    UPDATE point_lots SET points = points + 7, remaining = remaining + 7 WHERE transaction_id = ${lot};
    UPDATE payer_balances SET balance = balance + 7 WHERE ledger_id = 0 AND payer = 'DANNON';
    UPDATE point_balance_history SET balance = balance + 7 WHERE ledger_id = 0 AND payer = 'DANNON'
      AND at = (SELECT max(at) FROM point_balance_history WHERE ledger_id = 0 AND payer = 'DANNON');
    UPDATE ledger_totals SET balance = balance + 7 WHERE ledger_id = 0;
    UPDATE users SET credits = credits + 1 WHERE id = 3;
    INSERT INTO credit_entries (user_id, kind, delta, balance_after, created_at) VALUES (3, 'add', 1, ${credits + 1}, 'x');
    DELETE FROM idempotency_keys WHERE key = 'new-user'`)
  t.strictSame(summary.problems, [], 'the invariants hold')
  t.strictSame(summary.differences, [
    `credit_entries: ${entries} rows in the file, ${entries + 1} in PostgreSQL`,
    `idempotency_keys: ${keys} rows in the file, ${keys - 1} in PostgreSQL`,
    `ledger 0 payer "DANNON" balance: ${dannon} in the file, ${dannon + 7} in PostgreSQL`,
    `ledger 0 total: ${total} in the file, ${total + 7} in PostgreSQL`,
    `user 3 credits: ${credits} in the file, ${credits + 1} in PostgreSQL`
  ])
  t.equal(summary.differenceCount, 5)
  t.equal(summary.committed, false)
  t.strictSame(await pgRows(pool), Object.fromEntries(copiedTables.map(table => [table, []])), 'the target is empty again')
  t.equal((await pool.query('SELECT count(*) AS n FROM alert_states')).rows[0].n, 0)
})

t.test('past 20 differences the summary counts the rest; rows on one side only are named', async t => {
  const dbPath = await populated(t)
  const payers = readOnly(t, dbPath).prepare('SELECT count(*) FROM payer_balances').pluck().get() as number
  // 25 payers with nothing, which no invariant minds, and user 1's payer row gone, which they do.
  const { summary } = await tamperedCopy(t, dbPath, `
    INSERT INTO payer_balances (ledger_id, payer, balance) SELECT 99, 'x' || g, 0 FROM generate_series(10, 34) AS g;
    DELETE FROM payer_balances WHERE ledger_id = 1`)
  t.equal(summary.differenceCount, 27)
  t.strictSame(summary.differences.slice(0, 4), [
    `payer_balances: ${payers} rows in the file, ${payers + 24} in PostgreSQL`,
    'ledger 1 payer "ACME" balance: 25 in the file, no row in PostgreSQL',
    'ledger 99 payer "x10" balance: no row in the file, 0 in PostgreSQL',
    'ledger 99 payer "x11" balance: no row in the file, 0 in PostgreSQL'
  ])
  t.equal(summary.differences.length, 20)
  t.strictSame(summary.problems.sort(), [
    'ledger 1 payer ACME: lots but no balance row',
    'ledger 1: total 25 but its payers hold 0'
  ])
  const text = formatSummary(summary, 'app.db', 'PostgreSQL at x')
  t.match(text, /^app\.db was NOT copied: PostgreSQL at x is left as it was\n/)
  t.match(text, /\n {2}ledger 99 payer "x27" balance: no row in the file, 0 in PostgreSQL\n {2}… and 7 more\n/)
  t.match(text, /\ninvariants \(db:check\): 2 problem\(s\)\n {2}ledger 1/)
})

t.test('a file that breaks an invariant is not copied', async t => {
  const dbPath = await populated(t)
  const file = openDatabase(dbPath)
  file.exec('UPDATE users SET credits = 99 WHERE id = 4')
  file.close()
  const { pool } = await target(t)
  const summary = await copySqliteToPostgres(readOnly(t, dbPath), pool)
  t.strictSame(summary.differences, [], 'the copy is faithful')
  t.strictSame(summary.problems, ['user 4: 99 credits but the history sums to 5 (last balance_after 5)'])
  t.equal(summary.committed, false)
  t.equal((await pool.query('SELECT count(*) AS n FROM users')).rows[0].n, 0)
})

t.test('compareOrdered walks both sides in bytewise key order', async t => {
  const { payers } = comparisons
  const rows = (...list: Array<[number, string, number]>) => list.map(([ledger, payer, balance]) => ({ ledger_id: ledger, payer, balance }))
  async function * pg (list: Array<Record<string, unknown>>) { yield * list }
  const found: string[] = []
  // U+FF3A sorts before U+1F370 in UTF-8, after it in UTF-16: the walk must use UTF-8's order.
  const count = await compareOrdered(
    rows([0, 'A', 1], [0, 'Ｚ', 2], [0, '🍰', 3], [1, 'A', 4], [2, 'B', 5]),
    pg(rows([0, '🍰', 4], [1, 'A', 4], [1, 'B', 1], [3, 'C', 6])),
    payers, d => found.push(d))
  t.equal(count, 5)
  t.strictSame(found, [
    'ledger 0 payer "A" balance: 1 in the file, no row in PostgreSQL',
    'ledger 0 payer "Ｚ" balance: 2 in the file, no row in PostgreSQL',
    'ledger 0 payer "🍰" balance: 3 in the file, 4 in PostgreSQL',
    'ledger 1 payer "B" balance: no row in the file, 1 in PostgreSQL',
    'ledger 2 payer "B" balance: 5 in the file, no row in PostgreSQL',
    'ledger 3 payer "C" balance: no row in the file, 6 in PostgreSQL'
  ])
  found.length = 0
  t.equal(await compareOrdered(rows([0, 'A', 1]), pg([]), payers, d => found.push(d)), 1)
  t.strictSame(found, ['ledger 0 payer "A" balance: 1 in the file, no row in PostgreSQL'])
  t.equal(await compareOrdered([], pg([]), payers, d => found.push(d)), 0)
})

t.test('the summary an operator reads', async t => {
  const summary: CopySummary = {
    rows: { point_transactions: 1234567, users: 3, alert_states: 2 },
    compared: { ledgers: 4, payers: 7, users: 3 },
    differences: [],
    differenceCount: 0,
    problems: [],
    committed: true
  }
  t.equal(formatSummary(summary, 'data/app.db', 'PostgreSQL at postgres://***@db/tally'), [
    'copied data/app.db into PostgreSQL at postgres://***@db/tally:',
    '  point_transactions    1234567',
    '  users                       3',
    '  alert_states                2 (one per user with events)',
    'compared with the file: 7 payer balances, 4 ledger totals, 3 user credit balances: no difference',
    'invariants (db:check): every one holds'
  ].join('\n'))
})

t.test('npm run db:copy: copies DB_PATH into --to, read-only, and says what it did', async t => {
  const dbPath = await populated(t)
  const hash = (): string => createHash('sha256').update(readFileSync(dbPath)).digest('hex')
  const before = hash()
  const { url, pool } = await target(t)
  // DATABASE_URL is not read: a broken one changes nothing.
  const run = await runCommand('db-copy', { DB_PATH: dbPath, DATABASE_URL: 'nonsense' }, ['--to', url])
  t.equal(run.code, 0, run.stderr)
  t.match(run.stdout, /^copied .*app\.db into PostgreSQL at postgres:\/\/\*\*\*@.*:\n {2}point_transactions +\d+\n/)
  t.match(run.stdout, /compared with the file: 7 payer balances, 3 ledger totals, 4 user credit balances: no difference\ninvariants \(db:check\): every one holds\n$/)
  t.match(run.stderr, /^copying .* into PostgreSQL at .*\n {2}migrating the PostgreSQL database…\n {2}copying point_transactions…\n/)
  t.equal(hash(), before, 'the file is unchanged')
  t.equal((await pool.query('SELECT count(*) AS n FROM users')).rows[0].n, 4)
})

t.test('npm run db:copy: a file that fails its checks is not copied, and the summary says why', async t => {
  const dbPath = await populated(t)
  const file = openDatabase(dbPath)
  file.exec('UPDATE users SET credits = 99 WHERE id = 4')
  file.close()
  const { url, pool } = await target(t)
  const run = await runCommand('db-copy', { DB_PATH: dbPath }, ['--to', url])
  t.equal(run.code, 1)
  t.equal(run.stdout, '')
  t.match(run.stderr, /tally: Error: .*app\.db was NOT copied: PostgreSQL at .* is left as it was\n/)
  t.match(run.stderr, /invariants \(db:check\): 1 problem\(s\)\n {2}user 4: 99 credits but the history sums to 5 \(last balance_after 5\)\n$/)
  t.equal((await pool.query('SELECT count(*) AS n FROM users')).rows[0].n, 0)
})

t.test('npm run db:copy: a missing --to, a bad file or an unreachable server is one line, and no password is shown', async t => {
  const dir = tempDir(t)
  const usage = 'tally: Error: usage: npm run db:copy -- --to postgres://USER@HOST:PORT/DATABASE (copies the file at DB_PATH into that empty database)\n'
  // Neither echoes the URL: the first is not PostgreSQL's, the second comes with an unknown option.
  for (const args of [['--to', 'mysql://u:hunter2@h/db'], ['--to=postgres://u:hunter2@h/db', '--force']]) {
    const run = await runCommand('db-copy', { DB_PATH: join(dir, 'x.db') }, args)
    t.equal(run.code, 1)
    t.equal(run.stderr, usage, args.join(' '))
    t.equal(run.stdout, '')
  }
  const missing = await runCommand('db-copy', { DB_PATH: join(dir, 'nope.db') }, ['--to', 'postgres://u:hunter2@127.0.0.1:1/db'])
  t.equal(missing.stderr, `tally: cannot open DB_PATH ${JSON.stringify(join(dir, 'nope.db'))}: SQLITE_CANTOPEN: unable to open database file\n`)
  writeFileSync(join(dir, 'text.db'), 'not a database '.repeat(100))
  const text = await runCommand('db-copy', { DB_PATH: join(dir, 'text.db') }, ['--to', 'postgres://u:hunter2@127.0.0.1:1/db'])
  t.match(text.stderr, /^tally: cannot open DB_PATH .*: SQLITE_NOTADB: file is not a database\n$/)

  const dbPath = join(dir, 'app.db')
  const db = openDatabase(dbPath)
  await migrate(db)
  db.close()
  const unreachable = await runCommand('db-copy', { DB_PATH: dbPath }, ['--to', 'postgres://u:hunter2@127.0.0.1:1/db'])
  t.equal(unreachable.code, 1)
  t.match(unreachable.stderr, /^tally: .*cannot reach PostgreSQL at 127\.0\.0\.1:1\/db: .*ECONNREFUSED.*\n$/)
  t.notMatch(unreachable.stdout + unreachable.stderr, /hunter2/)
})
