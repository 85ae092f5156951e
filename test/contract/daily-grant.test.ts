import t from 'tap'
import { utcDay } from '../../src/credits/daily-grant.js'
import { build, freshDatabase, get, post, sql, value } from '../helper.js'
import { runCommand } from '../process.js'

const on = { DAILY_CREDITS_ENABLED: 'true' }
const at = (iso: string) => () => new Date(iso)
const credits = async (app: Awaited<ReturnType<typeof build>>, id: number) => (await get(app, `/api/credits/${id}`)).body.credits as number
const grants = async (app: Awaited<ReturnType<typeof build>>) =>
  await sql(app, 'SELECT user_id, day, amount FROM daily_grants ORDER BY day, user_id')
const runs = async (app: Awaited<ReturnType<typeof build>>) =>
  await sql(app, 'SELECT day, trigger, users_credited FROM daily_grant_runs ORDER BY id')

// The catch-up runs once the server listens: these tests listen on a free port of 127.0.0.1.
async function started (t: Parameters<typeof build>[0], options: Parameters<typeof build>[1]): ReturnType<typeof build> {
  const app = await build(t, options)
  await app.listen({ port: 0, host: '127.0.0.1' })
  await app.dailyCatchUp
  return app
}

// A database with `users` users and no grant yet, for the apps of a test to take turns on.
async function seed (t: Parameters<typeof build>[0], users: number): Promise<Record<string, string>> {
  const database = await freshDatabase(t)
  const app = await build(t, { database })
  for (let i = 1; i <= users; i++) await post(app, '/users', { email: `u${i}@example.com`, name: `U${i}` })
  await app.close()
  return database
}

t.test('utcDay is the UTC calendar day', async t => {
  t.equal(utcDay(new Date('2026-11-22T23:59:59.999Z')), '2026-11-22')
  t.equal(utcDay(new Date('2026-11-23T00:00:00.000Z')), '2026-11-23')
  t.equal(utcDay(new Date('2026-11-22T23:30:00-02:00')), '2026-11-23')
})

t.test('on start-up a day with no grant yet is caught up; a second start the same day grants nothing', async t => {
  const database = await seed(t, 2)
  const ready = await build(t, { database, env: on, now: at('2026-11-22T08:00:00Z') })
  t.equal(await credits(ready, 1), 0, 'an app that is ready but not listening has not granted')
  t.equal(ready.dailyGrant!.isRunning(), false, 'nor scheduled')
  await ready.close()
  const first = await started(t, { database, env: on, now: at('2026-11-22T08:00:00Z') })
  t.equal(await credits(first, 1), 5)
  t.equal(await credits(first, 2), 5)
  await first.close()
  // A restart the same day: already granted.
  const again = await started(t, { database, env: on, now: at('2026-11-22T23:59:59Z') })
  t.equal(await credits(again, 1), 5)
  await again.close()
  // The next day: granted again, with the configured amount.
  const next = await started(t, { database, env: { ...on, DAILY_CREDITS_AMOUNT: '3' }, now: at('2026-11-23T00:00:01Z') })
  t.equal(await credits(next, 1), 8)
  t.strictSame(await grants(next), [
    { user_id: 1, day: '2026-11-22', amount: 5 }, { user_id: 2, day: '2026-11-22', amount: 5 },
    { user_id: 1, day: '2026-11-23', amount: 3 }, { user_id: 2, day: '2026-11-23', amount: 3 }
  ])
  const history = (await get(next, '/api/credits/1/history')).body.items
  t.strictSame(history.map((e: { kind: string, delta: number, balance_after: number }) => [e.kind, e.delta, e.balance_after]),
    [['daily_grant', 3, 8], ['daily_grant', 5, 5]])
  t.strictSame(await runs(next), [
    { day: '2026-11-22', trigger: 'startup', users_credited: 2 },
    { day: '2026-11-23', trigger: 'startup', users_credited: 2 }
  ], 'the restart on the 22nd did not run a grant at all')
})

