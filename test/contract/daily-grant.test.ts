import { join } from 'node:path'
import t from 'tap'
import { utcDay } from '../../src/credits/daily-grant.js'
import { SqliteCredits } from '../../src/credits/sqlite.js'
import { migrate } from '../../src/storage/sqlite/migrate.js'
import { openDatabase } from '../../src/storage/sqlite/open.js'
import { build, get, post, tempDir } from '../helper.js'
import { runCommand } from '../process.js'

const on = { DAILY_CREDITS_ENABLED: 'true' }
const at = (iso: string) => () => new Date(iso)
const credits = async (app: Awaited<ReturnType<typeof build>>, id: number) => (await get(app, `/api/credits/${id}`)).body.credits as number
const grants = (app: Awaited<ReturnType<typeof build>>) =>
  app.db.prepare('SELECT user_id, day, amount FROM daily_grants ORDER BY day, user_id').all()

// The catch-up runs once the server listens: these tests listen on a free port of 127.0.0.1.
async function started (t: Parameters<typeof build>[0], options: Parameters<typeof build>[1]): ReturnType<typeof build> {
  const app = await build(t, options)
  await app.listen({ port: 0, host: '127.0.0.1' })
  await app.dailyCatchUp
  return app
}

// Users created on a database whose grant for the day already ran, so only the test grants.
async function seed (t: Parameters<typeof build>[0], users: number): Promise<string> {
  const dbPath = join(tempDir(t), 'app.db')
  const app = await build(t, { dbPath })
  for (let i = 1; i <= users; i++) await post(app, '/users', { email: `u${i}@example.com`, name: `U${i}` })
  await app.close()
  return dbPath
}

t.test('utcDay is the UTC calendar day', async t => {
  t.equal(utcDay(new Date('2026-11-22T23:59:59.999Z')), '2026-11-22')
  t.equal(utcDay(new Date('2026-11-23T00:00:00.000Z')), '2026-11-23')
  t.equal(utcDay(new Date('2026-11-22T23:30:00-02:00')), '2026-11-23')
})

t.test('on start-up a day with no grant yet is caught up; a second start the same day grants nothing', async t => {
  const dbPath = await seed(t, 2)
  const ready = await build(t, { dbPath, env: on, now: at('2026-11-22T08:00:00Z') })
  t.equal(await credits(ready, 1), 0, 'an app that is ready but not listening has not granted')
  t.equal(ready.dailyGrant!.isRunning(), false, 'nor scheduled')
  await ready.close()
  const first = await started(t, { dbPath, env: on, now: at('2026-11-22T08:00:00Z') })
  t.equal(await credits(first, 1), 5)
  t.equal(await credits(first, 2), 5)
  await first.close()
  // A restart the same day: already granted.
  const again = await started(t, { dbPath, env: on, now: at('2026-11-22T23:59:59Z') })
  t.equal(await credits(again, 1), 5)
  await again.close()
  // The next day: granted again, with the configured amount.
  const next = await started(t, { dbPath, env: { ...on, DAILY_CREDITS_AMOUNT: '3' }, now: at('2026-11-23T00:00:01Z') })
  t.equal(await credits(next, 1), 8)
  t.strictSame(grants(next), [
    { user_id: 1, day: '2026-11-22', amount: 5 }, { user_id: 2, day: '2026-11-22', amount: 5 },
    { user_id: 1, day: '2026-11-23', amount: 3 }, { user_id: 2, day: '2026-11-23', amount: 3 }
  ])
  const history = (await get(next, '/api/credits/1/history')).body.items
  t.strictSame(history.map((e: { kind: string, delta: number, balance_after: number }) => [e.kind, e.delta, e.balance_after]),
    [['daily_grant', 3, 8], ['daily_grant', 5, 5]])
  const runs = next.db.prepare('SELECT day, trigger, users_credited FROM daily_grant_runs ORDER BY id').all()
  t.strictSame(runs, [
    { day: '2026-11-22', trigger: 'startup', users_credited: 2 },
    { day: '2026-11-23', trigger: 'startup', users_credited: 2 }
  ], 'the restart on the 22nd did not run a grant at all')
})

t.test('the same day twice grants once; a user created after the day\'s run waits for the next day', async t => {
  const dbPath = await seed(t, 1)
  const app = await started(t, { dbPath, env: on, now: at('2026-11-22T00:00:00Z') })
  t.strictSame((await app.storage.write(app.credits.grantDaily('2026-11-22', 5, 'command'))), { day: '2026-11-22', trigger: 'command', users_credited: 0 })
  await post(app, '/users', { email: 'late@example.com', name: 'Late' })
  t.equal(await credits(app, 2), 0)
  t.strictSame((await app.storage.write(app.credits.grantDaily('2026-11-22', 5, 'command'))).users_credited, 1, 'a run by hand tops up who has none today')
  t.equal(await credits(app, 1), 5)
  t.equal(await credits(app, 2), 5)
})

