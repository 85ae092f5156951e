import fc from 'fast-check'
import t from 'tap'
import { type IncomingEvent, evaluate, tiers } from '../../src/alerts/rules.js'
import { formatCents, toCents } from '../../src/money.js'
import { plainCodes, type ModelEvent } from '../reference/alerts-model.js'
import { build, call, get, post, propertyRuns, snapshot, sql } from '../helper.js'

type App = Awaited<ReturnType<typeof build>>
const event = async (app: App, type: 'deposit' | 'withdraw', amount: string, time: number, userId = 1) =>
  await post(app, '/event', { type, amount, user_id: userId, time })
const codes = async (app: App, type: 'deposit' | 'withdraw', amount: string, time: number, userId = 1) =>
  (await event(app, type, amount, time, userId)).body.alert_codes as number[]

t.test('amounts: decimal strings to cents and back', async t => {
  t.equal(toCents('100'), 10000)
  t.equal(toCents('42.5'), 4250)
  t.equal(toCents('0.01'), 1)
  t.equal(toCents('9999999999999.99'), 999999999999999)
  for (const bad of ['1e3', '-5', 'abc', '42.001', '01', '', ' 1', '1.', '.5', '10000000000000']) t.equal(toCents(bad), null, bad)
  t.equal(formatCents(4250), '42.50')
  t.equal(formatCents(7), '0.07')
})

t.test('the answer: alert, codes ascending, user_id', async t => {
  const app = await build(t)
  const res = await event(app, 'deposit', '42.00', 10)
  t.equal(res.status, 200)
  t.strictSame(res.body, { alert: false, alert_codes: [], user_id: 1 })
  t.strictSame((await post(app, '/event', { type: 'withdraw', amount: '500', user_id: 7, t: 11 })).body,
    { alert: true, alert_codes: [1100], user_id: 7 }, 't is accepted for time; a user with no record gets the medium tier')
})

t.test('1100: a withdrawal of more than 100', async t => {
  const app = await build(t)
  t.strictSame(await codes(app, 'withdraw', '100', 0), [], '100 is not more than 100')
  t.strictSame(await codes(app, 'withdraw', '100.00', 100), [])
  t.strictSame(await codes(app, 'withdraw', '100.01', 200, 2), [1100])
  t.strictSame(await codes(app, 'deposit', '1000', 300, 3), [123], 'deposits never fire 1100')
  const alert = (await get(app, '/alerts?code=1100')).body.items[0]
  t.strictSame(alert.details, { amount: '100.01', limit: '100.00' })
})

t.test('30: three withdrawals in a row, again on the fourth; a deposit breaks the run', async t => {
  const app = await build(t)
  t.strictSame(await codes(app, 'withdraw', '1', 0), [])
  t.strictSame(await codes(app, 'withdraw', '1', 100), [])
  t.strictSame(await codes(app, 'withdraw', '1', 200), [30])
  t.strictSame(await codes(app, 'withdraw', '1', 300), [30], 'the fourth consecutive withdrawal')
  t.strictSame(await codes(app, 'deposit', '1', 400), [])
  t.strictSame(await codes(app, 'withdraw', '1', 500), [])
  t.strictSame(await codes(app, 'withdraw', '1', 600), [])
  t.strictSame(await codes(app, 'withdraw', '1', 700), [30])
  t.strictSame(await codes(app, 'withdraw', '1', 800, 2), [], 'another user\'s run is separate')
})

t.test('300: three strictly increasing deposits, withdrawals between ignored', async t => {
  const app = await build(t)
  t.strictSame(await codes(app, 'deposit', '10', 0), [])
  t.strictSame(await codes(app, 'withdraw', '5', 100), [])
  t.strictSame(await codes(app, 'deposit', '20', 200), [])
  t.strictSame(await codes(app, 'withdraw', '5', 300), [])
  t.strictSame(await codes(app, 'deposit', '30', 400), [300])
  t.strictSame((await get(app, '/alerts?code=300')).body.items[0].details, { deposits: ['10.00', '20.00', '30.00'], threshold: 3 })
  t.strictSame(await codes(app, 'deposit', '30', 500), [], 'equal is not increasing')
  t.strictSame(await codes(app, 'deposit', '30.01', 600), [])
  t.strictSame(await codes(app, 'deposit', '30.02', 700), [300])
})

