import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { buildApp } from '../src/app.js'
import { ConfigError, loadConfig } from '../src/config.js'
import { checkInvariants } from '../src/storage/sqlite/check.js'
import { migrate } from '../src/storage/sqlite/migrate.js'
import { toErrorBody } from '../src/errors.js'
import { openDatabase } from '../src/storage/sqlite/open.js'
import { build, canonicalAdds, call, get, post, snapshot, tempDir } from './helper.js'

t.test('GET /health answers after a database round trip', async t => {
  const app = await build(t)
  const res = await get(app, '/health')
  t.equal(res.status, 200)
  t.strictSame(res.body, { status: 'ok' })
})

t.test('GET /live answers without touching the database', async t => {
  const app = await build(t)
  app.db.close()
  const res = await get(app, '/live')
  t.equal(res.status, 200)
  t.strictSame(res.body, { status: 'live' })
})

t.test('unknown routes are 404 with the error shape', async t => {
  const app = await build(t)
  const res = await get(app, '/nope?x=1')
  t.equal(res.status, 404)
  t.strictSame(res.body, { statusCode: 404, error: 'Not Found', message: 'Route GET /nope not found', code: 'ROUTE_NOT_FOUND' })
})

t.test('a malformed URL is a 400 with the error shape', async t => {
  const app = await build(t)
  const res = await get(app, '/%E0%A4%A')
  t.equal(res.status, 400)
  t.strictSame(res.body, { statusCode: 400, error: 'Bad Request', message: "'/%E0%A4%A' is not a valid url component", code: 'BAD_URL' })
})

