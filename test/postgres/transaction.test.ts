import pg from 'pg'
import t, { type Test } from 'tap'
import { createPool } from '../../src/storage/postgres/pool.js'
import { backoffMs, isRetryable, PgTransactions } from '../../src/storage/postgres/transaction.js'
import { freshPostgres, usingPGlite } from '../postgres.js'

async function setup (t: Test, size?: number) {
  const { url, poolSize } = await freshPostgres(t)
  const pool = createPool({ url, size: size ?? poolSize })
  t.teardown(() => pool.end())
  await pool.query('CREATE TABLE accounts (id BIGINT PRIMARY KEY, n BIGINT NOT NULL)')
  await pool.query('INSERT INTO accounts VALUES (1, 0), (2, 0)')
  return { pool, url }
}

const conflict = (code = '40001') => Object.assign(new Error('could not serialize access'), { code })
const rowsOf = async (pool: pg.Pool) => (await pool.query('SELECT id, n FROM accounts ORDER BY id')).rows

/** Resolves once `count` callers wait on it: lines two transactions up. */
function barrier (count: number): () => Promise<void> {
  let open: () => void
  const opened = new Promise<void>(resolve => { open = resolve })
  return async () => {
    if (--count === 0) open()
    await opened
  }
}

t.test('a work that fails with 40001 twice runs again whole, and commits once', async t => {
  const { pool } = await setup(t)
  const tx = new PgTransactions(pool, 'read_committed')
  let runs = 0
  const answer = await tx.run(async q => {
    runs++
    await q.query('UPDATE accounts SET n = n + 1 WHERE id = 1')
    if (runs < 3) throw conflict()
    return 'done'
  })
  t.equal(answer, 'done')
  t.equal(runs, 3)
  t.strictSame(await rowsOf(pool), [{ id: 1, n: 1 }, { id: 2, n: 0 }], 'the first two rolled back')
})

t.test('a deadlock (40P01) is retried too; after maxAttempts the error propagates', async t => {
  const { pool } = await setup(t)
  const tx = new PgTransactions(pool, 'read_committed', { maxAttempts: 3 })
  let runs = 0
  const deadlock = conflict('40P01')
  await t.rejects(tx.run(async q => {
    runs++
    await q.query('UPDATE accounts SET n = n + 1 WHERE id = 1')
    throw deadlock
  }), deadlock)
  t.equal(runs, 3)
  t.strictSame(await rowsOf(pool), [{ id: 1, n: 0 }, { id: 2, n: 0 }])
  t.equal(pool.idleCount, pool.totalCount, 'every client went back to the pool')
})

t.test('a conflict found at COMMIT is retried as well', async t => {
  const { pool } = await setup(t)
  // A deferred trigger fails the first two COMMITs with 40001; the sequence counts them, as it is
  // not rolled back.
  await pool.query(`CREATE SEQUENCE commits;
    CREATE FUNCTION fail_commit() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN IF nextval('commits') <= 2 THEN RAISE EXCEPTION 'conflict at commit' USING ERRCODE = '40001'; END IF; RETURN NULL; END $$;
    CREATE CONSTRAINT TRIGGER at_commit AFTER UPDATE ON accounts DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION fail_commit()`)
  const tx = new PgTransactions(pool, 'read_committed')
  let runs = 0
  await tx.run(async q => {
    runs++
    await q.query('UPDATE accounts SET n = n + 1 WHERE id = 2')
  })
  t.equal(runs, 3)
  t.strictSame(await rowsOf(pool), [{ id: 1, n: 0 }, { id: 2, n: 1 }])
})

t.test('a refusal thrown inside rolls back, is not retried, and propagates as it is', async t => {
  const { pool } = await setup(t)
  const tx = new PgTransactions(pool, 'serializable')
  const refusal = Object.assign(new Error('Cannot spend 5 points'), { code: 'INSUFFICIENT_POINTS', statusCode: 400 })
  let runs = 0
  await t.rejects(tx.run(async q => {
    runs++
    await q.query('INSERT INTO accounts VALUES (3, 5)')
    throw refusal
  }), refusal)
  t.equal(runs, 1)
  t.strictSame(await rowsOf(pool), [{ id: 1, n: 0 }, { id: 2, n: 0 }], 'the row is not there')
  const constraint = await tx.run(async q => await q.query('INSERT INTO accounts VALUES (1, 0)')).catch(e => e)
  t.equal(constraint.code, '23505', 'nor is a database error other than a conflict retried')
})

t.test('every statement of a run is on one connection, in one transaction of the isolation asked', async t => {
  const { pool } = await setup(t)
  for (const [isolation, level] of [['read_committed', 'read committed'], ['serializable', 'serializable']] as const) {
    const tx = new PgTransactions(pool, isolation)
    const seen = await tx.run(async q => [
      ...await q.query('SELECT txid_current() AS x, current_setting(\'transaction_isolation\') AS level, current_setting(\'transaction_read_only\') AS ro'),
      ...await q.query('SELECT txid_current() AS x, current_setting(\'transaction_isolation\') AS level, current_setting(\'transaction_read_only\') AS ro')
    ])
    t.equal(seen[0].x, seen[1].x, `${isolation}: one transaction`)
    t.strictSame(seen.map(r => [r.level, r.ro]), [[level, 'off'], [level, 'off']])
    const readOnly = await tx.run(async q => await q.query('SELECT current_setting(\'transaction_isolation\') AS level, current_setting(\'transaction_read_only\') AS ro'), { readOnly: true })
    t.strictSame(readOnly, [{ level, ro: 'on' }])
  }
  const tx = new PgTransactions(pool, 'read_committed')
  await t.rejects(tx.run(async q => await q.query('INSERT INTO accounts VALUES (3, 0)'), { readOnly: true }), { code: '25006' })
})

