import t from 'tap'
import { build, canonicalAdds, get, post, snapshot, sql } from '../helper.js'

const canonicalSpend = [
  { payer: 'DANNON', points: -100 },
  { payer: 'UNILEVER', points: -200 },
  { payer: 'MILLER COORS', points: -4700 }
]
const canonicalBalance = { DANNON: 1000, 'MILLER COORS': 5300, UNILEVER: 0 }

t.test('the canonical example, posted in timestamp order', async t => {
  const app = await build(t)
  for (const [i, add] of canonicalAdds.entries()) {
    const res = await post(app, '/add', add)
    t.equal(res.status, 200)
    t.same(res.body, { id: i + 1, ...add })
  }
  const spend = await post(app, '/spend', { points: 5000 })
  t.equal(spend.status, 200)
  t.strictSame(spend.body, canonicalSpend)
  const balance = await app.inject('/balance')
  t.equal(balance.body, JSON.stringify(canonicalBalance), 'keys sorted, zero balance included')
})

t.test('the canonical example, in the issue\'s arrival order, gives the same result', async t => {
  const app = await build(t)
  const arrival = [canonicalAdds[4], canonicalAdds[1], canonicalAdds[2], canonicalAdds[3], canonicalAdds[0]]
  for (const add of arrival) t.equal((await post(app, '/addTransaction', add)).status, 200)
  t.strictSame((await post(app, '/spend', { points: 5000 })).body, canonicalSpend)
  t.strictSame((await get(app, '/balance')).body, canonicalBalance)
  // The negative add drew from the 1000 first, then moved onto the backdated 300.
  const history = await get(app, '/transactions')
  const negative = history.body.items.find((item: { points: number }) => item.points === -200)
  t.strictSame(negative.drawn_from, [{ transaction_id: 5, payer: 'DANNON', timestamp: '2022-10-31T10:00:00Z', points: 200 }])
  const moves = await sql(app, 'SELECT lot_id, points, cause_id FROM point_adjustment_draws ORDER BY id')
  t.strictSame(moves, [
    { lot_id: 1, points: 200, cause_id: 3 },
    { lot_id: 1, points: -200, cause_id: 5 },
    { lot_id: 5, points: 200, cause_id: 5 }
  ], 'the move is written as rows, not an update')
})

