import { join } from 'node:path'
import t from 'tap'
import { SqliteCredits } from '../../src/credits/sqlite.js'
import { migrate } from '../../src/storage/sqlite/migrate.js'
import { openDatabase } from '../../src/storage/sqlite/open.js'
import { build, post, tempDir } from '../helper.js'
import { runCommand } from '../process.js'

// The daily grant on a SQLite file: two connections to it, and the command on a file it is
// given (test/contract/daily-grant.test.ts has what both engines do).

async function seed (t: Parameters<typeof build>[0], users: number): Promise<string> {
  const dbPath = join(tempDir(t), 'app.db')
  const app = await build(t, { dbPath })
  for (let i = 1; i <= users; i++) await post(app, '/users', { email: `u${i}@example.com`, name: `U${i}` })
  await app.close()
  return dbPath
}

t.test('two connections to the same file grant once', async t => {
  const dbPath = await seed(t, 3)
  const a = openDatabase(dbPath)
  const b = openDatabase(dbPath)
  t.teardown(() => { a.close(); b.close() })
  const repoA = new SqliteCredits(a, () => new Date())
  const repoB = new SqliteCredits(b, () => new Date())
  t.equal(a.transaction(repoA.catchUp('2026-11-22', 5).run).immediate()!.users_credited, 3)
  t.equal(b.transaction(repoB.catchUp('2026-11-22', 5).run).immediate(), null, 'the other connection sees the day ran')
  t.equal(b.transaction(repoB.grantDaily('2026-11-22', 5, 'command').run).immediate().users_credited, 0)
  t.equal(a.prepare('SELECT sum(credits) FROM users').pluck().get(), 15)
})

const runDaily = async (dbPath: string) => await runCommand('credits-daily', { DB_PATH: dbPath })

t.test('a migrated database file is all the command needs', async t => {
  const dbPath = join(tempDir(t), 'fresh.db')
  const db = openDatabase(dbPath)
  await migrate(db)
  db.close()
  const run = await runDaily(dbPath)
  t.match(run.stdout, /credited 0 user\(s\)/)
})

t.test('credits:daily on a file it cannot open says why and exits 1', async t => {
  const dir = tempDir(t)
  const run = await runDaily(dir)
  t.equal(run.code, 1)
  t.equal(run.stderr, `tally: cannot open DB_PATH "${dir}": SQLITE_CANTOPEN: unable to open database file\n`)
})