t.test('123: deposits within [time − 30, time] totalling more than 200; both edges inside', async t => {
  const app = await build(t)
  t.strictSame(await codes(app, 'deposit', '100', 1000), [])
  t.strictSame(await codes(app, 'deposit', '100', 1030), [], 'exactly 200 is not more')
  t.strictSame(await codes(app, 'deposit', '0.01', 1030), [123], 'the deposit 30 s back is inside, equal times count')
  const details = (await get(app, '/alerts?code=123')).body.items[0].details
  t.strictSame(details, { window_start: 1000, window_end: 1030, deposits: 3, total: '200.01', limit: '200.00' })
  t.strictSame(await codes(app, 'deposit', '100', 1061), [], '1030 is 31 s back: outside, so 100.01 of the 300.01 drops out')
  // A fresh user: 31 s back is just outside.
  t.strictSame(await codes(app, 'deposit', '150', 0, 2), [])
  t.strictSame(await codes(app, 'deposit', '51', 31, 2), [])
  t.strictSame(await codes(app, 'deposit', '51', 30, 3), [])
  t.strictSame(await codes(app, 'withdraw', '99', 31, 3), [], 'withdrawals do not count')
  t.strictSame(await codes(app, 'deposit', '150', 60, 3), [123], '30 s back is inside')
})

t.test('500: more than 5 events within [time − 60, time]; both edges inside', async t => {
  const app = await build(t)
  for (const time of [0, 10, 20, 30, 40]) t.strictSame(await codes(app, 'deposit', '1', time), [])
  t.strictSame(await codes(app, 'deposit', '1', 60), [500], 'the event 60 s back is inside: 6 events')
  t.strictSame((await get(app, '/alerts?code=500')).body.items[0].details, { window_start: 0, window_end: 60, events: 6, limit: 5 })
  t.strictSame(await codes(app, 'deposit', '1', 71), [], '10 is 61 s back: outside, 5 events')
  const user2 = [0, 1, 2, 3, 4]
  for (const time of user2) await event(app, 'deposit', '1', time, 2)
  t.strictSame(await codes(app, 'withdraw', '1', 61, 2), [], '0 is 61 s back: just outside')
})

t.test('several codes at once, ascending', async t => {
  const app = await build(t)
  for (const time of [0, 1, 2, 3, 4]) await event(app, 'withdraw', '1', time)
  t.strictSame(await event(app, 'withdraw', '150', 5).then(r => r.body), { alert: true, alert_codes: [30, 500, 1100], user_id: 1 })
  const app2 = await build(t)
  for (const [amount, time] of [['5', 0], ['10', 1], ['20', 2], ['30', 3], ['40', 4]] as const) await event(app2, 'deposit', amount, time)
  t.strictSame(await codes(app2, 'deposit', '150', 5), [123, 300, 500])
})

t.test('EVENT_TIME_UNIT=ms: windows scale to milliseconds', async t => {
  const app = await build(t, { env: { EVENT_TIME_UNIT: 'ms' } })
  t.strictSame(await codes(app, 'deposit', '150', 100_000), [])
  t.strictSame(await codes(app, 'deposit', '51', 130_000), [123], '30 000 ms back is inside')
  t.strictSame(await codes(app, 'deposit', '150', 0, 2), [])
  t.strictSame(await codes(app, 'deposit', '51', 30_001, 2), [], '30 001 ms back is outside')
  const seconds = await build(t)
  t.strictSame(await codes(seconds, 'deposit', '150', 100_000), [])
  t.strictSame(await codes(seconds, 'deposit', '51', 130_000), [], 'in seconds that is far outside')
})

t.test('tiers and overrides change the outcome', async t => {
  const app = await build(t)
  const profile = await get(app, '/users/1/alert-profile')
  t.strictSame(profile.body, {
    user_id: 1,
    risk: 'medium',
    overrides: {},
    thresholds: {
      withdrawal_limit: '100.00', consecutive_withdrawals: 3, increasing_deposits: 3, deposit_window_seconds: 30, deposit_window_limit: '200.00', velocity_window_seconds: 60, velocity_count: 5
    }
  })
  const high = await call(app, { method: 'PUT', url: '/users/1/alert-profile', payload: { risk: 'high' } })
  t.equal(high.status, 200)
  t.equal(high.body.thresholds.withdrawal_limit, '50.00')
  t.strictSame(await codes(app, 'withdraw', '60', 0), [1100], 'high: 60 is over its 50')
  t.strictSame(await codes(app, 'withdraw', '60', 1, 2), [], 'medium: 60 is not over 100')
  const low = await call(app, { method: 'PUT', url: '/users/1/alert-profile', payload: { risk: 'low', overrides: { withdrawal_limit: '10', velocity_count: 1 } } })
  t.strictSame(low.body.overrides, { withdrawal_limit: '10.00', velocity_count: 1 })
  t.equal(low.body.thresholds.consecutive_withdrawals, 5, 'the rest is the low tier\'s')
  t.strictSame(await codes(app, 'withdraw', '11', 2), [500, 1100], 'overrides win over the tier')
  const cleared = await call(app, { method: 'PUT', url: '/users/1/alert-profile', payload: { risk: 'low' } })
  t.strictSame(cleared.body.overrides, {}, 'PUT replaces the overrides')
  t.strictSame(await codes(app, 'withdraw', '11', 3), [])
})

