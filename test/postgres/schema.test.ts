import { join } from 'node:path'
import t, { type Test } from 'tap'
import { migratePostgres } from '../../src/storage/postgres/migrate.js'
import { createPool } from '../../src/storage/postgres/pool.js'
import { migrate } from '../../src/storage/sqlite/migrate.js'
import { openDatabase, type Db } from '../../src/storage/sqlite/open.js'
import { tempDir } from '../helper.js'
import { freshPostgres } from '../postgres.js'

// The PostgreSQL schema against SQLite's: same tables, columns, indexes and views, and the views
// answer the same rows for the same data.

async function bothEngines (t: Test) {
  const db = openDatabase(join(tempDir(t), 'app.db'))
  t.teardown(() => db.close())
  await migrate(db)
  const { url, poolSize } = await freshPostgres(t)
  const pool = createPool({ url, size: poolSize })
  t.teardown(() => pool.end())
  await migratePostgres(pool)
  return { db, pool }
}

const sqliteRelations = (db: Db, type: 'table' | 'view'): string[] =>
  db.prepare("SELECT name FROM sqlite_schema WHERE type = ? AND name NOT LIKE 'sqlite_%' ORDER BY name").pluck().all(type) as string[]

t.test('every table and view, with the same columns in the same order', async t => {
  const { db, pool } = await bothEngines(t)
  const pgRelations = async (type: string) => (await pool.query(
    'SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = $1 ORDER BY table_name', [type]))
    .rows.map(r => r.table_name)
  const views = sqliteRelations(db, 'view')
  t.strictSame(views, ['alert_details', 'alert_summary', 'credit_balances', 'point_balances', 'point_hold_details', 'point_lot_status',
    'point_reversal_details', 'point_spend_details'])
  t.strictSame(await pgRelations('VIEW'), views)
  // alert_states is PostgreSQL's own: SQLite's single writer needs no row to lock.
  t.strictSame(await pgRelations('BASE TABLE'), [...sqliteRelations(db, 'table'), 'alert_states'].sort())
  for (const relation of [...views, ...sqliteRelations(db, 'table')]) {
    const sqlite = db.prepare('SELECT name FROM pragma_table_info(?) ORDER BY cid').pluck().all(relation)
    const pg = (await pool.query(
      'SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position', [relation]))
      .rows.map(r => r.column_name)
    t.strictSame(pg, sqlite, relation)
  }
})

t.test('every named index of SQLite\'s, on the same columns, partial where it is', async t => {
  const { db, pool } = await bothEngines(t)
  const sqlite = db.prepare("SELECT name, tbl_name AS \"table\", sql LIKE '%WHERE%' AS partial FROM sqlite_schema WHERE type = 'index' AND sql IS NOT NULL ORDER BY name").all() as Array<{ name: string, table: string, partial: number }>
  t.ok(sqlite.length >= 15)
  for (const { name, table, partial } of sqlite) {
    // An expression (the expiry order's coalesce) has no column name on either engine.
    const sqliteColumns = (db.prepare('SELECT name FROM pragma_index_info(?) ORDER BY seqno').pluck().all(name) as Array<string | null>)
      .map(column => column ?? '(expression)')
    const { rows } = await pool.query(`SELECT t.relname AS table, i.indpred IS NOT NULL AS partial,
        array(SELECT coalesce(a.attname::text, '(expression)') FROM unnest(i.indkey) WITH ORDINALITY AS k (attnum, n) LEFT JOIN pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = k.attnum ORDER BY k.n) AS columns
      FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indexrelid JOIN pg_class AS t ON t.oid = i.indrelid
      WHERE c.relname = $1 AND c.relnamespace = current_schema()::regnamespace`, [name])
    t.strictSame(rows, [{ table, partial: partial === 1, columns: sqliteColumns }], name)
  }
})

