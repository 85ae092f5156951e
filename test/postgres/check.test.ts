import { join } from 'node:path'
import type pg from 'pg'
import t, { type Test } from 'tap'
import { checks } from '../../src/storage/checks.js'
import { checkInvariantsPostgres } from '../../src/storage/postgres/check.js'
import { migratePostgres } from '../../src/storage/postgres/migrate.js'
import { createPool } from '../../src/storage/postgres/pool.js'
import { checkInvariants } from '../../src/storage/sqlite/check.js'
import { migrate } from '../../src/storage/sqlite/migrate.js'
import { openDatabase } from '../../src/storage/sqlite/open.js'
import { tempDir } from '../helper.js'
import { freshPostgres } from '../postgres.js'
import { runCommand } from '../process.js'

async function migratedPool (t: Test): Promise<pg.Pool> {
  const { url, poolSize } = await freshPostgres(t)
  const pool = createPool({ url, size: poolSize })
  t.teardown(() => pool.end())
  await migratePostgres(pool)
  return pool
}

t.test('a consistent database has no problems; progress names each check in turn', async t => {
  const pool = await migratedPool(t)
  await pool.query(`INSERT INTO point_transactions (id, ledger_id, payer, points, ts, created_at) VALUES (1, 0, 'p', 10, '2024-01-01T00:00:00.000Z', 'c');
    INSERT INTO point_lots (transaction_id, ledger_id, payer, ts, points, remaining) VALUES (1, 0, 'p', '2024-01-01T00:00:00.000Z', 10, 10);
    INSERT INTO payer_balances VALUES (0, 'p', 10); INSERT INTO ledger_totals VALUES (0, 10);
    INSERT INTO point_balance_history VALUES (0, 'p', '2024-01-01T00:00:00.000Z', 10)`)
  const heard: string[] = []
  t.strictSame(await checkInvariantsPostgres(pool, name => heard.push(name)), [])
  t.strictSame(heard, checks.map(c => c.name))
  t.strictSame(await checkInvariantsPostgres(pool), [], 'progress is optional')
})

// Rows that break every invariant the schema's CHECKs leave breakable, valid to both engines.
const broken = [
  "INSERT INTO users (id, email, email_key, name, credits, created_at, credits_updated_at) VALUES (1, 'a@b.c', 'a@b.c', 'A', 5, 'c', 'c'), (2, 'd@e.f', 'd@e.f', 'D', 0, 'c', 'c')",
  "INSERT INTO credit_entries (id, user_id, kind, delta, balance_after, created_at) VALUES (1, 1, 'add', 3, 3, 'c'), (2, 2, 'add', 4, 4, 'c')",
  "INSERT INTO point_transactions (id, ledger_id, payer, points, ts, created_at) VALUES (1, 0, 'p', 10, '2024-01-01T00:00:00.000Z', 'c'), (2, 0, 'p', -3, '2024-01-02T00:00:00.000Z', 'c'), (3, 0, 'q', 4, '2024-01-01T00:00:00.000Z', 'c'), (4, 2, 'r', 6, '2024-01-01T00:00:00.000Z', 'c')",
  "INSERT INTO point_lots (transaction_id, ledger_id, payer, ts, points, remaining, adjusted, held) VALUES (1, 0, 'p', '2024-01-01T00:00:00.000Z', 10, 5, 2, 0), (4, 2, 'r', '2024-01-01T00:00:00.000Z', 6, 5, 0, 1)",
  "INSERT INTO payer_balances (ledger_id, payer, balance, held) VALUES (0, 'p', 7, 0), (0, 'z', 1, 0), (3, 'y', 0, 5)",
  "INSERT INTO point_balance_history (ledger_id, payer, at, balance) VALUES (3, 'y', '2024-01-01T00:00:00.000Z', 0)",
  'INSERT INTO ledger_totals (ledger_id, balance) VALUES (0, 99), (5, 1)',
  "INSERT INTO point_spends (id, ledger_id, points, created_at) VALUES (1, 0, 7, 'c')",
  'INSERT INTO point_spend_draws (spend_id, seq, lot_id, points) VALUES (1, 1, 1, 2)',
  "INSERT INTO point_holds (id, ledger_id, points, status, created_at) VALUES (1, 0, 5, 'pending', 'c')",
  "INSERT INTO point_expirations (id, ledger_id, lot_id, payer, points, expired_at, created_at) VALUES (1, 2, 4, 'r', 1, '2024-01-01T00:00:00.000Z', 'c')",
  "INSERT INTO point_reversals (id, ledger_id, spend_id, points, created_at) VALUES (1, 0, 1, 1, 'c')",
  'INSERT INTO point_reversal_draws (reversal_id, seq, lot_id, points) VALUES (1, 1, 1, 1)',
  "INSERT INTO point_balance_history (ledger_id, payer, at, balance) VALUES (0, 'z', '2024-01-01T00:00:00.000Z', 2)"
]