t.test('each statement text is prepared once per connection, under one name', async t => {
  const { pool } = await setup(t)
  const tx = new PgTransactions(pool, 'read_committed')
  const text = 'SELECT n FROM accounts WHERE id = $1'
  for (let i = 0; i < 3; i++) t.strictSame(await tx.run(async q => await q.query(text, [1])), [{ n: 0 }])
  const prepared = (await pool.query('SELECT name FROM pg_prepared_statements WHERE statement = $1', [text])).rows
  t.equal(prepared.length, 1)
  // The process in the name too: on PGlite a command run beside the service (another process,
  // its connections numbered from 1 again) shares the one session.
  t.match(prepared[0].name, new RegExp(`^tally_${process.pid}_\\d+_\\d+$`))
})

t.test('a new connection prepares its own statements without colliding with an old one\'s', async t => {
  // PGlite serves every connection from one session, where the names of a closed connection's
  // statements live on: a new connection must not reuse them.
  const { url } = await setup(t)
  const text = 'SELECT id FROM accounts WHERE n = $1 ORDER BY id'
  const first = createPool({ url, size: 1 })
  t.strictSame(await new PgTransactions(first, 'read_committed').run(async q => await q.query(text, [0])), [{ id: 1 }, { id: 2 }])
  await first.end()
  const again = createPool({ url, size: 1 })
  t.teardown(() => again.end())
  t.strictSame(await new PgTransactions(again, 'read_committed').run(async q => await q.query(text, [0])), [{ id: 1 }, { id: 2 }])
})

t.test('a connection that broke mid-transaction is closed, not handed to the next run', async t => {
  const { pool } = await setup(t, 1)
  let client: pg.PoolClient | undefined
  pool.on('acquire', c => { client = c })
  const released: unknown[] = []
  pool.on('release', err => { released.push(err) })
  const tx = new PgTransactions(pool, 'read_committed')
  await t.rejects(tx.run(async q => {
    await q.query('UPDATE accounts SET n = 9 WHERE id = 1')
    client!.connection.stream.destroy()
    await q.query('SELECT 1')
  }), /Connection terminated|not queryable/)
  t.match(released, [/Connection terminated unexpectedly|not queryable/], 'released with the error, which destroys it')
  t.equal(pool.totalCount, 0, 'the client was destroyed')
  t.strictSame(await tx.run(async q => await q.query('SELECT n FROM accounts WHERE id = 1')), [{ n: 0 }], 'nothing of it committed; the next run connects anew')
})

t.test('a pool that cannot connect fails the run at once, without calling the work', async t => {
  const pool = createPool({ url: 'postgres://postgres@127.0.0.1:1/tally', size: 1 })
  t.teardown(() => pool.end())
  let runs = 0
  await t.rejects(new PgTransactions(pool, 'read_committed').run(async () => { runs++ }), { code: 'ECONNREFUSED' })
  t.equal(runs, 0)
})

t.test('a real deadlock: one of the two transactions is retried, and both finish', { skip: usingPGlite && 'PGlite is one session: two transactions cannot wait on each other' }, async t => {
  const { pool } = await setup(t)
  const tx = new PgTransactions(pool, 'read_committed')
  const bothHoldOne = barrier(2)
  let runs = 0
  // Each locks one row, waits until the other has locked the other row, then asks for it.
  const transfer = async (first: number, second: number) => {
    let attempt = 0
    await tx.run(async q => {
      runs++
      await q.query('UPDATE accounts SET n = n + 1 WHERE id = $1', [first])
      if (attempt++ === 0) await bothHoldOne()
      await q.query('UPDATE accounts SET n = n + 1 WHERE id = $1', [second])
    })
  }
  await Promise.all([transfer(1, 2), transfer(2, 1)])
  t.equal(runs, 3, 'the deadlock\'s victim ran twice')
  t.strictSame(await rowsOf(pool), [{ id: 1, n: 2 }, { id: 2, n: 2 }])
})

t.test('a real serialization failure under SERIALIZABLE is retried, and the rule holds', { skip: usingPGlite && 'PGlite is one session: two transactions cannot overlap' }, async t => {
  const { pool } = await setup(t)
  await pool.query('UPDATE accounts SET n = 1')
  const tx = new PgTransactions(pool, 'serializable')
  const bothRead = barrier(2)
  let runs = 0
  // Write skew: each sees two accounts at 1 and, leaving one, zeroes its own.
  const leave = async (id: number) => {
    let attempt = 0
    await tx.run(async q => {
      runs++
      const [{ left }] = await q.query('SELECT count(*) AS left FROM accounts WHERE n = 1')
      if (attempt++ === 0) await bothRead()
      if (left >= 2) await q.query('UPDATE accounts SET n = 0 WHERE id = $1', [id])
    })
  }
  await Promise.all([leave(1), leave(2)])
  // At least one was aborted and ran again; PostgreSQL may abort both once (a fourth run).
  t.ok(runs >= 3, `a conflict was retried (${runs} runs)`)
  t.equal((await rowsOf(pool)).filter(r => r.n === 1).length, 1, 'one account left at 1')
})

t.test('back-off: a few ms, doubling to about 100 ms, jittered', async t => {
  for (let i = 0; i < 100; i++) {
    const first = backoffMs(1)
    t.ok(first >= 1 && first <= 2, `first ${first}`)
    const late = backoffMs(9)
    t.ok(late >= 50 && late <= 100, `late ${late}`)
  }
  t.ok(backoffMs(4) >= 8 && backoffMs(4) <= 16)
  t.ok(isRetryable(conflict('40001')) && isRetryable(conflict('40P01')))
  t.notOk(isRetryable(conflict('23505')) || isRetryable(null) || isRetryable(undefined))
})