t.test('spend history explains every spend', async t => {
  const app = await build(t)
  for (const add of canonicalAdds) await post(app, '/add', add)
  await post(app, '/spend', { points: 5000 })
  await post(app, '/spend', { points: 1 })
  const page = await get(app, '/spends')
  t.equal(page.status, 200)
  t.equal(page.body.next_cursor, null)
  t.strictSame(page.body.items.map((s: { id: number, points: number }) => [s.id, s.points]), [[2, 1], [1, 5000]], 'newest first')
  t.strictSame(page.body.items[1].drawn_from, [
    { transaction_id: 1, payer: 'DANNON', timestamp: '2022-10-31T10:00:00Z', points: 100 },
    { transaction_id: 2, payer: 'UNILEVER', timestamp: '2022-10-31T11:00:00Z', points: 200 },
    { transaction_id: 4, payer: 'MILLER COORS', timestamp: '2022-11-01T14:00:00Z', points: 4700 }
  ])
  t.strictSame(page.body.items[0].drawn_from, [
    { transaction_id: 4, payer: 'MILLER COORS', timestamp: '2022-11-01T14:00:00Z', points: 1 }
  ])
  const adds = await get(app, '/transactions')
  t.strictSame(adds.body.items.map((a: { id: number, remaining: number | null }) => [a.id, a.remaining]),
    [[5, 1000], [4, 5299], [3, null], [2, 0], [1, 0]])
  t.match(adds.body.items[0].created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
})

t.test('history pages with cursor and limit', async t => {
  const app = await build(t)
  for (let i = 1; i <= 5; i++) await post(app, '/add', { payer: 'P', points: i, timestamp: `2022-01-0${i}T00:00:00Z` })
  for (let i = 1; i <= 3; i++) await post(app, '/spend', { points: 1 })
  const first = await get(app, '/transactions?limit=2')
  t.strictSame(first.body.items.map((a: { id: number }) => a.id), [5, 4])
  t.equal(first.body.next_cursor, 4)
  const second = await get(app, '/transactions?limit=2&cursor=4')
  t.strictSame(second.body.items.map((a: { id: number }) => a.id), [3, 2])
  const last = await get(app, `/transactions?limit=2&cursor=${second.body.next_cursor as number}`)
  t.strictSame(last.body.items.map((a: { id: number }) => a.id), [1])
  t.equal(last.body.next_cursor, null)
  const spends = await get(app, '/spends?limit=2')
  t.strictSame(spends.body.items.map((s: { id: number }) => s.id), [3, 2])
  t.equal(spends.body.next_cursor, 2)
  t.strictSame((await get(app, '/spends?cursor=2')).body.items.map((s: { id: number }) => s.id), [1])
  for (const bad of ['limit=0', 'limit=501', 'limit=x', 'limit=5%20', 'limit=1e1', 'limit=010', 'limit=1&limit=2', 'cursor=0', 'cursor=-1', 'other=1']) {
    const res = await get(app, `/transactions?${bad}`)
    t.equal(res.status, 400, bad)
    t.equal(res.body.code, 'INVALID_REQUEST', bad)
  }
})

t.test('empty ledger', async t => {
  const app = await build(t)
  t.equal((await app.inject('/balance')).body, '{}')
  t.strictSame((await get(app, '/transactions')).body, { items: [], next_cursor: null })
  t.strictSame((await get(app, '/spends')).body, { items: [], next_cursor: null })
  const spend = await post(app, '/spend', { points: 1 })
  t.equal(spend.status, 400)
  t.equal(spend.body.code, 'INSUFFICIENT_POINTS')
})

t.test('negative adds', async t => {
  t.test('enough points: taken from the payer\'s oldest', async t => {
    const app = await build(t)
    await post(app, '/add', { payer: 'A', points: 100, timestamp: '2022-01-02T00:00:00Z' })
    await post(app, '/add', { payer: 'A', points: 100, timestamp: '2022-01-01T00:00:00Z' })
    await post(app, '/add', { payer: 'B', points: 50, timestamp: '2021-01-01T00:00:00Z' })
    const res = await post(app, '/add', { payer: 'A', points: -150, timestamp: '2022-01-03T00:00:00Z' })
    t.equal(res.status, 200)
    t.same(res.body, { id: 4, payer: 'A', points: -150, timestamp: '2022-01-03T00:00:00Z' })
    t.strictSame((await get(app, '/balance')).body, { A: 50, B: 50 })
    const remaining = await sql(app, 'SELECT transaction_id, remaining FROM point_lots ORDER BY transaction_id')
    t.strictSame(remaining, [{ transaction_id: 1, remaining: 50 }, { transaction_id: 2, remaining: 0 }, { transaction_id: 3, remaining: 50 }])
    t.strictSame((await post(app, '/spend', { points: 100 })).body, [{ payer: 'B', points: -50 }, { payer: 'A', points: -50 }])
  })

  t.test('exactly all of a payer\'s points', async t => {
    const app = await build(t)
    await post(app, '/add', { payer: 'A', points: 70, timestamp: '2022-01-01T00:00:00Z' })
    await post(app, '/add', { payer: 'A', points: 30, timestamp: '2022-01-02T00:00:00Z' })
    t.equal((await post(app, '/add', { payer: 'A', points: -100, timestamp: '2022-01-03T00:00:00Z' })).status, 200)
    t.strictSame((await get(app, '/balance')).body, { A: 0 })
    t.equal((await post(app, '/spend', { points: 1 })).body.code, 'INSUFFICIENT_POINTS')
  })

  t.test('not enough: 400 and nothing stored', async t => {
    const app = await build(t)
    await post(app, '/add', { payer: 'A', points: 100, timestamp: '2022-01-01T00:00:00Z' })
    await post(app, '/add', { payer: 'B', points: 500, timestamp: '2022-01-01T00:00:00Z' })
    const before = await snapshot(app)
    const res = await post(app, '/add', { payer: 'A', points: -101, timestamp: '2022-01-03T00:00:00Z' })
    t.equal(res.status, 400)
    t.strictSame(res.body, {
      statusCode: 400,
      error: 'Bad Request',
      message: 'Payer A has 100 points; cannot take 101',
      code: 'INSUFFICIENT_PAYER_POINTS'
    })
    const unknown = await post(app, '/add', { payer: 'C', points: -1, timestamp: '2022-01-03T00:00:00Z' })
    t.equal(unknown.body.code, 'INSUFFICIENT_PAYER_POINTS', 'a payer with no points has none to take')
    t.strictSame(await snapshot(app), before)
  })

  t.test('arriving before older adds: the reduction moves onto the older points', async t => {
    const app = await build(t)
    await post(app, '/add', { payer: 'A', points: 100, timestamp: '2022-01-05T00:00:00Z' })
    await post(app, '/add', { payer: 'A', points: -60, timestamp: '2022-01-06T00:00:00Z' })
    // A backdated add smaller than the reduction takes part of it over...
    await post(app, '/add', { payer: 'A', points: 40, timestamp: '2022-01-01T00:00:00Z' })
    // ...and one for another payer takes over nothing.
    await post(app, '/add', { payer: 'B', points: 10, timestamp: '2021-01-01T00:00:00Z' })
    // An add newer than the drawn lot takes over nothing either.
    await post(app, '/add', { payer: 'A', points: 5, timestamp: '2022-02-01T00:00:00Z' })
    const lots = await sql(app, 'SELECT transaction_id, remaining, adjusted FROM point_lots ORDER BY transaction_id')
    t.strictSame(lots, [
      { transaction_id: 1, remaining: 80, adjusted: 20 },
      { transaction_id: 3, remaining: 0, adjusted: 40 },
      { transaction_id: 4, remaining: 10, adjusted: 0 },
      { transaction_id: 5, remaining: 5, adjusted: 0 }
    ])
    t.strictSame((await get(app, '/balance')).body, { A: 85, B: 10 })
    t.strictSame((await post(app, '/spend', { points: 15 })).body, [{ payer: 'B', points: -10 }, { payer: 'A', points: -5 }])
  })

  t.test('a backdated add releases the newest draws first', async t => {
    const app = await build(t)
    await post(app, '/add', { payer: 'A', points: 10, timestamp: '2022-01-10T00:00:00Z' })
    await post(app, '/add', { payer: 'A', points: 10, timestamp: '2022-01-20T00:00:00Z' })
    await post(app, '/add', { payer: 'A', points: -15, timestamp: '2022-01-21T00:00:00Z' })
    await post(app, '/add', { payer: 'A', points: 8, timestamp: '2022-01-01T00:00:00Z' })
    // The −15 drew 10 from #1 and 5 from #2; the backdated 8 takes over #2's 5, then 3 of #1's.
    const lots = await sql(app, 'SELECT transaction_id, remaining, adjusted FROM point_lots ORDER BY transaction_id')
    t.strictSame(lots, [
      { transaction_id: 1, remaining: 3, adjusted: 7 },
      { transaction_id: 2, remaining: 10, adjusted: 0 },
      { transaction_id: 4, remaining: 0, adjusted: 8 }
    ])
    const history = await get(app, '/transactions')
    const negative = history.body.items.find((a: { id: number }) => a.id === 3)
    t.strictSame(negative.drawn_from.map((d: { transaction_id: number, points: number }) => [d.transaction_id, d.points]),
      [[4, 8], [1, 7]], 'net draws, oldest lot first; #2 no longer drawn')
  })
})

t.test('equal timestamps are spent in arrival order', async t => {
  const app = await build(t)
  const ts = '2022-05-05T05:05:05Z'
  await post(app, '/add', { payer: 'Z', points: 10, timestamp: ts })
  await post(app, '/add', { payer: 'A', points: 10, timestamp: ts })
  await post(app, '/add', { payer: 'M', points: 10, timestamp: ts })
  t.strictSame((await post(app, '/spend', { points: 25 })).body,
    [{ payer: 'Z', points: -10 }, { payer: 'A', points: -10 }, { payer: 'M', points: -5 }])
})

t.test('out-of-order timestamps: a backdated add is spent before newer ones', async t => {
  const app = await build(t)
  await post(app, '/add', { payer: 'NEW', points: 10, timestamp: '2022-03-01T00:00:00Z' })
  await post(app, '/spend', { points: 4 })
  await post(app, '/add', { payer: 'OLD', points: 10, timestamp: '2022-01-01T00:00:00Z' })
  t.strictSame((await post(app, '/spend', { points: 12 })).body, [{ payer: 'OLD', points: -10 }, { payer: 'NEW', points: -2 }])
  t.strictSame((await get(app, '/balance')).body, { NEW: 4, OLD: 0 })
  const spends = (await get(app, '/spends')).body.items
  t.strictSame(spends[1].drawn_from.map((d: { payer: string, points: number }) => [d.payer, d.points]), [['NEW', 4]],
    'the earlier spend stays as it was answered')
})

t.test('over-spend is refused and leaves every balance and lot unchanged', async t => {
  const app = await build(t)
  for (const add of canonicalAdds) await post(app, '/add', add)
  const before = await snapshot(app)
  const res = await post(app, '/spend', { points: 11301 })
  t.equal(res.status, 400)
  t.strictSame(res.body, {
    statusCode: 400,
    error: 'Bad Request',
    message: 'Cannot spend 11301 points: the balance is 11300',
    code: 'INSUFFICIENT_POINTS'
  })
  t.strictSame(await snapshot(app), before)
  t.strictSame((await post(app, '/spend', { points: 11300 })).body,
    [{ payer: 'DANNON', points: -1100 }, { payer: 'UNILEVER', points: -200 }, { payer: 'MILLER COORS', points: -10000 }],
    'exactly the total is allowed')
  t.strictSame((await get(app, '/balance')).body, { DANNON: 0, 'MILLER COORS': 0, UNILEVER: 0 })
})

t.test('a dry run answers like the spend and changes nothing', async t => {
  const app = await build(t)
  for (const add of canonicalAdds) await post(app, '/add', add)
  const before = await snapshot(app)
  const dry = await post(app, '/spend?dry_run=true', { points: 5000 })
  t.equal(dry.status, 200)
  t.strictSame(await snapshot(app), before, 'nothing changed')
  const tooMuch = await post(app, '/spend?dry_run=true', { points: 999999 })
  t.equal(tooMuch.body.code, 'INSUFFICIENT_POINTS', 'a dry run is refused like the spend')
  t.strictSame(dry.body, (await post(app, '/spend?dry_run=false', { points: 5000 })).body, 'the real spend gives the same answer')
})
