import t from 'tap'
import { sweepExpired } from '../../src/points/expiry-sweep.js'
import { build, get, post, sql, value } from '../helper.js'

// The minute sweep settles ledgers nobody touches: their expirations are written and their holds
// expired, with no request. Requests never depend on it (every one settles its ledger first).

const expirations = async (app: Awaited<ReturnType<typeof build>>) =>
  await sql(app, 'SELECT ledger_id, lot_id, payer, points, expired_at, hold_id FROM point_expirations ORDER BY id')

t.test('the sweep settles every ledger with something due, and nothing else', async t => {
  let clock = new Date('2026-03-01T00:00:00Z')
  const app = await build(t, { now: () => clock, env: { EXPIRY_SWEEP_ENABLED: 'false' } })
  t.equal(app.expirySweep, undefined, 'off: no job')
  for (const email of ['a@example.com', 'b@example.com', 'c@example.com']) await post(app, '/users', { email, name: 'U' })
  await post(app, '/add', { payer: 'P', points: 10, timestamp: '2026-01-01T00:00:00Z', expires_at: '2026-04-01T00:00:00Z' })
  await post(app, '/users/1/points/add', { payer: 'Q', points: 7, timestamp: '2026-01-01T00:00:00Z', expires_at: '2026-04-01T00:00:00.001Z' })
  await post(app, '/users/2/points/add', { payer: 'R', points: 5, timestamp: '2026-01-01T00:00:00Z' })
  t.equal((await post(app, '/users/2/points/holds', { points: 2, expires_at: '2026-03-15T00:00:00Z' })).status, 201)
  await post(app, '/users/3/points/add', { payer: 'S', points: 3, timestamp: '2026-01-01T00:00:00Z', expires_at: '2027-01-01T00:00:00Z' })
  t.equal(await sweepExpired(app), 0, 'nothing due yet')

  clock = new Date('2026-04-01T00:00:00.001Z')
  const before = await sql(app, 'SELECT * FROM payer_balances ORDER BY ledger_id, payer')
  t.equal(await sweepExpired(app), 3, 'ledgers 0 and 1 (lots) and 2 (a hold), not 3')
  t.strictSame(await expirations(app), [
    { ledger_id: 0, lot_id: 1, payer: 'P', points: 10, expired_at: '2026-04-01T00:00:00.000Z', hold_id: null },
    { ledger_id: 1, lot_id: 2, payer: 'Q', points: 7, expired_at: '2026-04-01T00:00:00.001Z', hold_id: null }
  ])
  t.equal(await value(app, "SELECT count(*) FROM point_holds WHERE status = 'expired' AND resolved_at = '2026-03-15T00:00:00.000Z'"), 1)
  t.strictSame(await sql(app, 'SELECT * FROM payer_balances ORDER BY ledger_id, payer'), [
    { ...before[0], balance: 0 }, { ...before[1], balance: 0 }, { ...before[2], balance: 5, held: 0 }, before[3]
  ])
  t.equal(await sweepExpired(app), 0, 'a second sweep finds nothing')
  t.strictSame((await get(app, '/balance?at=2026-03-20T00:00:00Z')).body, { P: 10 }, 'history dated when things expired')
  t.strictSame((await get(app, '/users/2/points/balance?at=2026-03-20T00:00:00Z')).body, { R: 5 }, 'the hold gave its points back at its expiry')
  t.strictSame((await get(app, '/users/2/points/balance?at=2026-03-14T00:00:00Z')).body, { R: 3 })
})

t.test('the sweep goes on past one round of ledgers', async t => {
  let clock = new Date('2026-03-01T00:00:00Z')
  const app = await build(t, { now: () => clock, env: { EXPIRY_SWEEP_ENABLED: 'false' } })
  const users = 105
  for (let i = 1; i <= users; i++) {
    await post(app, '/users', { email: `u${i}@example.com`, name: 'U' })
    await post(app, `/users/${i}/points/add`, { payer: 'P', points: 1, timestamp: '2026-01-01T00:00:00Z', expires_at: '2026-03-02T00:00:00Z' })
  }
  clock = new Date('2026-03-02T00:00:00Z')
  t.equal(await sweepExpired(app), users)
  t.equal(await value(app, 'SELECT count(*) FROM point_expirations'), users)
})

t.test('on by default: the job runs once the server listens, logs what it settled or why it failed, and stops with it', async t => {
  let clock = new Date('2026-03-01T00:00:00Z')
  const app = await build(t, { now: () => clock, env: { EXPIRY_SWEEP_ENABLED: 'true' } })
  const logged: unknown[][] = []
  app.log.info = (...args: unknown[]) => { logged.push(['info', ...args]) }
  app.log.error = (...args: unknown[]) => { logged.push(['error', ...args]) }
  t.ok(app.expirySweep, 'the job exists')
  t.notOk(app.expirySweep!.isRunning(), 'not before listening: an app that only injects never sweeps')
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.ok(app.expirySweep!.isRunning(), 'once listening')
  t.ok(app.expirySweep!.nextRun()!.getTime() - Date.now() <= 60_000, 'within the minute')

  await post(app, '/add', { payer: 'P', points: 10, timestamp: '2026-01-01T00:00:00Z', expires_at: '2026-03-02T00:00:00Z' })
  clock = new Date('2026-03-02T00:00:00Z')
  logged.length = 0
  await app.expirySweep!.trigger()
  t.strictSame(logged, [['info', { ledgers: 1 }, 'expiry sweep settled ledgers']])
  await app.expirySweep!.trigger()
  t.equal(logged.length, 1, 'a sweep that settles nothing says nothing')
  const failure = new Error('the database went away')
  app.points.dueLedgers = async () => { throw failure }
  await app.expirySweep!.trigger()
  t.strictSame(logged[1], ['error', { err: failure }, 'expiry sweep failed'], 'a failed sweep is logged; the next minute tries again')
  t.ok(app.expirySweep!.isRunning())
  await app.close()
  t.notOk(app.expirySweep!.isRunning(), 'stopped on close')
})
