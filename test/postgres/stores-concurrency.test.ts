import type pg from 'pg'
import t, { type Test } from 'tap'
import { PgAlerts } from '../../src/alerts/postgres.js'
import { PgCredits } from '../../src/credits/postgres.js'
import { PgIdempotency } from '../../src/idempotency/postgres.js'
import { migratePostgres } from '../../src/storage/postgres/migrate.js'
import { createPool } from '../../src/storage/postgres/pool.js'
import { type Isolation, PgTransactions } from '../../src/storage/postgres/transaction.js'
import type { PostgresWork } from '../../src/storage/work.js'
import { PgUsers } from '../../src/users/postgres.js'
import { freshPostgres, usingPGlite } from '../postgres.js'

// Several tally processes on one database: each store's own guarantee (a unique key, a row lock)
// holds when the same thing is asked of all of them at once. Each "instance" here is a pool of
// its own with its own stores, as another process would have.

const now = (): Date => new Date()

interface Instance {
  transactions: PgTransactions
  users: PgUsers
  credits: PgCredits
  alerts: PgAlerts
  keys: PgIdempotency
  write: <R>(work: PostgresWork<R>) => Promise<R>
}

async function instances (t: Test, count: number, isolation: Isolation): Promise<{ pool: pg.Pool, all: Instance[] }> {
  const { url } = await freshPostgres(t)
  const all: Instance[] = []
  const pools: pg.Pool[] = []
  for (let i = 0; i < count; i++) {
    const pool = createPool({ url, size: 2 })
    t.teardown(() => pool.end())
    pools.push(pool)
    const transactions = new PgTransactions(pool, isolation, { maxAttempts: 100 })
    all.push({
      transactions,
      users: new PgUsers(transactions, now),
      credits: new PgCredits(transactions, now),
      alerts: new PgAlerts(transactions, now, 's'),
      keys: new PgIdempotency(now, 24),
      write: async work => await transactions.run(work.run)
    })
  }
  await migratePostgres(pools[0]!)
  return { pool: pools[0]!, all }
}

/** How a call ended: its value, or its refusal's code. */
async function settle<R> (promise: Promise<R>): Promise<{ ok: R } | { code: string }> {
  try {
    return { ok: await promise }
  } catch (err) {
    const { code } = err as { code?: unknown }
    if (typeof code !== 'string' || !/^[A-Z_]+$/.test(code)) throw err
    return { code }
  }
}