t.test('every text column sorts bytewise, as SQLite\'s do', async t => {
  const { pool } = await bothEngines(t)
  const { rows } = await pool.query(`SELECT table_name || '.' || column_name AS c, collation_name FROM information_schema.columns
    WHERE table_schema = current_schema() AND data_type = 'text' AND table_name <> 'schemaversion'`)
  t.ok(rows.length >= 40)
  t.strictSame(rows.filter(r => r.collation_name !== 'C'), [])
})

// The same rows, written by the same statements into both: every kind of row, payers whose
// bytewise order is not a dictionary's, and amounts that need printf's zero padding.
const rows = [
  "INSERT INTO users (id, email, email_key, name, credits, created_at, credits_updated_at) VALUES (1, 'Ann@Example.com', 'ann@example.com', 'Ann', 7, '2024-01-01T00:00:00.000Z', '2024-01-02T00:00:00.000Z'), (2, 'bo@example.com', 'bo@example.com', ' Bo ', 0, '2024-01-01T00:00:01.000Z', '2024-01-01T00:00:01.000Z')",
  "INSERT INTO credit_entries (id, user_id, kind, delta, balance_after, created_at) VALUES (1, 1, 'add', 10, 10, '2024-01-02T00:00:00.000Z'), (2, 1, 'deduct', -3, 7, '2024-01-02T00:00:00.000Z')",
  "INSERT INTO daily_grants (user_id, day, amount, created_at) VALUES (1, '2024-01-02', 5, '2024-01-02T00:00:00.000Z')",
  "INSERT INTO daily_grant_runs (id, day, trigger, users_credited, ran_at) VALUES (1, '2024-01-02', 'schedule', 1, '2024-01-02T00:00:00.000Z')",
  "INSERT INTO point_transactions (id, ledger_id, payer, points, ts, created_at) VALUES (1, 0, 'b', 100, '2024-01-01T00:00:00.000Z', 'c1'), (2, 0, 'B', 50, '2024-01-01T00:00:00.000Z', 'c2'), (3, 0, 'É', 30, '2023-12-31T00:00:00.000Z', 'c3'), (4, 1, 'a', 20, '2024-01-01T00:00:00.000Z', 'c4'), (5, 0, 'b', -10, '2024-01-03T00:00:00.000Z', 'c5'), (6, 3, 'Z', 1, '2024-01-01T00:00:00.000Z', 'c6')",
  "INSERT INTO point_lots (transaction_id, ledger_id, payer, ts, points, remaining, adjusted) VALUES (1, 0, 'b', '2024-01-01T00:00:00.000Z', 100, 60, 10), (2, 0, 'B', '2024-01-01T00:00:00.000Z', 50, 50, 0), (3, 0, 'É', '2023-12-31T00:00:00.000Z', 30, 0, 0), (4, 1, 'a', '2024-01-01T00:00:00.000Z', 20, 20, 0), (6, 3, 'Z', '2024-01-01T00:00:00.000Z', 1, 1, 0)",
  "INSERT INTO payer_balances (ledger_id, payer, balance) VALUES (0, 'b', 60), (0, 'B', 50), (0, 'É', 0), (1, 'a', 20), (3, 'Z', 1)",
  'INSERT INTO ledger_totals (ledger_id, balance) VALUES (0, 110), (1, 20), (3, 1)',
  "INSERT INTO point_spends (id, ledger_id, points, created_at) VALUES (1, 0, 60, '2024-01-04T00:00:00.000Z')",
  'INSERT INTO point_spend_draws (spend_id, seq, lot_id, points) VALUES (1, 1, 3, 30), (1, 2, 1, 30)',
  "INSERT INTO point_adjustment_draws (id, adjustment_id, lot_id, points, cause_id, created_at) VALUES (1, 5, 1, 10, 5, 'c5')",
  "INSERT INTO events (id, user_id, type, amount, time, created_at) VALUES (1, 1, 'deposit', 1205, 10, 'e1'), (2, 1, 'withdraw', 5, 11, 'e2'), (3, 9, 'deposit', 100000, 3, 'e3'), (4, 1, 'deposit', 70, 12, 'e4')",
  "INSERT INTO alerts (id, event_id, user_id, code, details, created_at) VALUES (1, 1, 1, 30, '{\"n\":1}', '2024-01-05T00:00:00.000Z'), (2, 2, 1, 30, '[]', '2024-01-06T00:00:00.000Z'), (3, 3, 9, 123, '{}', '2024-01-05T00:00:00.000Z'), (4, 4, 1, 300, '{\"é\":\"x\"}', '2024-01-07T00:00:00.000Z')",
  "INSERT INTO alert_profiles (user_id, risk, overrides, updated_at) VALUES (1, 'high', '{}', 'p1')",
  "INSERT INTO idempotency_keys (key, fingerprint, status, body, created_at) VALUES ('k', 'f', 200, '{}', 'i1')",
  "INSERT INTO point_holds (id, ledger_id, points, status, expires_at, created_at) VALUES (1, 0, 5, 'pending', NULL, 'h1'), (2, 0, 3, 'pending', '2024-02-01T00:00:00.000Z', 'h2')",
  'INSERT INTO point_hold_draws (hold_id, seq, lot_id, points) VALUES (1, 1, 2, 5), (2, 1, 2, 2), (2, 2, 4, 1)',
  "INSERT INTO point_reversals (id, ledger_id, spend_id, points, created_at) VALUES (1, 0, 1, 5, 'r1')",
  'INSERT INTO point_reversal_draws (reversal_id, seq, lot_id, points) VALUES (1, 1, 1, 5)'
]