t.test('a broken database: the same problems on both engines, every breakable check finding its own', async t => {
  const db = openDatabase(join(tempDir(t), 'app.db'))
  t.teardown(() => db.close())
  await migrate(db)
  const pool = await migratedPool(t)
  for (const sql of broken) {
    db.exec(sql)
    await pool.query(sql)
  }
  const onSqlite = checkInvariants(db).sort()
  const onPostgres = (await checkInvariantsPostgres(pool)).sort()
  t.strictSame(onPostgres, onSqlite)
  t.strictSame(onPostgres, [
    'add 3: positive but no lot',
    'ledger 0 payer p: balance 7 but its lots hold 5',
    'ledger 0 payer p: balance 7 but its history ends at nothing',
    'ledger 0 payer z: balance 1 but its history ends at 2',
    'lot 4: 1 held but pending holds drew 0',
    'lot 4: 0 expired but its expiration entries say 1',
    'hold 1 of 5 (pending) drew 0; captured null, its spend null',
    'spend 1: 0 reversed but its reversals say 1 and their draws 1',
    'ledger 3 payer y: 5 held but its lots hold 0',
    'ledger 3: 0 held but its payers hold 5',
    'ledger 0 payer z: balance 1 but its lots hold 0',
    'ledger 0: total 99 but its payers hold 8',
    'ledger 2 payer r: lots but no balance row',
    'ledger 5: total 1 but its payers hold 0',
    'lot 1: 2 taken by negative adds but their draws say 0',
    'lot 1: 3 spent but spends drew 2 and reversals restored 1',
    'negative add 2 of -3 draws 0',
    'spend 1 of 7 drew 2',
    'user 1: 5 credits but the history sums to 3 (last balance_after 3)',
    'user 2: 0 credits but the history sums to 4 (last balance_after 4)'
  ].sort())
})

t.test('the checks read one snapshot, in a read-only transaction', async t => {
  const pool = await migratedPool(t)
  const statements: string[] = []
  pool.on('acquire', client => {
    const query = client.query.bind(client) as (text: string) => Promise<unknown>
    client.query = (async (text: string) => { statements.push(text); return await query(text) }) as typeof client.query
  })
  await checkInvariantsPostgres(pool)
  t.equal(statements[0], 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
  t.equal(statements.at(-1), 'COMMIT')
  t.equal(statements.length, checks.length + 2)
})

t.test('a check that fails rejects, and its connection is closed', async t => {
  const pool = await migratedPool(t)
  await pool.query('DROP VIEW point_balances; DROP TABLE payer_balances')
  await t.rejects(checkInvariantsPostgres(pool), { code: '42P01' })
  t.equal(pool.totalCount, 0)
})

t.test('a connection that breaks while checking fails the check, not the process', async t => {
  const pool = await migratedPool(t)
  pool.once('acquire', client => { client.connection.stream.destroy() })
  await t.rejects(checkInvariantsPostgres(pool), /Connection terminated|not queryable/)
  t.strictSame(await checkInvariantsPostgres(pool), [])
})

t.test('npm run db:check with DATABASE_URL: exit 0 on a sound database, 1 and the problems on a broken one', async t => {
  const { url, poolSize } = await freshPostgres(t)
  const pool = createPool({ url, size: poolSize })
  t.teardown(() => pool.end())
  await migratePostgres(pool)
  const where = `postgres ${new URL(url).host}${new URL(url).pathname}`
  const good = await runCommand('db-check', { DATABASE_URL: url })
  t.equal(good.code, 0)
  t.equal(good.stdout, `${where}: every invariant holds\n`)
  t.equal(good.stderr, `checking ${where}\n${checks.map(c => `  ${c.name}…\n`).join('')}`, 'each check shows as it runs')
  await pool.query(broken.slice(0, 2).join('; '))
  const bad = await runCommand('db-check', { DATABASE_URL: url })
  t.equal(bad.code, 1)
  t.match(bad.stderr, /\ntally: Error: 2 problem\(s\):\n/)
  t.match(bad.stderr, /\n {2}user 1: 5 credits but the history sums to 3 \(last balance_after 3\)\n/)
  t.match(bad.stderr, /\n {2}user 2: 0 credits but the history sums to 4 \(last balance_after 4\)\n/)
  // A port nothing listens on: one line naming where, no stack.
  const away = await runCommand('db-check', { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/tally' })
  t.equal(away.code, 1)
  t.match(away.stderr, /^tally: cannot reach PostgreSQL at 127\.0\.0\.1:1\/tally: .+\n$/)
})