/** Polls `ready` every 10 ms, for at most 5 s. */
async function waitFor (ready: () => Promise<boolean>): Promise<void> {
  for (let waited = 0; !(await ready()); waited += 10) {
    if (waited > 5000) throw new Error('waited 5 s in vain')
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}

const isolations: Isolation[] = ['read_committed', 'serializable']
const skip = usingPGlite && 'PGlite runs one transaction at a time in its one session, so nothing would race: set TEST_DATABASE_URL to a server'

for (const isolation of isolations) {
  t.test(`${isolation}: the same email in three letter cases at once makes one user; the others get EMAIL_TAKEN`, { skip }, async t => {
    const { pool, all } = await instances(t, 3, isolation)
    for (let round = 0; round < 20; round++) {
      const cases = [`race${round}@example.com`, `RACE${round}@EXAMPLE.COM`, `Race${round}@Example.Com`]
      const answers = await Promise.all(all.map(async (instance, i) => await settle(instance.write(instance.users.create(cases[i]!, 'R')))))
      t.equal(answers.filter(a => 'ok' in a).length, 1, `round ${round}: one created`)
      t.strictSame(answers.filter(a => !('ok' in a)), [{ code: 'EMAIL_TAKEN' }, { code: 'EMAIL_TAKEN' }], `round ${round}: two refused`)
    }
    const { rows } = await pool.query('SELECT email_key, count(*)::int AS n FROM users GROUP BY email_key HAVING count(*) > 1')
    t.strictSame(rows, [], 'no email twice')
    t.equal((await pool.query('SELECT count(*)::int AS n FROM users')).rows[0].n, 20)
  })

  t.test(`${isolation}: 30 deducts on one user at once never take the balance below zero, and its history sums to it`, { skip }, async t => {
    const { pool, all } = await instances(t, 3, isolation)
    const [first] = all as [Instance]
    const { id } = await first.write(first.users.create('d@example.com', 'D'))
    await first.write(first.credits.add(id, 100))
    const amounts = Array.from({ length: 30 }, (_, i) => 1 + (i * 7) % 10)
    const answers = await Promise.all(amounts.map(async (amount, i) => {
      const instance = all[i % all.length]!
      return await settle(instance.write(instance.credits.deduct(id, amount)))
    }))
    const taken = amounts.filter((_, i) => 'ok' in answers[i]!).reduce((a, b) => a + b, 0)
    t.ok(answers.some(a => !('ok' in a)), 'some deducts were refused: the balance ran out')
    t.ok(answers.every(a => 'ok' in a || a.code === 'INSUFFICIENT_CREDITS'), 'refused only for INSUFFICIENT_CREDITS')
    const { credits } = await first.credits.get(id)
    t.equal(credits, 100 - taken, 'the balance is what was there less what the accepted deducts took')
    t.ok(credits >= 0)
    const entries = (await pool.query('SELECT delta, balance_after FROM credit_entries WHERE user_id = $1 ORDER BY id', [id])).rows as Array<{ delta: number, balance_after: number }>
    let balance = 0
    for (const entry of entries) {
      balance += entry.delta
      if (entry.balance_after !== balance) t.fail(`an entry says ${entry.balance_after} after ${entry.delta}, the history ${balance}`)
    }
    t.equal(balance, credits, 'the history sums to the balance')
  })

  t.test(`${isolation}: the daily grant run on two instances at once grants each user once; of two catch-ups one runs`, { skip }, async t => {
    const { pool, all } = await instances(t, 2, isolation)
    const [a, b] = all as [Instance, Instance]
    for (let i = 1; i <= 25; i++) await a.write(a.users.create(`g${i}@example.com`, 'G'))
    const runs = await Promise.all([a.write(a.credits.grantDaily('2024-03-01', 5, 'schedule')), b.write(b.credits.grantDaily('2024-03-01', 5, 'schedule'))])
    t.equal(runs[0].users_credited + runs[1].users_credited, 25, 'the two runs together credited every user once')
    const catchUps = await Promise.all([a.write(a.credits.catchUp('2024-03-02', 5)), b.write(b.credits.catchUp('2024-03-02', 5))])
    t.equal(catchUps.filter(run => run === null).length, 1, 'one catch-up found the other\'s run')
    t.equal(catchUps.find(run => run !== null)?.users_credited, 25)
    const { rows } = await pool.query('SELECT credits, count(*)::int AS users FROM users GROUP BY credits')
    t.strictSame(rows, [{ credits: 10, users: 25 }], 'every user has exactly two days\' grants')
    t.equal((await pool.query("SELECT count(*)::int AS n FROM credit_entries WHERE kind = 'daily_grant'")).rows[0].n, 50)
  })

  t.test(`${isolation}: a daily grant that waited for an add judges the balance after it, never passing 2^53 − 1`, { skip }, async t => {
    const { pool, all } = await instances(t, 2, isolation)
    const [a, b] = all as [Instance, Instance]
    const MAX = Number.MAX_SAFE_INTEGER
    const near = await a.write(a.users.create('near@example.com', 'N'))
    const other = await a.write(a.users.create('other@example.com', 'O'))
    await a.write(a.credits.setExternal(near.id, MAX - 10))
    // An add of 8 holds the user's row, uncommitted, while the grant of 5 starts: the balance
    // can take one of them, not both.
    let release!: () => void
    const held = new Promise<void>(resolve => { release = resolve })
    let locked!: () => void
    const holding = new Promise<void>(resolve => { locked = resolve })
    const add = b.transactions.run(async tx => {
      const balance = await b.credits.add(near.id, 8).run(tx)
      locked()
      await held
      return balance
    })
    await holding
    const grant = a.write(a.credits.grantDaily('2024-03-01', 5, 'schedule'))
    await waitFor(async () => (await pool.query("SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")).rows.length > 0)
    release()
    t.equal((await add).credits, MAX - 2)
    t.equal((await grant).users_credited, 1, 'only the other user was granted')
    t.strictSame((await pool.query('SELECT id, credits::text FROM users ORDER BY id')).rows, [{ id: near.id, credits: String(MAX - 2) }, { id: other.id, credits: '5' }])
  })

  t.test(`${isolation}: one user's events sent at once from several instances are never accepted out of order`, { skip }, async t => {
    const { pool, all } = await instances(t, 4, isolation)
    for (let round = 0; round < 5; round++) {
      const userId = round + 1
      // Times 1..40 sent all at once: whichever commits first decides which of the rest are late.
      const answers = await Promise.all(Array.from({ length: 40 }, async (_, i) => {
        const instance = all[i % all.length]!
        return await settle(instance.write(instance.alerts.record(userId, { type: i % 3 === 0 ? 'withdraw' : 'deposit', amount: 100 + i, time: i + 1 })))
      }))
      t.ok(answers.every(a => 'ok' in a || a.code === 'EVENT_OUT_OF_ORDER'), `round ${round}: accepted or refused as late`)
      const times = (await pool.query('SELECT time FROM events WHERE user_id = $1 ORDER BY id', [userId])).rows.map(row => row.time as number)
      t.equal(times.length, answers.filter(a => 'ok' in a).length, `round ${round}: every accepted event stored`)
      t.ok(times.every((time, i) => i === 0 || time >= times[i - 1]!), `round ${round}: stored times never go back (${times.join(' ')})`)
    }
  })

  t.test(`${isolation}: the same Idempotency-Key sent from five instances at once applies once; the others replay its answer`, { skip }, async t => {
    const { all } = await instances(t, 5, isolation)
    const [first] = all as [Instance]
    const { id } = await first.write(first.users.create('k@example.com', 'K'))
    for (let round = 0; round < 10; round++) {
      const keyed = { key: `key-${round}`, fingerprint: 'POST /add', status: 200, serialize: (result: unknown) => JSON.stringify(result) }
      const outcomes = await Promise.all(all.map(async instance =>
        await instance.transactions.run(async tx => await instance.keys.once(tx, keyed, async () => await instance.credits.add(id, 10).run(tx)))))
      t.equal(outcomes.filter(o => !o.replayed).length, 1, `round ${round}: applied once`)
      t.equal(new Set(outcomes.map(o => o.body)).size, 1, `round ${round}: every answer is the first one's`)
      t.equal(JSON.parse(outcomes[0]!.body).credits, 10 * (round + 1), `round ${round}: the balance grew by one add`)
    }
    t.equal((await first.credits.history(id, { limit: 100 })).items.length, 10, 'one entry per key')
  })
}
