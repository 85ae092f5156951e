import Fastify, { type FastifyError } from 'fastify'
import pg from 'pg'
import t from 'tap'
import { InsufficientPoints, toErrorBody } from '../../src/errors.js'
import { LedgerChangedDuringRead } from '../../src/points/postgres.js'
import errors from '../../src/errors.js'
import { pgTrouble } from '../../src/storage/postgres/errors.js'
import { createPool } from '../../src/storage/postgres/pool.js'
import { PgTransactions } from '../../src/storage/postgres/transaction.js'
import { DatabaseTrouble } from '../../src/storage/trouble.js'
import { freshPostgres, usingPGlite } from '../postgres.js'

// PostgreSQL's trouble, answered as SQLite's is: 503 STORAGE_UNAVAILABLE when the server cannot
// serve, 503 DATABASE_BUSY when it is held up; any other database error stays a 500.

const unavailable = {
  statusCode: 503,
  error: 'Service Unavailable',
  message: 'The database cannot be written or read right now (disk full or I/O error); nothing was changed, retry later',
  code: 'STORAGE_UNAVAILABLE'
}
const busy = {
  statusCode: 503,
  error: 'Service Unavailable',
  message: 'The database is busy: another process held the write lock for 5 s; nothing was changed, retry',
  code: 'DATABASE_BUSY'
}
const internal = { statusCode: 500, error: 'Internal Server Error', message: 'Internal Server Error: the request was not completed', code: 'INTERNAL_ERROR' }

/** An error as pg makes it from the server's ErrorResponse. */
function serverError (code: string | undefined, message = 'from the server'): pg.DatabaseError {
  const err = new pg.DatabaseError(message, 0, 'error')
  err.code = code
  err.severity = 'ERROR'
  return err
}
const socketError = (code: string) => Object.assign(new Error(`connect ${code} 127.0.0.1:5432`), { code, errno: -1, syscall: 'connect' })
const body = (err: unknown) => toErrorBody(err as FastifyError)

t.test('errors of the server and the connection, and the 503 each gets', async t => {
  const cases: Array<[string, unknown, object]> = [
    ['08006 connection_failure', serverError('08006'), unavailable],
    ['08P01 protocol_violation', serverError('08P01'), unavailable],
    ['53100 disk_full', serverError('53100', 'could not extend file: No space left on device'), unavailable],
    ['53200 out_of_memory', serverError('53200'), unavailable],
    ['53300 too_many_connections', serverError('53300'), unavailable],
    ['57P01 admin_shutdown', serverError('57P01', 'terminating connection due to administrator command'), unavailable],
    ['57P02 crash_shutdown', serverError('57P02'), unavailable],
    ['57P03 cannot_connect_now', serverError('57P03', 'the database system is starting up'), unavailable],
    ['58030 io_error', serverError('58030'), unavailable],
    ['28P01 invalid_password', serverError('28P01'), unavailable],
    ['3D000 invalid_catalog_name', serverError('3D000', 'database "tally" does not exist'), unavailable],
    ['ECONNREFUSED', socketError('ECONNREFUSED'), unavailable],
    ['ECONNRESET', socketError('ECONNRESET'), unavailable],
    ['ETIMEDOUT', socketError('ETIMEDOUT'), unavailable],
    ['EPIPE', socketError('EPIPE'), unavailable],
    ['ENOTFOUND', socketError('ENOTFOUND'), unavailable],
    ['terminated', new Error('Connection terminated unexpectedly'), unavailable],
    ['terminated on connect timeout', new Error('Connection terminated due to connection timeout'), unavailable],
    ['not queryable', new Error('Client has encountered a connection error and is not queryable'), unavailable],
    ['55P03 lock_not_available', serverError('55P03', 'could not obtain lock on row in relation "ledger_totals"'), busy],
    ['57014 query_canceled', serverError('57014', 'canceling statement due to statement timeout'), busy],
    ['40001 left after the retries', serverError('40001'), busy],
    ['40P01 left after the retries', serverError('40P01'), busy],
    ['a full pool', new Error('timeout exceeded when trying to connect'), busy],
    ['23505 unique_violation', serverError('23505'), internal],
    ['57P04 database_dropped is not one of them', serverError('57P04'), internal],
    ['a server error with no code', serverError(undefined), internal],
    ['a bug', new TypeError('x is undefined'), internal],
    ['an error object that is no Error', { code: 'ECONNREFUSED', message: 'Connection terminated' }, internal]
  ]
  for (const [name, err, expected] of cases) t.strictSame(body(err), expected, name)
  t.equal(pgTrouble('a string'), undefined)
})

