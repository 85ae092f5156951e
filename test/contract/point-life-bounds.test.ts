import t from 'tap'
import { expectError, get, invariants, post, snapshot } from '../helper.js'
import { clockedApp, reverse, voidHold } from './clocked.js'

// Issue 13, the bound of 2^53−1: held points come back to the balance when their hold is voided,
// captured in part or expires, and a reversal gives spent points back. So an add counts held
// points against the bound, and a reversal is refused past it: no balance or total ever passes it.

const MAX = Number.MAX_SAFE_INTEGER
const C0 = '2024-03-01T09:00:00.100Z'
const at = (payer: string, points: number) => ({ payer, points, timestamp: '2024-01-01T00:00:00Z' })

t.test('an add counts the payer\'s and the ledger\'s held points; a void then gives back at most 2^53−1', async t => {
  const { app } = await clockedApp(t, C0)
  t.equal((await post(app, '/add', at('A', MAX - 10))).status, 200)
  t.equal((await post(app, '/holds', { points: MAX - 10 })).status, 201)
  t.strictSame((await get(app, '/balance')).body, { A: 0 })
  const before = await snapshot(app)
  const payer = await post(app, '/add', at('A', 11))
  expectError(t, payer, 400, 'BALANCE_TOO_LARGE')
  t.equal(payer.body.message, 'The resulting balance of payer A would exceed 9007199254740991')
  const ledger = await post(app, '/add', at('B', 11))
  expectError(t, ledger, 400, 'BALANCE_TOO_LARGE')
  t.equal(ledger.body.message, 'The resulting balance of the ledger would exceed 9007199254740991')
  const batch = await post(app, '/add/batch', { adds: [at('B', 5), at('B', 6)] })
  expectError(t, batch, 400, 'BATCH_REJECTED')
  t.match(batch.body, { index: 1, message: /adds\[1\] refused \(BALANCE_TOO_LARGE\): .*the ledger/ })
  t.strictSame(await snapshot(app), before, 'nothing changed')

  t.equal((await post(app, '/add/batch', { adds: [at('A', 4), at('B', 6)] })).status, 200, 'up to the bound, held included')
  t.strictSame((await voidHold(app, 1)).body.status, 'voided')
  t.strictSame((await get(app, '/balance')).body, { A: MAX - 6, B: 6 })
  t.strictSame((await get(app, '/balance/details')).body, {
    A: { available: MAX - 6, held: 0, expiring: [] },
    B: { available: 6, held: 0, expiring: [] }
  })
  expectError(t, await post(app, '/add', at('B', 1)), 400, 'BALANCE_TOO_LARGE')
  t.strictSame(await invariants(app), [], 'db:check holds')
})

t.test('a hold that expires, or the uncaptured rest of a capture, gives back within the bound', async t => {
  const { app, clock } = await clockedApp(t, C0)
  await post(app, '/add', at('A', MAX - 1))
  await post(app, '/holds', { points: MAX - 1, expires_at: '2024-03-02T00:00:00Z' })
  await post(app, '/add', at('A', 1))
  clock.set('2024-03-02T00:00:00.000Z')
  t.strictSame((await get(app, '/balance')).body, { A: MAX }, 'the expired hold gave its points back')
  t.match((await get(app, '/holds/1')).body, { status: 'expired' })

  await post(app, '/holds', { points: MAX })
  expectError(t, await post(app, '/add', at('A', 1)), 400, 'BALANCE_TOO_LARGE')
  const captured = await post(app, '/holds/2/capture', { points: 1 })
  t.equal(captured.status, 200)
  t.strictSame(captured.body.spent, [{ payer: 'A', points: -1 }])
  t.strictSame((await get(app, '/balance')).body, { A: MAX - 1 })
  t.strictSame(await invariants(app), [], 'db:check holds')
})

t.test('a reversal may not take a payer or the ledger past 2^53−1, held points included', async t => {
  const { app } = await clockedApp(t, C0)
  await post(app, '/add', at('A', MAX))
  t.strictSame((await post(app, '/spend', { points: MAX })).body, [{ payer: 'A', points: -MAX }])
  await post(app, '/add', at('A', MAX - 2))
  await post(app, '/holds', { points: 1 })
  const before = await snapshot(app)
  const payer = await reverse(app, 1, { points: 3 })
  expectError(t, payer, 400, 'BALANCE_TOO_LARGE')
  t.equal(payer.body.message, 'The resulting balance of payer A would exceed 9007199254740991')
  expectError(t, await reverse(app, 1), 400, 'BALANCE_TOO_LARGE')
  t.strictSame(await snapshot(app), before, 'nothing changed')
  t.equal((await reverse(app, 1, { points: 2 })).status, 201, 'up to the bound, held included')
  t.strictSame((await get(app, '/balance')).body, { A: MAX - 1 })

  // The ledger: another payer's points fill it, so giving A back even 1 would pass the bound.
  const ledgerApp = (await clockedApp(t, C0)).app
  await post(ledgerApp, '/add', at('A', MAX))
  await post(ledgerApp, '/spend', { points: MAX })
  await post(ledgerApp, '/add', at('B', MAX))
  const full = await snapshot(ledgerApp)
  const ledger = await reverse(ledgerApp, 1, { points: 1 })
  expectError(t, ledger, 400, 'BALANCE_TOO_LARGE')
  t.equal(ledger.body.message, 'The resulting balance of the ledger would exceed 9007199254740991')
  t.strictSame(await snapshot(ledgerApp), full, 'nothing changed')
  await post(ledgerApp, '/spend', { points: 1 })
  t.equal((await reverse(ledgerApp, 1, { points: 1 })).status, 201)
  t.strictSame((await get(ledgerApp, '/balance')).body, { A: 1, B: MAX - 1 })
  t.strictSame(await invariants(ledgerApp), [], 'db:check holds')
})