t.test('the schedule fires at 00:00 UTC and uses the injected clock', async t => {
  const dbPath = await seed(t, 1)
  let clock = new Date('2026-11-22T12:00:00Z')
  const app = await started(t, { dbPath, env: on, now: () => clock })
  const job = app.dailyGrant!
  t.equal(job.isRunning(), true, 'scheduled once listening')
  const next = job.nextRun()!
  t.equal(next.getUTCHours(), 0)
  t.equal(next.getUTCMinutes(), 0)
  t.ok(next.getTime() - Date.now() <= 24 * 3600 * 1000, 'within a day')
  clock = new Date('2026-11-23T00:00:00Z')
  await job.trigger()
  t.equal(await credits(app, 1), 10, 'the 22nd at start-up, the 23rd by the schedule')
  await job.trigger()
  t.equal(await credits(app, 1), 10, 'a second firing the same day grants nothing')
  const runs = app.db.prepare('SELECT day, trigger, users_credited FROM daily_grant_runs ORDER BY id').all()
  t.strictSame(runs.slice(1), [
    { day: '2026-11-23', trigger: 'schedule', users_credited: 1 },
    { day: '2026-11-23', trigger: 'schedule', users_credited: 0 }
  ])
})

t.test('a scheduled run that fails is logged and the service goes on', async t => {
  const app = await build(t, { env: on })
  const logged: unknown[] = []
  app.log.error = ((obj: unknown) => { logged.push(obj) }) as typeof app.log.error
  app.db.close()
  await app.dailyGrant!.trigger()
  t.equal(logged.length, 1)
  t.match(logged[0], { err: { message: /database connection is not open/ } })
})

t.test('a start-up catch-up that fails is logged and the service goes on', async t => {
  const dbPath = await seed(t, 1)
  const app = await build(t, { dbPath, env: on })
  const logged: Array<{ obj: unknown, msg: unknown }> = []
  app.log.error = ((obj: unknown, msg: unknown) => { logged.push({ obj, msg }) }) as typeof app.log.error
  app.credits.catchUp = () => { throw new Error('database is locked') }
  await app.listen({ port: 0, host: '127.0.0.1' })
  await app.dailyCatchUp
  t.match(logged, [{ obj: { err: { message: 'database is locked' } }, msg: 'daily credits catch-up failed' }])
  t.equal(app.dailyGrant!.isRunning(), true, 'the schedule still runs')
  t.equal((await get(app, '/health')).status, 200)
  t.equal(await credits(app, 1), 0)
})

t.test('DAILY_CREDITS_ENABLED=false: no schedule and no start-up grant', async t => {
  const dbPath = await seed(t, 1)
  const app = await build(t, { dbPath, env: { DAILY_CREDITS_ENABLED: 'false' } })
  t.equal(app.dailyGrant, undefined)
  t.equal(await credits(app, 1), 0)
})

t.test('a user at the largest balance is skipped, not everyone', async t => {
  const dbPath = await seed(t, 2)
  const app = await build(t, { dbPath })
  await post(app, '/api/credits/1/external-update', { credits: Number.MAX_SAFE_INTEGER - 4 })
  t.equal((await app.storage.write(app.credits.grantDaily('2026-11-22', 5, 'command'))).users_credited, 1)
  t.equal(await credits(app, 1), Number.MAX_SAFE_INTEGER - 4)
  t.equal(await credits(app, 2), 5)
})

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

t.test('credits:daily run twice in a row credits each user once', async t => {
  const dbPath = await seed(t, 2)
  const today = utcDay(new Date())
  const first = await runDaily(dbPath)
  t.equal(first.code, 0)
  t.equal(first.stdout, `daily credits for ${today}: credited 2 user(s) with 5 each\n`)
  const second = await runDaily(dbPath)
  t.equal(second.stdout, `daily credits for ${today}: credited 0 user(s) with 5 each\n`)
  const db = openDatabase(dbPath)
  t.teardown(() => db.close())
  t.strictSame(db.prepare('SELECT id, credits FROM users ORDER BY id').all(), [{ id: 1, credits: 5 }, { id: 2, credits: 5 }])
})

t.test('credits:daily from three processes at once still grants each user once', async t => {
  const dbPath = await seed(t, 50)
  const runs = await Promise.all([runDaily(dbPath), runDaily(dbPath), runDaily(dbPath)])
  t.strictSame(runs.map(r => r.code), [0, 0, 0], runs.map(r => r.stderr).join(''))
  const credited = runs.map(r => Number(/credited (\d+) user/.exec(r.stdout)![1])).sort((x, y) => y - x)
  t.strictSame(credited, [50, 0, 0], 'one process granted everyone, the others no one')
  const db = openDatabase(dbPath)
  t.teardown(() => db.close())
  t.equal(db.prepare('SELECT count(*) FROM users WHERE credits = 5').pluck().get(), 50)
  t.equal(db.prepare('SELECT count(*) FROM credit_entries').pluck().get(), 50)
})

t.test('credits:daily with a bad variable says so and exits 1', async t => {
  const { code, stderr } = await runCommand('credits-daily', { DB_PATH: join(tempDir(t), 'x.db'), DAILY_CREDITS_AMOUNT: 'lots' })
  t.equal(code, 1)
  t.equal(stderr, 'tally: invalid configuration: DAILY_CREDITS_AMOUNT must be an integer from 1 to 1000000000 (got "lots")\n')
})

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