t.test('the same day twice grants once; a user created after the day\'s run waits for the next day', async t => {
  const database = await seed(t, 1)
  const app = await started(t, { database, env: on, now: at('2026-11-22T00:00:00Z') })
  t.strictSame((await app.storage.write(app.credits.grantDaily('2026-11-22', 5, 'command'))), { day: '2026-11-22', trigger: 'command', users_credited: 0 })
  await post(app, '/users', { email: 'late@example.com', name: 'Late' })
  t.equal(await credits(app, 2), 0)
  t.strictSame((await app.storage.write(app.credits.grantDaily('2026-11-22', 5, 'command'))).users_credited, 1, 'a run by hand tops up who has none today')
  t.equal(await credits(app, 1), 5)
  t.equal(await credits(app, 2), 5)
})

t.test('the schedule fires at 00:00 UTC and uses the injected clock', async t => {
  const database = await seed(t, 1)
  let clock = new Date('2026-11-22T12:00:00Z')
  const app = await started(t, { database, env: on, now: () => clock })
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
  t.strictSame((await runs(app)).slice(1), [
    { day: '2026-11-23', trigger: 'schedule', users_credited: 1 },
    { day: '2026-11-23', trigger: 'schedule', users_credited: 0 }
  ])
})

t.test('a scheduled run that fails is logged and the service goes on', async t => {
  const app = await build(t, { env: on })
  const logged: unknown[] = []
  app.log.error = ((obj: unknown) => { logged.push(obj) }) as typeof app.log.error
  app.credits.grantDaily = () => { throw new Error('database is locked') }
  await app.dailyGrant!.trigger()
  t.equal(logged.length, 1)
  t.match(logged[0], { err: { message: 'database is locked' } })
  t.equal((await get(app, '/health')).status, 200, 'the service goes on')
})

t.test('a start-up catch-up that fails is logged and the service goes on', async t => {
  const database = await seed(t, 1)
  const app = await build(t, { database, env: on })
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
  const database = await seed(t, 1)
  const app = await build(t, { database, env: { DAILY_CREDITS_ENABLED: 'false' } })
  t.equal(app.dailyGrant, undefined)
  t.equal(await credits(app, 1), 0)
})

t.test('a user at the largest balance is skipped, not everyone', async t => {
  const database = await seed(t, 2)
  const app = await build(t, { database })
  await post(app, '/api/credits/1/external-update', { credits: Number.MAX_SAFE_INTEGER - 4 })
  t.equal((await app.storage.write(app.credits.grantDaily('2026-11-22', 5, 'command'))).users_credited, 1)
  t.equal(await credits(app, 1), Number.MAX_SAFE_INTEGER - 4)
  t.equal(await credits(app, 2), 5)
})

// The operator command, a process of its own on the same database.
const runDaily = async (database: Record<string, string>) => await runCommand('credits-daily', database)

t.test('credits:daily run twice in a row credits each user once', async t => {
  const database = await seed(t, 2)
  const today = utcDay(new Date())
  const first = await runDaily(database)
  t.equal(first.code, 0, first.stderr)
  t.equal(first.stdout, `daily credits for ${today}: credited 2 user(s) with 5 each\n`)
  const second = await runDaily(database)
  t.equal(second.stdout, `daily credits for ${today}: credited 0 user(s) with 5 each\n`)
  const app = await build(t, { database })
  t.strictSame(await sql(app, 'SELECT id, credits FROM users ORDER BY id'), [{ id: 1, credits: 5 }, { id: 2, credits: 5 }])
})

t.test('credits:daily from three processes at once still grants each user once', async t => {
  const database = await seed(t, 50)
  const runs = await Promise.all([runDaily(database), runDaily(database), runDaily(database)])
  t.strictSame(runs.map(r => r.code), [0, 0, 0], runs.map(r => r.stderr).join(''))
  const credited = runs.map(r => Number(/credited (\d+) user/.exec(r.stdout)![1])).sort((x, y) => y - x)
  t.strictSame(credited, [50, 0, 0], 'one process granted everyone, the others no one')
  const app = await build(t, { database })
  t.equal(await value(app, 'SELECT count(*) FROM users WHERE credits = 5'), 50)
  t.equal(await value(app, 'SELECT count(*) FROM credit_entries'), 50)
})

t.test('credits:daily with a bad variable says so and exits 1', async t => {
  const { code, stderr } = await runCommand('credits-daily', { ...await freshDatabase(t), DAILY_CREDITS_AMOUNT: 'lots' })
  t.equal(code, 1)
  t.equal(stderr, 'tally: invalid configuration: DAILY_CREDITS_AMOUNT must be an integer from 1 to 1000000000 (got "lots")\n')
})