t.test('invalid alert profiles are 400 and change nothing', async t => {
  const app = await build(t)
  await call(app, { method: 'PUT', url: '/users/1/alert-profile', payload: { risk: 'high' } })
  const before = await snapshot(app)
  const cases: unknown[] = [
    { risk: 'extreme' },
    {},
    { risk: 'low', overrides: { withdrawal_limit: 100 } },
    { risk: 'low', overrides: { withdrawal_limit: '-1' } },
    { risk: 'low', overrides: { velocity_count: 0 } },
    { risk: 'low', overrides: { consecutive_withdrawals: 1 } },
    { risk: 'low', overrides: { deposit_window_seconds: 1.5 } },
    { risk: 'low', overrides: { unknown: 1 } },
    { risk: 'low', extra: 1 }
  ]
  for (const payload of cases) {
    const res = await call(app, { method: 'PUT', url: '/users/1/alert-profile', payload: payload as object })
    t.equal(res.status, 400, JSON.stringify(payload))
    t.equal(res.body.code, 'INVALID_REQUEST')
  }
  t.equal((await call(app, { method: 'PUT', url: '/users/1/alert-profile', payload: { risk: 'extreme' } })).body.message,
    'body/risk must be equal to one of the allowed values')
  t.equal((await call(app, { method: 'PUT', url: '/users/0/alert-profile', payload: { risk: 'low' } })).status, 400)
  t.strictSame(await snapshot(app), before)
})

t.test('an event older than the user\'s last is refused and nothing is stored; equal times are fine', async t => {
  const app = await build(t)
  await event(app, 'deposit', '1', 100)
  t.equal((await event(app, 'deposit', '1', 100)).status, 200, 'equal time accepted')
  const before = await snapshot(app)
  const res = await event(app, 'withdraw', '500', 99)
  t.equal(res.status, 400)
  t.strictSame(res.body, { statusCode: 400, error: 'Bad Request', message: 'Event time 99 is before the user\'s last event at 100', code: 'EVENT_OUT_OF_ORDER' })
  t.strictSame(await snapshot(app), before)
  t.equal((await event(app, 'deposit', '1', 0, 2)).status, 200, 'other users have their own clock')
})

t.test('every invalid payload is a 400 and stores nothing', async t => {
  const app = await build(t)
  const before = await snapshot(app)
  const ok = { type: 'deposit', amount: '42.00', user_id: 1, time: 10 }
  const cases: Array<[string, unknown, string]> = [
    ['amount 0.00', { ...ok, amount: '0.00' }, 'INVALID_AMOUNT'],
    ['amount 0', { ...ok, amount: '0' }, 'INVALID_AMOUNT'],
    ['amount -5', { ...ok, amount: '-5' }, 'INVALID_REQUEST'],
    ['amount 1e3', { ...ok, amount: '1e3' }, 'INVALID_REQUEST'],
    ['amount abc', { ...ok, amount: 'abc' }, 'INVALID_REQUEST'],
    ['amount 42.001', { ...ok, amount: '42.001' }, 'INVALID_REQUEST'],
    ['amount as a number', { ...ok, amount: 42 }, 'INVALID_REQUEST'],
    ['type unknown', { ...ok, type: 'transfer' }, 'INVALID_REQUEST'],
    ['user_id 0', { ...ok, user_id: 0 }, 'INVALID_REQUEST'],
    ['user_id "1"', { ...ok, user_id: '1' }, 'INVALID_REQUEST'],
    ['time negative', { ...ok, time: -1 }, 'INVALID_REQUEST'],
    ['time fractional', { ...ok, time: 1.5 }, 'INVALID_REQUEST'],
    ['time as a string', { ...ok, time: '10' }, 'INVALID_REQUEST'],
    ['both time and t', { ...ok, t: 10 }, 'EVENT_TIME_REQUIRED'],
    ['neither time nor t', { type: 'deposit', amount: '1', user_id: 1 }, 'EVENT_TIME_REQUIRED'],
    ['an extra field', { ...ok, note: 'x' }, 'INVALID_REQUEST'],
    ['type missing', { amount: '1', user_id: 1, time: 1 }, 'INVALID_REQUEST']
  ]
  for (const [what, payload, code] of cases) {
    const res = await post(app, '/event', payload)
    t.equal(res.status, 400, what)
    t.equal(res.body.code, code, what)
  }
  t.strictSame(await snapshot(app), before)
})

