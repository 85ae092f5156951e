import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { checkInvariants } from '../../src/storage/sqlite/check.js'
import { migrate } from '../../src/storage/sqlite/migrate.js'
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
