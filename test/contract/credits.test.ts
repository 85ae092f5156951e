import fc from 'fast-check'
import t from 'tap'
import { build, call, get, post, propertyRuns, snapshot, value } from '../helper.js'

let clock = new Date('2026-11-22T09:00:00.000Z')
const now = () => clock
const MAX = Number.MAX_SAFE_INTEGER

async function withUser (t: Parameters<typeof build>[0]) {
  const app = await build(t, { now })
  await post(app, '/users', { email: 'ada@example.com', name: 'Ada' })
  return app
}

const patch = async (app: Awaited<ReturnType<typeof build>>, url: string) => await call(app, { method: 'PATCH', url })

t.test('add, deduct, reset and external update, each with its history entry', async t => {
  const app = await withUser(t)
  clock = new Date('2026-11-22T10:00:00.000Z')
  t.strictSame((await post(app, '/api/credits/1/add', { amount: 10 })).body, { user_id: 1, credits: 10, updated_at: '2026-11-22T10:00:00.000Z' })
  t.strictSame((await post(app, '/api/credits/1/deduct', { amount: 4 })).body.credits, 6)
  t.strictSame((await post(app, '/api/credits/1/deduct', { amount: 6 })).body.credits, 0, 'exactly the balance is allowed')
  t.strictSame((await post(app, '/api/credits/1/external-update', { credits: 42 })).body.credits, 42)
  t.strictSame((await patch(app, '/api/credits/1/reset')).body, { user_id: 1, credits: 0, updated_at: '2026-11-22T10:00:00.000Z' })
  t.strictSame((await post(app, '/api/credits/1/external-update', { credits: 0 })).body.credits, 0, 'external update to 0')
  t.strictSame((await post(app, '/api/credits/1/external-update', { credits: MAX })).body.credits, MAX, 'to the largest value')
  t.strictSame((await get(app, '/api/credits/1')).body, { user_id: 1, credits: MAX, updated_at: '2026-11-22T10:00:00.000Z' })
  t.strictSame((await get(app, '/users/1')).body.credits, MAX)
  const history = await get(app, '/api/credits/1/history')
  t.strictSame(history.body.items.map((e: { kind: string, delta: number, balance_after: number }) => [e.kind, e.delta, e.balance_after]), [
    ['external_update', MAX, MAX],
    ['external_update', 0, 0],
    ['reset', -42, 0],
    ['external_update', 42, 42],
    ['deduct', -6, 0],
    ['deduct', -4, 6],
    ['add', 10, 10]
  ], 'newest first')
  t.equal(history.body.items[0].created_at, '2026-11-22T10:00:00.000Z')
  t.equal(history.body.next_cursor, null)
  const page = await get(app, '/api/credits/1/history?limit=2&cursor=5')
  t.strictSame(page.body.items.map((e: { id: number }) => e.id), [4, 3])
  t.equal(page.body.next_cursor, 3)
})

t.test('refusals change nothing', async t => {
  const app = await withUser(t)
  await post(app, '/api/credits/1/add', { amount: 5 })
  const before = await snapshot(app)
  const over = await post(app, '/api/credits/1/deduct', { amount: 6 })
  t.equal(over.status, 400)
  t.strictSame(over.body, { statusCode: 400, error: 'Bad Request', message: 'Cannot deduct 6 credits: the balance is 5', code: 'INSUFFICIENT_CREDITS' })
  const cases: Array<[string, string, unknown, number, string]> = [
    ['add 0', '/api/credits/1/add', { amount: 0 }, 400, 'INVALID_REQUEST'],
    ['add negative', '/api/credits/1/add', { amount: -1 }, 400, 'INVALID_REQUEST'],
    ['add a string', '/api/credits/1/add', { amount: '5' }, 400, 'INVALID_REQUEST'],
    ['add a fraction', '/api/credits/1/add', { amount: 1.5 }, 400, 'INVALID_REQUEST'],
    ['add an extra field', '/api/credits/1/add', { amount: 1, note: 'x' }, 400, 'INVALID_REQUEST'],
    ['add past 2^53−1', '/api/credits/1/add', { amount: MAX }, 400, 'CREDITS_TOO_LARGE'],
    ['deduct 0', '/api/credits/1/deduct', { amount: 0 }, 400, 'INVALID_REQUEST'],
    ['deduct without a body', '/api/credits/1/deduct', undefined, 400, 'INVALID_REQUEST'],
    ['external-update negative', '/api/credits/1/external-update', { credits: -1 }, 400, 'INVALID_REQUEST'],
    ['external-update with amount', '/api/credits/1/external-update', { amount: 1 }, 400, 'INVALID_REQUEST'],
    ['an unknown user', '/api/credits/2/add', { amount: 1 }, 404, 'USER_NOT_FOUND'],
    ['user id 0', '/api/credits/0/add', { amount: 1 }, 400, 'INVALID_REQUEST'],
    ['user id -3', '/api/credits/-3/deduct', { amount: 1 }, 400, 'INVALID_REQUEST'],
    ['user id 1.5', '/api/credits/1.5/external-update', { credits: 1 }, 400, 'INVALID_REQUEST'],
    ['user id abc', '/api/credits/abc/add', { amount: 1 }, 400, 'INVALID_REQUEST']
  ]
  for (const [what, url, body, status, code] of cases) {
    const res = await post(app, url, body)
    t.equal(res.status, status, what)
    t.equal(res.body.code, code, what)
  }
  for (const url of ['/api/credits/9', '/api/credits/9/history']) {
    t.equal((await get(app, url)).body.code, 'USER_NOT_FOUND', url)
  }
  t.equal((await patch(app, '/api/credits/9/reset')).body.code, 'USER_NOT_FOUND')
  t.equal((await patch(app, '/api/credits/x/reset')).status, 400)
  t.strictSame(await snapshot(app), before)
})

t.test('after any sequence of changes the balance equals the sum of its history (fast-check)', async t => {
  const app = await withUser(t)
  const change = fc.oneof(
    fc.record({ op: fc.constant('add'), n: fc.integer({ min: 1, max: 1000 }) }),
    fc.record({ op: fc.constant('deduct'), n: fc.integer({ min: 1, max: 1000 }) }),
    fc.record({ op: fc.constant('reset'), n: fc.constant(0) }),
    fc.record({ op: fc.constant('external-update'), n: fc.integer({ min: 0, max: 1000 }) })
  )
  await fc.assert(fc.asyncProperty(fc.array(change, { maxLength: 30 }), async changes => {
    let expected = (await get(app, '/api/credits/1')).body.credits as number
    for (const { op, n } of changes) {
      const res = op === 'reset'
        ? await patch(app, '/api/credits/1/reset')
        : await post(app, `/api/credits/1/${op}`, op === 'external-update' ? { credits: n } : { amount: n })
      const refused = op === 'deduct' && n > expected
      if (refused !== (res.status === 400)) return false
      if (!refused) expected = op === 'add' ? expected + n : op === 'deduct' ? expected - n : n
      if (res.status === 200 && res.body.credits !== expected) return false
    }
    const { credits } = (await get(app, '/api/credits/1')).body
    const sum = await value(app, 'SELECT coalesce(sum(delta), 0) FROM credit_entries WHERE user_id = 1')
    const last = await value(app, 'SELECT coalesce((SELECT balance_after FROM credit_entries WHERE user_id = 1 ORDER BY id DESC LIMIT 1), 0)')
    return credits === expected && sum === credits && last === credits
  }), { numRuns: propertyRuns(100) })
  t.pass('the balance always equals the sum of its history')
})