t.test('error codes: tally\'s own pass through, unknown framework ones are generic', async t => {
  const fastifyError = (code: string, statusCode: number) => Object.assign(new Error('m'), { code, statusCode, name: 'FastifyError' })
  t.equal(toErrorBody(fastifyError('FST_ERR_SOMETHING_NEW', 400)).code, 'BAD_REQUEST')
  t.equal(toErrorBody(fastifyError('INSUFFICIENT_POINTS', 400)).code, 'INSUFFICIENT_POINTS')
  t.equal(toErrorBody(fastifyError('FST_ERR_CTP_INVALID_CONTENT_LENGTH', 400)).code, 'INVALID_CONTENT_LENGTH')
  t.equal(toErrorBody(fastifyError('ANYTHING', 302)).code, 'INTERNAL_ERROR', 'a non-error status is a bug')
  t.strictSame(toErrorBody(Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY', name: 'SqliteError' }) as never),
    { statusCode: 503, error: 'Service Unavailable', message: 'The database is busy: another process held the write lock for 5 s; nothing was changed, retry', code: 'DATABASE_BUSY' })
  for (const code of ['SQLITE_FULL', 'SQLITE_IOERR_WRITE', 'SQLITE_IOERR', 'SQLITE_NOMEM', 'SQLITE_READONLY_DBMOVED', 'SQLITE_CORRUPT']) {
    t.equal(toErrorBody(Object.assign(new Error('x'), { code, name: 'SqliteError' }) as never).code, 'STORAGE_UNAVAILABLE', code)
  }
  t.equal(toErrorBody(Object.assign(new Error('x'), { code: 'SQLITE_CONSTRAINT_CHECK', name: 'SqliteError' }) as never).code, 'INTERNAL_ERROR', 'a broken CHECK is a bug')
})

t.test('the docs page lists every route with its contract', async t => {
  const app = await build(t)
  const page = await app.inject('/docs/')
  t.equal(page.statusCode, 200)
  t.match(page.headers['content-type'], /text\/html/)
  const spec = (await get(app, '/docs/json')).body
  t.equal(spec.openapi, '3.0.3')
  const routes = Object.entries(spec.paths as Record<string, Record<string, any>>)
    .flatMap(([path, methods]) => Object.keys(methods).map(method => `${method.toUpperCase()} ${path}`))
  t.strictSame(routes.sort(), [
    'DELETE /flushDB',
    'GET /alerts',
    'GET /api/credits/{userId}', 'GET /api/credits/{userId}/history',
    'GET /balance', 'GET /health', 'GET /live', 'GET /spends', 'GET /transactions',
    'GET /users', 'GET /users/{userId}', 'GET /users/{userId}/alert-profile', 'GET /users/{userId}/events',
    'GET /users/{userId}/points/balance', 'GET /users/{userId}/points/spends', 'GET /users/{userId}/points/transactions',
    'PATCH /api/credits/{userId}/reset',
    'POST /add', 'POST /add/batch', 'POST /addTransaction',
    'POST /api/credits/{userId}/add', 'POST /api/credits/{userId}/deduct', 'POST /api/credits/{userId}/external-update',
    'POST /event', 'POST /flushDB', 'POST /spend', 'POST /users',
    'POST /users/{userId}/points/add', 'POST /users/{userId}/points/add/batch', 'POST /users/{userId}/points/spend',
    'PUT /users/{userId}/alert-profile'
  ])
  for (const [path, methods] of Object.entries(spec.paths as Record<string, Record<string, any>>)) {
    for (const [method, op] of Object.entries(methods)) {
      t.ok(op.summary, `${method} ${path} has a summary`)
      t.ok(op.description, `${method} ${path} describes its rule`)
      t.ok(op.tags?.length, `${method} ${path} has tags`)
      t.ok(op.responses['200'] ?? op.responses['201'], `${method} ${path} documents its success`)
      t.ok(op.responses['500'], `${method} ${path} documents its 500`)
      t.match(op.responses['503']?.description, /SHUTTING_DOWN/, `${method} ${path} documents its 503`)
    }
  }
  t.ok(spec.paths['/add'].post.responses['400'].description.includes('INSUFFICIENT_PAYER_POINTS'), 'error codes are listed')
  t.ok(spec.paths['/add'].post.responses['415'], 'JSON routes document 415')
})

t.test('/flushDB exists only with ALLOW_FLUSH=true', async t => {
  const guarded = await build(t, { env: { ALLOW_FLUSH: 'false' } })
  await post(guarded, '/add', canonicalAdds[0])
  const before = await snapshot(guarded)
  for (const method of ['POST', 'DELETE'] as const) {
    const res = await call(guarded, { method, url: '/flushDB' })
    t.equal(res.status, 404, `${method} is not found`)
    t.equal(res.body.code, 'ROUTE_NOT_FOUND')
  }
  t.strictSame(await snapshot(guarded), before, 'nothing flushed')
  t.notOk((await get(guarded, '/docs/json')).body.paths['/flushDB'], 'and it is not documented')

  const app = await build(t)
  for (const method of ['POST', 'DELETE'] as const) {
    for (const add of canonicalAdds) await post(app, '/add', add)
    await post(app, '/spend', { points: 10 })
    const res = await call(app, { method, url: '/flushDB' })
    t.equal(res.status, 200)
    t.strictSame(res.body, { flushed: true })
    t.equal((await app.inject('/balance')).body, '{}', `${method}: empty`)
    t.strictSame((await post(app, '/add', canonicalAdds[0])).body.id, 1, `${method}: ids start again at 1`)
    await call(app, { method, url: '/flushDB' })
  }
  const fresh = await build(t)
  // The migration record is kept; only the times it was applied differ between the two files.
  const withoutRunAt = (state: Record<string, unknown[]>) => ({
    ...state,
    schemaversion: state.schemaversion!.map(row => ({ ...(row as object), run_at: undefined }))
  })
  t.strictSame(withoutRunAt(await snapshot(app)), withoutRunAt(await snapshot(fresh)), 'the freshly migrated state')
})

t.test('data survives closing and reopening the file', async t => {
  const dbPath = join(tempDir(t), 'nested', 'dir', 'app.db')
  // The logger built from LOG_LEVEL, as server.ts uses it.
  const first = buildApp(loadConfig({ DB_PATH: dbPath, LOG_LEVEL: 'silent' }))
  await first.ready()
  for (const add of canonicalAdds) await post(first, '/add', add)
  await post(first, '/spend', { points: 5000 })
  await first.close()

  const second = await build(t, { dbPath })
  t.strictSame((await get(second, '/balance')).body, { DANNON: 1000, 'MILLER COORS': 5300, UNILEVER: 0 })
  t.equal((await get(second, '/spends')).body.items.length, 1)
  t.equal((await post(second, '/add', canonicalAdds[0])).body.id, 6, 'ids continue')
})

t.test('migrations are recorded and applied once', async t => {
  const db = openDatabase(join(tempDir(t), 'm.db'))
  t.teardown(() => db.close())
  const first = await migrate(db)
  t.ok(first.applied.includes('1.do.points'))
  t.equal(first.version, first.applied.length)
  const again = await migrate(db)
  t.strictSame(again.applied, [], 'nothing to apply the second time')
  t.equal(db.pragma('journal_mode', { simple: true }), 'wal')
  t.equal(db.pragma('foreign_keys', { simple: true }), 1)
  t.equal(db.pragma('busy_timeout', { simple: true }), 5000)
})

t.test('migration 006 back-fills each ledger\'s total from its payers\' balances', async t => {
  const dbPath = join(tempDir(t), 'app.db')
  const app = await build(t, { dbPath })
  for (const add of canonicalAdds) await post(app, '/add', add)
  await post(app, '/users', { email: 'ada@example.com', name: 'Ada' })
  await post(app, '/users/1/points/add', canonicalAdds[0])
  await app.close()
  // The file as it was before 006: no totals.
  const db = openDatabase(dbPath)
  t.teardown(() => db.close())
  db.exec('DROP TABLE ledger_totals')
  db.prepare('DELETE FROM schemaversion WHERE version = 6').run()
  t.strictSame((await migrate(db)).applied, ['6.do.ledger-totals'])
  t.strictSame(db.prepare('SELECT ledger_id, balance FROM ledger_totals ORDER BY ledger_id').all(),
    [{ ledger_id: 0, balance: 11300 }, { ledger_id: 1, balance: 300 }])
  t.strictSame(checkInvariants(db), [])
})

t.test('a migration that fails halfway leaves the file as it was', async t => {
  const dir = tempDir(t)
  const migrations = join(dir, 'migrations')
  mkdirSync(migrations)
  writeFileSync(join(migrations, '001.do.a.sql'), 'CREATE TABLE a (x INTEGER);\n')
  const db = openDatabase(join(dir, 'm.db'))
  t.teardown(() => db.close())
  t.strictSame((await migrate(db, migrations)).applied, ['1.do.a'])
  // 002 is sound; 003 creates a table, then fails on its second statement.
  writeFileSync(join(migrations, '002.do.b.sql'), 'CREATE TABLE b (x INTEGER);\nINSERT INTO a VALUES (2);\n')
  writeFileSync(join(migrations, '003.do.c.sql'), 'CREATE TABLE c (x INTEGER);\nINSERT INTO no_such_table VALUES (3);\n')
  const schema = () => db.prepare('SELECT type, name, sql FROM sqlite_schema ORDER BY name').all()
  const before = { schema: schema(), versions: db.prepare('SELECT * FROM schemaversion').all(), a: db.prepare('SELECT * FROM a').all() }
  await t.rejects(migrate(db, migrations), /no such table: no_such_table/)
  t.equal(db.inTransaction, false, 'the transaction is closed')
  const after = { schema: schema(), versions: db.prepare('SELECT * FROM schemaversion').all(), a: db.prepare('SELECT * FROM a').all() }
  t.strictSame(after, before, 'neither 002 nor the first half of 003 was kept')
})

t.test('an edited migration stops start-up and changes nothing', async t => {
  const dbPath = join(tempDir(t), 'app.db')
  const db = openDatabase(dbPath)
  await migrate(db)
  // An edited migration: postgrator's checksum no longer matches.
  db.prepare("UPDATE schemaversion SET md5 = 'edited' WHERE version = 1").run()
  const before = db.prepare('SELECT * FROM schemaversion').all()
  db.close()
  const app = buildApp(loadConfig({ DB_PATH: dbPath }), { logger: false })
  await t.rejects(async () => { await app.ready() }, /MD5 checksum failed/)
  const after = openDatabase(dbPath)
  t.strictSame(after.prepare('SELECT * FROM schemaversion').all(), before)
  after.close()
})

t.test('a 5xx never carries internals', async t => {
  const app = buildApp(loadConfig({ DB_PATH: join(tempDir(t), 'app.db') }), { logger: false })
  app.get('/boom', async () => { throw new Error('SELECT secret FROM internals') })
  t.teardown(() => app.close())
  await app.ready()
  const res = await get(app, '/boom')
  t.equal(res.status, 500)
  t.strictSame(res.body, {
    statusCode: 500,
    error: 'Internal Server Error',
    message: 'Internal Server Error: the request was not completed',
    code: 'INTERNAL_ERROR'
  })
})

t.test('configuration', async t => {
  t.strictSame(loadConfig({}), {
    port: 8000,
    host: '127.0.0.1',
    dbPath: 'data/app.db',
    logLevel: 'info',
    allowFlush: false,
    dailyCredits: { amount: 5, enabled: true },
    eventTimeUnit: 's',
    apiToken: undefined,
    dbSynchronous: 'normal',
    idempotencyTtlHours: 24,
    logPretty: false,
    databaseUrl: undefined,
    pgPoolSize: 10,
    pgIsolation: 'read_committed'
  }, 'defaults')
  t.strictSame(loadConfig({
    PORT: '0',
    HOST: '0.0.0.0',
    DB_PATH: '/tmp/x.db',
    LOG_LEVEL: 'silent',
    ALLOW_FLUSH: 'true',
    PATH: '/bin',
    DAILY_CREDITS_AMOUNT: '7',
    DAILY_CREDITS_ENABLED: 'false',
    EVENT_TIME_UNIT: 'ms',
    API_TOKEN: 'a-token-of-20-chars!',
    DB_SYNCHRONOUS: 'full',
    IDEMPOTENCY_TTL_HOURS: '48',
    LOG_PRETTY: 'true',
    DATABASE_URL: 'postgres://tally:s3cret@db.example:5433/tally?sslmode=require',
    PG_POOL_SIZE: '25',
    PG_ISOLATION: 'serializable'
  }), {
    port: 0,
    host: '0.0.0.0',
    dbPath: '/tmp/x.db',
    logLevel: 'silent',
    allowFlush: true,
    dailyCredits: { amount: 7, enabled: false },
    eventTimeUnit: 'ms',
    apiToken: 'a-token-of-20-chars!',
    dbSynchronous: 'full',
    idempotencyTtlHours: 48,
    logPretty: true,
    databaseUrl: 'postgres://tally:s3cret@db.example:5433/tally?sslmode=require',
    pgPoolSize: 25,
    pgIsolation: 'serializable'
  })
  t.equal(loadConfig({ DATABASE_URL: 'postgresql:///tally' }).databaseUrl, 'postgresql:///tally', 'postgresql://, and no host: the local socket')
  t.equal(loadConfig({ DATABASE_URL: '' }).databaseUrl, undefined, 'empty: SQLite')
  t.equal(loadConfig({ PORT: '' }).port, 8000, 'an empty variable means the default')
  const bad: Array<[string, string, string]> = [
    ['PORT', 'abc', 'PORT must be an integer from 0 to 65535 (got "abc")'],
    ['PORT', '70000', 'PORT must be an integer from 0 to 65535 (got "70000")'],
    ['PORT', '80.5', 'PORT must be an integer from 0 to 65535 (got "80.5")'],
    ['LOG_LEVEL', 'loud', 'LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent (got "loud")'],
    ['ALLOW_FLUSH', 'yes', 'ALLOW_FLUSH must be true or false (got "yes")'],
    ['DAILY_CREDITS_AMOUNT', '0', 'DAILY_CREDITS_AMOUNT must be an integer from 1 to 1000000000 (got "0")'],
    ['EVENT_TIME_UNIT', 'h', 'EVENT_TIME_UNIT must be s or ms (got "h")'],
    // A secret is described, never echoed: a mistyped token ends up in logs.
    ['API_TOKEN', 'short', 'API_TOKEN must be unset, or a token of 16 to 1024 visible ASCII characters (got 5 characters; the value is not shown)'],
    ['API_TOKEN', 'sixteen chars or more but spaces', 'API_TOKEN must be unset, or a token of 16 to 1024 visible ASCII characters (got 32 characters, not all of them visible ASCII; the value is not shown)'],
    ['DB_SYNCHRONOUS', 'off', 'DB_SYNCHRONOUS must be normal or full (got "off")'],
    ['IDEMPOTENCY_TTL_HOURS', '0', 'IDEMPOTENCY_TTL_HOURS must be an integer from 1 to 8760 (got "0")'],
    // A database URL is shown with what may be its password masked: user info, password=.
    ['DATABASE_URL', 'mysql://tally:s3cret@db/tally', 'DATABASE_URL must be unset, or a postgres:// or postgresql:// URL (got "mysql://***@db/tally")'],
    ['DATABASE_URL', 'db.example/tally', 'DATABASE_URL must be unset, or a postgres:// or postgresql:// URL (got "db.example/tally")'],
    ['DATABASE_URL', 'postgres://tally:s3cret@db:99999/tally', 'DATABASE_URL must be unset, or a postgres:// or postgresql:// URL (got "postgres://***@db:99999/tally")'],
    ['DATABASE_URL', 'postgres://tally:s3#cret@w@db/tally', 'DATABASE_URL must be unset, or a postgres:// or postgresql:// URL (got "postgres://***@db/tally")'],
    ['DATABASE_URL', 'postgres://db:99999/tally?password=s3cret&x=y', 'DATABASE_URL must be unset, or a postgres:// or postgresql:// URL (got "postgres://db:99999/tally?password=***&x=y")'],
    ['DATABASE_URL', 'postgres://[db/tally', 'DATABASE_URL must be unset, or a postgres:// or postgresql:// URL (got "postgres://[db/tally")'],
    ['PG_POOL_SIZE', '0', 'PG_POOL_SIZE must be an integer from 1 to 1000 (got "0")'],
    ['PG_POOL_SIZE', '1001', 'PG_POOL_SIZE must be an integer from 1 to 1000 (got "1001")'],
    ['PG_POOL_SIZE', 'ten', 'PG_POOL_SIZE must be an integer from 1 to 1000 (got "ten")'],
    ['PG_ISOLATION', 'repeatable_read', 'PG_ISOLATION must be read_committed or serializable (got "repeatable_read")']
  ]
  for (const [name, value, message] of bad) {
    t.throws(() => loadConfig({ [name]: value }), new ConfigError(message), `${name}=${value}`)
  }
})