t.test('history: events with their codes, alerts with their figures, newest first, filtered', async t => {
  const app = await build(t)
  await event(app, 'withdraw', '150', 0)
  await event(app, 'withdraw', '150', 1, 2)
  await event(app, 'withdraw', '1', 2)
  await event(app, 'withdraw', '101', 3)
  const events = (await get(app, '/users/1/events')).body
  t.strictSame(events.items.map((e: { id: number, type: string, amount: string, time: number, alert_codes: number[] }) => [e.id, e.type, e.amount, e.time, e.alert_codes]),
    [[4, 'withdraw', '101.00', 3, [30, 1100]], [3, 'withdraw', '1.00', 2, []], [1, 'withdraw', '150.00', 0, [1100]]])
  t.strictSame((await get(app, '/users/1/events?limit=1')).body.next_cursor, 4)
  t.strictSame((await get(app, '/users/99/events')).body, { items: [], next_cursor: null })
  const all = (await get(app, '/alerts')).body.items
  t.strictSame(all.map((a: { id: number, user_id: number, code: number, event_id: number }) => [a.id, a.user_id, a.code, a.event_id]),
    [[4, 1, 1100, 4], [3, 1, 30, 4], [2, 2, 1100, 2], [1, 1, 1100, 1]])
  t.strictSame((await get(app, '/alerts?user_id=1&code=1100')).body.items.map((a: { id: number }) => a.id), [4, 1])
  t.strictSame((await get(app, '/alerts?user_id=2')).body.items.map((a: { id: number }) => a.id), [2])
  t.strictSame((await get(app, '/alerts?code=30')).body.items[0].details, { consecutive_withdrawals: 3, threshold: 3 })
  t.strictSame((await get(app, '/alerts?limit=3')).body.next_cursor, 2)
  for (const bad of ['code=31', 'user_id=0', 'code=abc', 'other=1']) t.equal((await get(app, `/alerts?${bad}`)).status, 400, bad)
  const summary = await sql(app, 'SELECT user_id, code, alerts FROM alert_summary ORDER BY user_id, code')
  t.strictSame(summary, [{ user_id: 1, code: 30, alerts: 1 }, { user_id: 1, code: 1100, alerts: 2 }, { user_id: 2, code: 1100, alerts: 1 }])
  t.strictSame(await sql(app, 'SELECT alert_id, amount FROM alert_details WHERE code = 1100 ORDER BY alert_id'),
    [{ alert_id: 1, amount: '150.00' }, { alert_id: 2, amount: '150.00' }, { alert_id: 4, amount: '101.00' }])
})

t.test('rules in isolation: each alone at its threshold', async t => {
  const m = tiers.medium
  const quiet = { previousTypes: [], previousDeposits: [], depositWindow: { total: 0n, count: 0 }, velocityWindowCount: 0 }
  const deposit = (amount: number): IncomingEvent => ({ type: 'deposit', amount, time: 100 })
  t.strictSame(evaluate(deposit(20_000), quiet, m, 's'), [])
  t.strictSame(evaluate(deposit(20_001), quiet, m, 's').map(a => a.code), [123])
  t.strictSame(evaluate(deposit(1), { ...quiet, previousDeposits: [2, 1] }, m, 's'), [], 'decreasing')
  t.strictSame(evaluate(deposit(3), { ...quiet, previousDeposits: [2] }, m, 's'), [], 'too few deposits')
  t.strictSame(evaluate(deposit(1), { ...quiet, velocityWindowCount: 4 }, m, 's'), [])
  t.strictSame(evaluate({ type: 'withdraw', amount: 1, time: 5 }, { ...quiet, velocityWindowCount: 5 }, m, 's')[0],
    { code: 500, details: { window_start: 0, window_end: 5, events: 6, limit: 5 } }, 'a window before time 0 starts at 0')
  t.strictSame(evaluate({ type: 'withdraw', amount: 1, time: 5 }, { ...quiet, previousTypes: ['withdraw'] }, m, 's'), [])
})

