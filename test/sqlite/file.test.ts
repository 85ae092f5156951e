import { copyFileSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { checkInvariants } from '../../src/storage/sqlite/check.js'
import { migrate, migrationsDir } from '../../src/storage/sqlite/migrate.js'
import { openDatabase } from '../../src/storage/sqlite/open.js'
import { build, canonicalAdds, get, post, tempDir } from '../helper.js'

// The SQLite file itself: where it is made, its pragmas, and its migrations.

t.test('DB_PATH in folders that do not exist yet: they are made, and the data is there after a restart', async t => {
  const dbPath = join(tempDir(t), 'nested', 'dir', 'app.db')
  const first = await build(t, { dbPath })
  t.equal((await post(first, '/add', canonicalAdds[0])).status, 200)
  await first.close()
  t.ok(existsSync(dbPath))
  const second = await build(t, { dbPath })
  t.strictSame((await get(second, '/balance')).body, { DANNON: 300 })
})

t.test('DB_SYNCHRONOUS sets the pragma', async t => {
  t.equal((await build(t)).db.pragma('synchronous', { simple: true }), 1, 'NORMAL by default')
  t.equal((await build(t, { env: { DB_SYNCHRONOUS: 'full' } })).db.pragma('synchronous', { simple: true }), 2, 'FULL')
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

t.test('migrations 006 and 007 back-fill a file written before them: ledger totals, and each payer\'s balance history', async t => {
  // A file as tally wrote it at migration 005: adds, spends and balances, no totals, no history.
  const dir = tempDir(t)
  const before007 = join(dir, 'migrations')
  mkdirSync(before007)
  for (const file of readdirSync(migrationsDir).filter(file => parseInt(file, 10) <= 5)) copyFileSync(join(migrationsDir, file), join(before007, file))
  const db = openDatabase(join(dir, 'app.db'))
  t.teardown(() => db.close())
  await migrate(db, before007)
  db.exec(`
    INSERT INTO point_transactions (id, ledger_id, payer, points, ts, created_at) VALUES
      (1, 0, 'A', 300, '2022-01-01T00:00:00.000Z', '2024-01-01T00:00:00.000Z'),
      (2, 0, 'B', 200, '2022-01-02T00:00:00.000Z', '2024-01-01T00:00:00.000Z'),
      (3, 0, 'A', 100, '2022-01-03T00:00:00.000Z', '2024-01-02T00:00:00.000Z'),
      (4, 1, 'A', 50, '2022-01-01T00:00:00.000Z', '2024-01-02T00:00:00.000Z');
    INSERT INTO point_lots (transaction_id, ledger_id, payer, ts, points, remaining) VALUES
      (1, 0, 'A', '2022-01-01T00:00:00.000Z', 300, 0), (2, 0, 'B', '2022-01-02T00:00:00.000Z', 200, 150),
      (3, 0, 'A', '2022-01-03T00:00:00.000Z', 100, 100), (4, 1, 'A', '2022-01-01T00:00:00.000Z', 50, 50);
    INSERT INTO payer_balances (ledger_id, payer, balance) VALUES (0, 'A', 100), (0, 'B', 150), (1, 'A', 50);
    INSERT INTO point_spends (id, ledger_id, points, created_at) VALUES (1, 0, 350, '2024-01-03T00:00:00.000Z');
    INSERT INTO point_spend_draws (spend_id, seq, lot_id, points) VALUES (1, 1, 1, 300), (1, 2, 2, 50)`)
  t.strictSame((await migrate(db)).applied, ['6.do.ledger-totals', '7.do.point-life'])
  t.strictSame(db.prepare('SELECT ledger_id, balance FROM ledger_totals ORDER BY ledger_id').all(),
    [{ ledger_id: 0, balance: 250 }, { ledger_id: 1, balance: 50 }])
  // One row per payer and instant its balance changed, each the balance after that instant.
  t.strictSame(db.prepare('SELECT ledger_id, payer, at, balance FROM point_balance_history ORDER BY ledger_id, payer, at').raw().all(), [
    [0, 'A', '2024-01-01T00:00:00.000Z', 300],
    [0, 'A', '2024-01-02T00:00:00.000Z', 400],
    [0, 'A', '2024-01-03T00:00:00.000Z', 100],
    [0, 'B', '2024-01-01T00:00:00.000Z', 200],
    [0, 'B', '2024-01-03T00:00:00.000Z', 150],
    [1, 'A', '2024-01-02T00:00:00.000Z', 50]
  ])
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