t.test('the views answer the same rows, in the same order, on the same data', async t => {
  const { db, pool } = await bothEngines(t)
  for (const sql of rows) {
    db.exec(sql)
    await pool.query(sql)
  }
  for (const view of sqliteRelations(db, 'view')) {
    const sqlite = db.prepare(`SELECT * FROM ${view}`).all()
    t.ok(sqlite.length > 0, `${view} has rows to compare`)
    t.strictSame((await pool.query(`SELECT * FROM ${view}`)).rows, sqlite, view)
  }
  t.strictSame((await pool.query('SELECT amount FROM alert_details')).rows.map(r => r.amount), ['12.05', '0.05', '1000.00', '0.70'])
})

t.test('the constraints refuse what SQLite\'s refuse', async t => {
  const { db, pool } = await bothEngines(t)
  for (const sql of rows) {
    db.exec(sql)
    await pool.query(sql)
  }
  const refused = [
    "INSERT INTO point_transactions (ledger_id, payer, points, ts, created_at) VALUES (0, '', 1, '2024-01-01T00:00:00.000Z', 'x')",
    `INSERT INTO point_transactions (ledger_id, payer, points, ts, created_at) VALUES (0, '${'é'.repeat(65)}', 1, '2024-01-01T00:00:00.000Z', 'x')`,
    "INSERT INTO point_transactions (ledger_id, payer, points, ts, created_at) VALUES (0, 'p', 0, '2024-01-01T00:00:00.000Z', 'x')",
    "INSERT INTO point_transactions (ledger_id, payer, points, ts, created_at) VALUES (-1, 'p', 1, '2024-01-01T00:00:00.000Z', 'x')",
    "INSERT INTO point_transactions (ledger_id, payer, points, ts, created_at) VALUES (0, 'p', 1, '2024-01-01', 'x')",
    'UPDATE point_lots SET remaining = -1 WHERE transaction_id = 4',
    'UPDATE point_lots SET adjusted = 1 WHERE transaction_id = 4',
    'UPDATE payer_balances SET balance = -1',
    'UPDATE ledger_totals SET balance = -1',
    "INSERT INTO point_lots (transaction_id, ledger_id, payer, ts, points, remaining) VALUES (99, 0, 'p', 't', 1, 1)",
    'INSERT INTO point_spend_draws (spend_id, seq, lot_id, points) VALUES (1, 3, 99, 1)',
    'INSERT INTO point_spend_draws (spend_id, seq, lot_id, points) VALUES (1, 0, 1, 1)',
    "INSERT INTO point_adjustment_draws (adjustment_id, lot_id, points, cause_id, created_at) VALUES (5, 1, 0, 5, 'x')",
    "INSERT INTO users (email, email_key, name, created_at, credits_updated_at) VALUES ('x@y.z', 'ann@example.com', 'X', 'c', 'c')",
    "INSERT INTO users (email, email_key, name, created_at, credits_updated_at) VALUES ('x@', 'x@', 'X', 'c', 'c')",
    "INSERT INTO users (email, email_key, name, created_at, credits_updated_at) VALUES ('x@y.z', 'x@y.z', '   ', 'c', 'c')",
    'UPDATE users SET credits = -1',
    "INSERT INTO credit_entries (user_id, kind, delta, balance_after, created_at) VALUES (1, 'gift', 1, 1, 'c')",
    "INSERT INTO credit_entries (user_id, kind, delta, balance_after, created_at) VALUES (99, 'add', 1, 1, 'c')",
    "INSERT INTO daily_grants (user_id, day, amount, created_at) VALUES (1, '2024-01-02', 5, 'c')",
    "INSERT INTO daily_grants (user_id, day, amount, created_at) VALUES (1, '2024-1-3', 5, 'c')",
    "INSERT INTO daily_grant_runs (day, trigger, users_credited, ran_at) VALUES ('d', 'manual', 1, 'r')",
    "INSERT INTO events (user_id, type, amount, time, created_at) VALUES (0, 'deposit', 1, 1, 'c')",
    "INSERT INTO events (user_id, type, amount, time, created_at) VALUES (1, 'gift', 1, 1, 'c')",
    "INSERT INTO events (user_id, type, amount, time, created_at) VALUES (1, 'deposit', 0, 1, 'c')",
    "INSERT INTO events (user_id, type, amount, time, created_at) VALUES (1, 'deposit', 1, -1, 'c')",
    "INSERT INTO alerts (event_id, user_id, code, details, created_at) VALUES (1, 1, 30, '{}', 'c')",
    "INSERT INTO alerts (event_id, user_id, code, details, created_at) VALUES (1, 1, 31, '{}', 'c')",
    "INSERT INTO alerts (event_id, user_id, code, details, created_at) VALUES (1, 1, 500, '{x', 'c')",
    "INSERT INTO alerts (event_id, user_id, code, details, created_at) VALUES (99, 1, 500, '{}', 'c')",
    "INSERT INTO alert_profiles (user_id, risk, updated_at) VALUES (0, 'low', 'c')",
    "INSERT INTO alert_profiles (user_id, risk, updated_at) VALUES (2, 'none', 'c')",
    "INSERT INTO alert_profiles (user_id, risk, overrides, updated_at) VALUES (2, 'low', 'nope', 'c')",
    "INSERT INTO idempotency_keys (key, fingerprint, status, body, created_at) VALUES ('', 'f', 200, '{}', 'c')",
    `INSERT INTO idempotency_keys (key, fingerprint, status, body, created_at) VALUES ('${'k'.repeat(256)}', 'f', 200, '{}', 'c')`,
    "INSERT INTO idempotency_keys (key, fingerprint, status, body, created_at) VALUES ('k', 'f', 200, '{}', 'c')"
  ]
  for (const sql of refused) {
    t.throws(() => db.exec(sql), { code: /^SQLITE_CONSTRAINT_/ }, `SQLite: ${sql}`)
    await t.rejects(pool.query(sql), { code: /^(23|22P02)/ }, `PostgreSQL: ${sql}`)
  }
  // And what they allow at the edges, both.
  for (const sql of [
    `INSERT INTO point_transactions (id, ledger_id, payer, points, ts, created_at) VALUES (100, 0, '${'é'.repeat(64)}', 1, '2024-01-01T00:00:00.000Z', 'x')`,
    'INSERT INTO alert_states (user_id) VALUES (1)'
  ]) {
    if (!sql.includes('alert_states')) db.exec(sql)
    await pool.query(sql)
  }
  await t.rejects(pool.query('INSERT INTO alert_states (user_id) VALUES (0)'), { code: '23514' })
})
