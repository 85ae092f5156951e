import t from 'tap'
import { build, get, post, sql } from '../helper.js'

// Issue 10, item 5: the deposit window's total is exact and never overflows, however many
// deposits of the largest amount one user has in it.

const MAX_AMOUNT = '9999999999999.99'
const MAX_CENTS = 999_999_999_999_999n

/** Cents as the API writes them, computed in BigInt. */
const money = (cents: bigint): string => `${cents / 100n}.${String(cents % 100n).padStart(2, '0')}`

t.test('a window total past 2^53 cents is stored exactly', async t => {
  const app = await build(t)
  for (let i = 1; i <= 11; i++) {
    const res = await post(app, '/event', { type: 'deposit', amount: MAX_AMOUNT, user_id: 3, time: 10 })
    t.equal(res.status, 200, `deposit ${i}`)
  }
  const alerts = (await get(app, '/alerts?user_id=3&code=123')).body.items as Array<{ details: { total: string, deposits: number } }>
  t.equal(alerts.length, 11, 'each deposit is over the 200 limit')
  // Newest first: the 11th deposit's window holds all eleven.
  t.strictSame(alerts.map(a => a.details.total), [11n, 10n, 9n, 8n, 7n, 6n, 5n, 4n, 3n, 2n, 1n].map(n => money(n * MAX_CENTS)))
  t.equal(alerts[0]!.details.total, '109999999999999.89', 'not .88, as a double would have it')
  const [view] = await sql<{ details: string }>(app, 'SELECT details FROM alert_details WHERE user_id = 3 AND code = 123 ORDER BY alert_id DESC LIMIT 1')
  t.equal(JSON.parse(view!.details).total, '109999999999999.89', 'the alert_details view shows the same figure')
})

t.test('a window total past int64 is no 5xx and exact, and blocks nobody', async t => {
  const app = await build(t)
  // 9,300 deposits of the largest amount at one time: their sum in cents passes 2^63 − 1 (at 9,224).
  const deposits = 9_300
  // One statement either engine runs: a recursive count makes the rows.
  await sql(app, 'INSERT INTO events (user_id, type, amount, time, created_at) ' +
    'WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) ' +
    `SELECT 1, 'deposit', ${MAX_CENTS}, 1000, '2026-01-01T00:00:00.000Z' FROM n`, deposits)
  t.ok(BigInt(deposits) * MAX_CENTS > 2n ** 63n - 1n, 'the window is past int64')

  const res = await post(app, '/event', { type: 'deposit', amount: MAX_AMOUNT, user_id: 1, time: 1000 })
  t.equal(res.status, 200, 'no 5xx')
  t.strictSame(res.body, { alert: true, alert_codes: [123, 500], user_id: 1 })
  const alert = (await get(app, '/alerts?user_id=1&code=123')).body.items[0]
  t.strictSame(alert.details, {
    window_start: 970,
    window_end: 1000,
    deposits: deposits + 1,
    total: money(BigInt(deposits + 1) * MAX_CENTS),
    limit: '200.00'
  }, 'the exact total')
  t.equal(alert.details.total, '93009999999999906.99', '9,301 × 9999999999999.99')

  // The user's next events, and another user's, are answered as ever.
  const withdrawal = await post(app, '/event', { type: 'withdraw', amount: '1.00', user_id: 1, time: 1001 })
  t.equal(withdrawal.status, 200)
  const later = await post(app, '/event', { type: 'deposit', amount: '1.00', user_id: 1, time: 1002 })
  t.equal(later.status, 200)
  t.equal((await get(app, '/alerts?user_id=1&code=123')).body.items[0].details.total, money(BigInt(deposits + 1) * MAX_CENTS + 100n))
  const other = await post(app, '/event', { type: 'deposit', amount: '1.00', user_id: 2, time: 1000 })
  t.strictSame(other.body, { alert: false, alert_codes: [], user_id: 2 }, 'another user is not blocked')
  // Once the windows have passed, the user's deposits are judged on their own again.
  const afterWindow = await post(app, '/event', { type: 'deposit', amount: '1.00', user_id: 1, time: 1100 })
  t.strictSame(afterWindow.body, { alert: false, alert_codes: [], user_id: 1 })
})