t.test('tally\'s own errors and SQLite\'s are answered as before', async t => {
  t.strictSame(body(new InsufficientPoints(5, 3)), {
    statusCode: 400, error: 'Bad Request', message: 'Cannot spend 5 points: the balance is 3', code: 'INSUFFICIENT_POINTS'
  })
  t.strictSame(body(Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' })), unavailable)
  t.strictSame(body(Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' })), busy)
  t.strictSame(body(new LedgerChangedDuringRead()), busy, 'a dry run that kept seeing the ledger change, past the retries')
})

t.test('real failures, as pg reports them', async t => {
  const { url, poolSize } = await freshPostgres(t)
  const pool = createPool({ url, size: poolSize })
  t.teardown(() => pool.end())
  const tx = new PgTransactions(pool, 'read_committed')

  const nowhere = createPool({ url: 'postgres://postgres@127.0.0.1:1/tally', size: 1 })
  t.teardown(() => nowhere.end())
  t.strictSame(body(await nowhere.query('SELECT 1').catch(e => e)), unavailable, 'no server')

  let client: pg.PoolClient | undefined
  pool.once('acquire', c => { client = c })
  const broken = await tx.run(async q => {
    client!.connection.stream.destroy()
    await q.query('SELECT 1')
  }).catch(e => e)
  t.strictSame(body(broken), unavailable, `a connection lost mid-transaction (${broken.message})`)

  // PGlite keeps no timers (a statement timeout never fires) and serves one session (nobody
  // else can hold a lock).
  if (!usingPGlite) {
    const timeout = await tx.run(async q => {
      await q.query("SET LOCAL statement_timeout = '20ms'")
      await q.query('SELECT pg_sleep(1)')
    }).catch(e => e)
    t.equal(timeout.code, '57014')
    t.strictSame(body(timeout), busy, 'a statement timeout')

    // Another transaction holds the row; NOWAIT (or a lock_timeout) gives up at once.
    await pool.query('CREATE TABLE held (id int PRIMARY KEY); INSERT INTO held VALUES (1)')
    const holder = await pool.connect()
    await holder.query('BEGIN; SELECT * FROM held FOR UPDATE')
    const locked = await tx.run(async q => await q.query('SELECT * FROM held FOR UPDATE NOWAIT')).catch(e => e)
    await holder.query('ROLLBACK')
    holder.release()
    t.equal(locked.code, '55P03')
    t.strictSame(body(locked), busy, 'a lock not available')

    const full = createPool({ url, size: 1, connectTimeoutMs: 50 })
    t.teardown(() => full.end())
    const only = await full.connect()
    t.strictSame(body(await full.query('SELECT 1').catch(e => e)), busy, 'a pool whose every connection stayed busy')
    only.release()
  }
})

t.test('a PostgreSQL 503 is logged once when it starts, as SQLite\'s are, not per request', async t => {
  const lines: Array<{ msg: string, err?: { message: string } }> = []
  const app = Fastify({ logger: false })
  const trouble = new DatabaseTrouble({
    error: (obj, msg) => { lines.push({ ...obj, msg }) },
    info: (obj, msg) => { lines.push({ ...obj, msg }) }
  })
  app.decorate('dbTrouble', trouble)
  await app.register(errors)
  app.get('/down', async () => { throw serverError('57P01', 'terminating connection due to administrator command') })
  t.teardown(() => app.close())
  for (let i = 0; i < 3; i++) {
    const res = await app.inject('/down')
    t.equal(res.statusCode, 503)
    t.strictSame(res.json(), unavailable)
  }
  t.equal(lines.length, 1)
  t.equal(lines[0]!.msg, 'database trouble: requests are answered 503 STORAGE_UNAVAILABLE until it clears')
  t.equal(lines[0]!.err?.message, 'terminating connection due to administrator command', 'the cause is in the log, not the body')
})
