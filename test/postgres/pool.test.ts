import pg from 'pg'
import t from 'tap'
import { connectOrExplain, createPool, DatabaseUnreachable } from '../../src/storage/postgres/pool.js'
import { freshPostgres, usingPGlite } from '../postgres.js'

async function freshPool (t: Parameters<typeof freshPostgres>[0]) {
  const { url, poolSize } = await freshPostgres(t)
  const pool = createPool({ url, size: poolSize })
  t.teardown(() => pool.end())
  return { pool, url }
}

t.test('BIGINTs come back as numbers, int4 as numbers, numeric as strings', async t => {
  const { pool } = await freshPool(t)
  const { rows } = await pool.query(`SELECT 9007199254740991::bigint AS max, -9007199254740991::bigint AS min, 0::bigint AS zero,
    NULL::bigint AS nothing, 42::int4 AS int4, 1.50::numeric AS numeric, sum(x) AS sum, count(*) AS count,
    ARRAY[1, NULL, 3]::bigint[] AS list, ARRAY[[1, 2], [3, 4]]::bigint[] AS grid
    FROM (VALUES (1::bigint), (2::bigint)) AS v (x)`)
  t.strictSame(rows, [{
    max: 9007199254740991,
    min: -9007199254740991,
    zero: 0,
    nothing: null,
    int4: 42,
    numeric: '1.50',
    sum: '3', // sum() of BIGINTs is numeric: cast it (::bigint) where a number is wanted
    count: 2,
    list: [1, null, 3],
    grid: [[1, 2], [3, 4]]
  }])
})

t.test('a BIGINT past 2^53 - 1, either sign, fails the query instead of coming back rounded', async t => {
  const { pool } = await freshPool(t)
  for (const value of ['9007199254740992', '-9007199254740992', '9223372036854775807']) {
    await t.rejects(pool.query(`SELECT ${value}::bigint AS v`),
      new RangeError(`PostgreSQL returned the BIGINT ${value}, past what a JS number holds exactly (±9007199254740991)`))
  }
  await t.rejects(pool.query('SELECT ARRAY[1, 9007199254740992]::bigint[] AS v'), RangeError, 'inside an array too')
  t.strictSame((await pool.query('SELECT 1::bigint AS v')).rows, [{ v: 1 }], 'the connection is still good')
})

t.test('the parsers are the pool\'s own: pg.types, and so other clients, are untouched', async t => {
  const { pool, url } = await freshPool(t)
  t.strictSame((await pool.query('SELECT 7::bigint AS v')).rows, [{ v: 7 }])
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  t.teardown(() => client.end())
  t.strictSame((await client.query('SELECT 7::bigint AS v')).rows, [{ v: '7' }])
})

t.test('the pool has the size asked for', async t => {
  const pool = createPool({ url: 'postgres://127.0.0.1:1/x', size: 7 })
  t.teardown(() => pool.end())
  t.equal(pool.options.max, 7)
  t.equal(pool.options.connectionTimeoutMillis, 10_000)
  const quick = createPool({ url: 'postgres://127.0.0.1:1/x', size: 1, connectTimeoutMs: 50 })
  t.teardown(() => quick.end())
  t.equal(quick.options.connectionTimeoutMillis, 50)
})

t.test('an idle connection that breaks does not end the process; the next query connects anew', async t => {
  const { pool } = await freshPool(t)
  await pool.query('SELECT 1')
  // What pg does when an idle client's socket fails: without a listener, emit would throw.
  t.doesNotThrow(() => pool.emit('error', new Error('Connection terminated unexpectedly')))
  if (!usingPGlite) {
    // For real: the server ends the idle connection.
    const { pid } = (await pool.query('SELECT pg_backend_pid() AS pid')).rows[0]
    const other = createPool({ url: pool.options.connectionString as string, size: 1 })
    t.teardown(() => other.end())
    await other.query('SELECT pg_terminate_backend($1)', [pid])
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  t.strictSame((await pool.query('SELECT 1::bigint AS v')).rows, [{ v: 1 }])
})

t.test('connectOrExplain: one round trip, or one line naming where and why, never the password', async t => {
  const { pool, url } = await freshPool(t)
  await connectOrExplain(pool, url)

  const away = 'postgres://tally:s3cret@127.0.0.1:1/tally'
  const nowhere = createPool({ url: away, size: 1 })
  t.teardown(() => nowhere.end())
  const err = await connectOrExplain(nowhere, away).then(() => undefined, (e: Error) => e)
  t.type(err, DatabaseUnreachable)
  t.equal(err?.message, 'cannot reach PostgreSQL at 127.0.0.1:1/tally: connect ECONNREFUSED 127.0.0.1:1')
  t.equal((err?.cause as { code: string }).code, 'ECONNREFUSED', 'the cause is kept for the log')
})

t.test('DatabaseUnreachable: the cause in one line, the password masked wherever it shows', async t => {
  const url = 'postgres://tally:pa55word@db.example:6543/ledger'
  t.equal(new DatabaseUnreachable(url, new Error('password pa55word\n  was refused')).message,
    'cannot reach PostgreSQL at db.example:6543/ledger: password *** was refused')
  // Every address of a host refused: Node throws an AggregateError with no message of its own.
  const refused = Object.assign(new AggregateError([new Error('connect ECONNREFUSED ::1:5432'), new Error('connect ECONNREFUSED 127.0.0.1:5432')], ''), { code: 'ECONNREFUSED' })
  t.equal(new DatabaseUnreachable('postgres://localhost/tally', refused).message,
    'cannot reach PostgreSQL at localhost:5432/tally: connect ECONNREFUSED ::1:5432; connect ECONNREFUSED 127.0.0.1:5432')
  t.equal(new DatabaseUnreachable('postgres://localhost/tally', Object.assign(new Error(''), { code: 'EIO' })).message,
    'cannot reach PostgreSQL at localhost:5432/tally: EIO')
  t.equal(new DatabaseUnreachable('postgres://localhost/tally', 'a string').message,
    'cannot reach PostgreSQL at localhost:5432/tally: a string')
})