/** Every page of a paginated history, following next_cursor: the ids in order. */
async function pageAll (app: App, url: string): Promise<number[]> {
  const ids: number[] = []
  for (let next: string | null = url; next !== null;) {
    const res = await get(app, next)
    if (res.status !== 200) throw new Error(`${next}: ${res.status} ${JSON.stringify(res.body)}`)
    ids.push(...(res.body.items as Array<{ id: number }>).map(item => item.id))
    next = res.body.next_cursor === null ? null : `${url.replace(/&cursor=\d+/, '')}&cursor=${String(res.body.next_cursor)}`
  }
  return ids
}

function same (actual: unknown, expected: unknown, what: string): void {
  if (JSON.stringify(actual) !== JSON.stringify(expected)) throw new Error(`${what}: ${JSON.stringify(actual)}, expected ${JSON.stringify(expected)}`)
}

const RUNS = propertyRuns(200, 50)

t.test('the SQL-backed evaluation equals a plain in-memory evaluation, and its history pages exactly (fast-check)', async t => {
  const app = await build(t)
  const arbitraryEvent = fc.record({
    userId: fc.integer({ min: 1, max: 3 }),
    type: fc.constantFrom('deposit' as const, 'withdraw' as const),
    cents: fc.oneof(fc.integer({ min: 1, max: 30_000 }), fc.constantFrom(10_000, 10_001, 20_000, 100)),
    gap: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 40 }), fc.constantFrom(30, 31, 60, 61))
  })
  let runs = 0
  await fc.assert(fc.asyncProperty(fc.array(arbitraryEvent, { minLength: 1, maxLength: 40 }), fc.constantFrom('low' as const, 'medium' as const, 'high' as const), async (events, risk) => {
    runs++
    await app.inject({ method: 'POST', url: '/flushDB' })
    for (const userId of [1, 2, 3]) await call(app, { method: 'PUT', url: `/users/${userId}/alert-profile`, payload: { risk } })
    const seen = new Map<number, ModelEvent[]>()
    const clock = new Map<number, number>()
    const stored: Array<{ id: number, userId: number, codes: number[] }> = []
    for (const e of events) {
      const time = (clock.get(e.userId) ?? 0) + e.gap
      clock.set(e.userId, time)
      const previous = seen.get(e.userId) ?? []
      const next: ModelEvent = { type: e.type, amount: e.cents, time }
      const expected = plainCodes(previous, next, tiers[risk], 1)
      const res = await post(app, '/event', { type: e.type, amount: formatCents(e.cents), user_id: e.userId, time })
      if (JSON.stringify(res.body.alert_codes) !== JSON.stringify(expected)) {
        throw new Error(`${JSON.stringify(next)} after ${JSON.stringify(previous)}: ${JSON.stringify(res.body)} vs ${JSON.stringify(expected)}`)
      }
      seen.set(e.userId, [...previous, next])
      stored.push({ id: stored.length + 1, userId: e.userId, codes: expected })
    }
    // The histories page exactly, newest first, however users interleave and times tie.
    for (const userId of [1, 2, 3]) {
      const own = stored.filter(e => e.userId === userId).reverse()
      same(await pageAll(app, `/users/${userId}/events?limit=3`), own.map(e => e.id), `user ${userId}'s events`)
      // Any cursor, even another user's event: exactly the user's events with a smaller id.
      const cursor = 1 + (events.length >> 1)
      same(await pageAll(app, `/users/${userId}/events?limit=2&cursor=${cursor}`), own.filter(e => e.id < cursor).map(e => e.id),
        `user ${userId}'s events before ${cursor}`)
      const alerts = await pageAll(app, `/alerts?user_id=${userId}&limit=2`)
      same(alerts.length, own.reduce((n, e) => n + e.codes.length, 0), `user ${userId}'s alerts`)
      for (const code of [30, 123, 300, 500, 1100]) {
        const ids = await pageAll(app, `/alerts?user_id=${userId}&code=${code}&limit=2`)
        same(ids.length, own.filter(e => e.codes.includes(code)).length, `user ${userId}'s alerts with code ${code}`)
        if (ids.some((id, i) => i > 0 && id >= ids[i - 1]!)) throw new Error(`alerts not newest first: ${JSON.stringify(ids)}`)
      }
    }
    return true
  }), { numRuns: RUNS })
  t.ok(runs >= RUNS, `${runs} random event sequences agreed`)
})
