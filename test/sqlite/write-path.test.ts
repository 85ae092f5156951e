import Database from 'better-sqlite3'
import t from 'tap'
import { resetDatabase } from '../../src/storage/sqlite/reset.js'
import { build, call, canonicalAdds, get, post } from '../helper.js'

// The write path on SQLite: writes queued together share one transaction (the group commit), a
// savepoint each, and a read never waits for another process's write lock.

t.test('a flush leaves the foreign-key checks of the writes after it in its batch as they were', async t => {
  const app = await build(t)
  t.equal((await post(app, '/users', { email: 'ada@example.com', name: 'Ada' })).status, 201)
  const orphan = app.db.prepare("INSERT INTO credit_entries (user_id, kind, delta, balance_after, created_at) VALUES (99, 'add', 1, 1, '2026-11-22T00:00:00.000Z')")
  // Queued in one turn of the event loop: one batch, one transaction, a savepoint each.
  const [flush, broken, create] = await Promise.allSettled([
    app.writes.run(() => { resetDatabase(app.db) }),
    app.writes.run(() => orphan.run()),
    app.storage.write(app.users.create('bob@example.com', 'Bob'))
  ])
  t.equal(flush.status, 'fulfilled', 'the flush committed')
  t.match(broken, { status: 'rejected', reason: { code: 'SQLITE_CONSTRAINT_FOREIGNKEY' } }, 'the broken write failed on its own')
  t.match(create, { status: 'fulfilled', value: { id: 1, email: 'bob@example.com' } })
  t.strictSame((await get(app, '/users')).body.items.map((u: { email: string }) => u.email), ['bob@example.com'])
  t.equal(app.db.prepare('SELECT count(*) FROM credit_entries').pluck().get(), 0)
})

t.test('a dry-run spend is a read: it does not wait for another process\'s write lock', async t => {
  const app = await build(t)
  t.equal((await post(app, '/add', canonicalAdds[0])).status, 200)
  const other = new Database(app.db.name)
  t.teardown(() => { if (other.inTransaction) other.exec('ROLLBACK'); other.close() })
  other.exec('BEGIN IMMEDIATE')
  const asked = Date.now()
  const res = await post(app, '/spend?dry_run=true', { points: 100 })
  t.equal(res.status, 200)
  t.strictSame(res.body, [{ payer: 'DANNON', points: -100 }])
  t.ok(Date.now() - asked < 1000, 'answered while the lock is held')
  other.exec('ROLLBACK')
  t.strictSame((await get(app, '/balance')).body, { DANNON: 300 }, 'and nothing changed')
  // With a key, a dry run's answer is stored like any keyed request's, through the write path.
  const keyed = await call(app, { method: 'POST', url: '/spend?dry_run=true', headers: { 'idempotency-key': 'dry' }, payload: { points: 100 } })
  t.strictSame(keyed.body, [{ payer: 'DANNON', points: -100 }])
  const again = await call(app, { method: 'POST', url: '/spend?dry_run=true', headers: { 'idempotency-key': 'dry' }, payload: { points: 100 } })
  t.equal(again.headers['idempotent-replayed'], 'true')
  t.strictSame((await get(app, '/balance')).body, { DANNON: 300 })
})
