import { join } from 'node:path'
import t from 'tap'
import { migrate } from '../src/db/migrate.js'
import { openDatabase } from '../src/db/open.js'
import { WriteQueue } from '../src/db/write-queue.js'
import { tempDir } from './helper.js'

async function fresh (t: Parameters<typeof tempDir>[0]) {
  const path = join(tempDir(t), 'q.db')
  const db = openDatabase(path)
  await migrate(db)
  const other = openDatabase(path)
  t.teardown(() => { db.close(); other.close() })
  return { db, other, queue: new WriteQueue(db) }
}

const insertUser = (db: ReturnType<typeof openDatabase>, name: string) =>
  db.prepare("INSERT INTO users (email, email_key, name, created_at, credits_updated_at) VALUES (@e, @e, @name, 'x', 'x')").run({ e: `${name}@example.com`, name })

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
  t.strictSame(other.prepare('SELECT name FROM users ORDER BY id').pluck().all(), ['a', 'c'], 'b rolled back alone')
  t.equal(await queue.run(() => insertUser(db, 'd').changes), 1, 'the next turn is a new batch')
})

t.test('if the batch cannot run, every write in it fails', async t => {
  const { db, queue } = await fresh(t)
  const writes = [queue.run(() => insertUser(db, 'x')), queue.run(() => insertUser(db, 'y'))]
  db.close()
  for (const write of writes) await t.rejects(write, /not open/)
})
