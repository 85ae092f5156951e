import { join } from 'node:path'
import t from 'tap'
import { migrate } from '../../src/storage/sqlite/migrate.js'
import { openDatabase } from '../../src/storage/sqlite/open.js'
import { WriteQueue } from '../../src/storage/sqlite/write-queue.js'
import { DatabaseTrouble } from '../../src/storage/trouble.js'
import { tempDir } from '../helper.js'

type Db = ReturnType<typeof openDatabase>

const quiet = new DatabaseTrouble({ error: () => {}, info: () => {} })

async function fresh (t: Parameters<typeof tempDir>[0], lockWaitMs?: number) {
  const path = join(tempDir(t), 'q.db')
  const db = openDatabase(path)
  await migrate(db)
  db.pragma('busy_timeout = 0')
  const other = openDatabase(path)
  t.teardown(() => { db.close(); other.close() })
  return { db, other, queue: new WriteQueue(db, quiet, lockWaitMs) }
}

const insertUser = (db: Db, name: string) =>
  db.prepare("INSERT INTO users (email, email_key, name, created_at, credits_updated_at) VALUES (@e, @e, @name, 'x', 'x')").run({ e: `${name}@example.com`, name })

const names = (db: Db) => db.prepare('SELECT name FROM users ORDER BY id').pluck().all()

t.test('writes submitted together commit together; a failing one undoes only its own', async t => {
  const { db, other, queue } = await fresh(t)
  const count = () => other.prepare('SELECT count(*) FROM users').pluck().get()
  let seenByOther: unknown
  const a = queue.run(() => insertUser(db, 'a').changes)
  const b = queue.run(() => {
    insertUser(db, 'b')
    // a is written but not committed: the same transaction, invisible to another connection.
    seenByOther = count()
    throw new Error('refused')
  })
  const c = queue.run(() => { insertUser(db, 'c'); return 'c done' })
  t.equal(await a, 1)
  await t.rejects(b, /refused/)
  t.equal(await c, 'c done')
  t.equal(seenByOther, 0, 'one shared transaction, not yet committed while the batch ran')
  t.strictSame(names(other), ['a', 'c'], 'b rolled back alone')
  t.equal(await queue.run(() => insertUser(db, 'd').changes), 1, 'the next turn is a new batch')
})

t.test('if the batch cannot run, every write in it fails', async t => {
  const { db, queue } = await fresh(t)
  const writes = [queue.run(() => insertUser(db, 'x')), queue.run(() => insertUser(db, 'y'))]
  db.close()
  for (const write of writes) await t.rejects(write, /not open/)
})

t.test('if the commit fails, every write of the batch fails and none is kept', async t => {
  const { db, other, queue } = await fresh(t)
  // A dangling reference under deferred foreign keys is refused only by COMMIT.
  const dangling = queue.run(() => {
    db.pragma('defer_foreign_keys = ON')
    db.prepare("INSERT INTO credit_entries (user_id, kind, delta, balance_after, created_at) VALUES (999, 'add', 1, 1, 'x')").run()
  })
  const innocent = queue.run(() => insertUser(db, 'innocent'))
  await t.rejects(dangling, { code: 'SQLITE_CONSTRAINT_FOREIGNKEY' })
  await t.rejects(innocent, { code: 'SQLITE_CONSTRAINT_FOREIGNKEY' })
  t.strictSame(names(other), [])
  t.equal(db.inTransaction, false)
})

// A write that needs a page past max_page_count fails with SQLITE_FULL, and SQLite then rolls
// back the WHOLE transaction, not just the write's savepoint (better-sqlite3's "Caveats").
function fillToTheBrim (db: Db): void {
  db.pragma(`max_page_count = ${db.pragma('page_count', { simple: true }) as number}`)
}
const bigRow = (db: Db) => db.prepare("INSERT INTO idempotency_keys (key, fingerprint, status, body, created_at) VALUES ('big', 'f', 200, @body, 'x')")
  .run({ body: 'x'.repeat(200_000) })

t.test('a write that makes SQLite roll back the whole batch fails alone, with its own error; the others commit', async t => {
  const { db, other, queue } = await fresh(t)
  fillToTheBrim(db)
  const a = queue.run(() => insertUser(db, 'a').changes)
  const b = queue.run(() => bigRow(db))
  const c = queue.run(() => insertUser(db, 'c').changes)
  const d = queue.run(() => { throw new Error('refused by a rule') })
  const e = queue.run(() => insertUser(db, 'e').changes)
  await t.rejects(b, { code: 'SQLITE_FULL' }, 'the real error, not "cannot commit - no transaction is active"')
  t.equal(await a, 1)
  t.equal(await c, 1)
  await t.rejects(d, /refused by a rule/)
  t.equal(await e, 1)
  t.strictSame(names(other), ['a', 'c', 'e'], 'every write answered as done is in the file, and only those')
  t.equal(other.prepare("SELECT count(*) FROM idempotency_keys WHERE key = 'big'").pluck().get(), 0)
  t.equal(db.inTransaction, false)
})

t.test('a write waits for another connection\'s lock without blocking, then commits', async t => {
  const { db, other, queue } = await fresh(t)
  other.exec('BEGIN IMMEDIATE')
  const write = queue.run(() => insertUser(db, 'waited').changes)
  let settled = false
  write.then(() => { settled = true }, () => {})
  // The event loop turns while the write waits: timers fire, and the write is still pending.
  await new Promise(resolve => setTimeout(resolve, 100))
  t.equal(settled, false, 'not answered while the lock is held')
  const later = queue.run(() => insertUser(db, 'later').changes)
  other.exec('COMMIT')
  t.equal(await write, 1)
  t.equal(await later, 1)
  t.strictSame(names(other), ['waited', 'later'], 'in arrival order')
})

t.test('a write that waits past the lock wait is refused DATABASE_BUSY, nothing changed', async t => {
  const { db, other, queue } = await fresh(t, 200)
  other.exec('BEGIN IMMEDIATE')
  const started = Date.now()
  await t.rejects(queue.run(() => insertUser(db, 'late')), { code: 'DATABASE_BUSY', statusCode: 503 })
  t.ok(Date.now() - started >= 200, 'it waited the lock wait first')
  other.exec('COMMIT')
  t.strictSame(names(other), [])
  t.equal(await queue.run(() => insertUser(db, 'now').changes), 1, 'the next write goes through')
})

t.test('database trouble is logged when it starts and when it clears, not per request', async t => {
  const lines: Array<[string, object, string]> = []
  const trouble = new DatabaseTrouble({
    error: (obj, msg) => lines.push(['error', obj, msg]),
    info: (obj, msg) => lines.push(['info', obj, msg])
  })
  trouble.cleared()
  t.strictSame(lines, [], 'nothing to clear')
  for (let i = 0; i < 5; i++) trouble.report('STORAGE_UNAVAILABLE', new Error('disk full'))
  trouble.report('DATABASE_BUSY', new Error('locked'))
  trouble.cleared()
  trouble.cleared()
  t.strictSame(lines.map(([level, , msg]) => [level, msg]), [
    ['error', 'database trouble: requests are answered 503 STORAGE_UNAVAILABLE until it clears'],
    ['error', 'database trouble: requests are answered 503 DATABASE_BUSY until it clears'],
    ['info', 'database trouble cleared: writes commit again']
  ])
})
