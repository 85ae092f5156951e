import { join } from 'node:path'
import t from 'tap'
import { checkInvariants } from '../../src/storage/sqlite/check.js'
import { openDatabase } from '../../src/storage/sqlite/open.js'
import { tempDir } from '../helper.js'
import { startServer } from '../process.js'

// Two servers on one DB_PATH take concurrent spends and credit deductions. Writes take the lock
// up front (IMMEDIATE) and wait for it (busy timeout): the total drawn never exceeds what was
// there, no update is lost, and no SQLITE_BUSY reaches a client.
const json = { 'content-type': 'application/json' }

async function post (url: string, path: string, body: object, headers: Record<string, string> = {}) {
  const res = await fetch(`${url}${path}`, { method: 'POST', headers: { ...json, ...headers }, body: JSON.stringify(body) })
  return { status: res.status, body: await res.json() as any, replayed: res.headers.get('idempotent-replayed') === 'true' }
}

t.test('two processes on one file: no overdraw, no lost update, no SQLITE_BUSY', async t => {
  const dbPath = join(tempDir(t), 'shared.db')
  const env = { DB_PATH: dbPath, DAILY_CREDITS_ENABLED: 'false' }
  const one = startServer(env)
  const urlOne = await one.listening
  const two = startServer(env)
  const urlTwo = await two.listening
  t.teardown(() => { one.kill('SIGKILL'); two.kill('SIGKILL') })

  await post(urlOne, '/users', { email: 'ada@example.com', name: 'Ada' })
  await post(urlOne, '/api/credits/1/add', { amount: 1000 })
  for (const [i, payer] of ['A', 'B', 'C', 'D'].entries()) {
    await post(urlTwo, '/add', { payer, points: 250, timestamp: `2022-01-0${i + 1}T00:00:00Z` })
  }

  // 800 requests asking for about 2400 points and 2400 credits in all: far more than the 1000 of each.
  const requests = Array.from({ length: 400 }, async (_, i) => {
    const url = i % 2 === 0 ? urlOne : urlTwo
    const amount = 1 + (i % 11)
    const [spend, deduct] = await Promise.all([
      post(url, '/spend', { points: amount }),
      post(url, '/api/credits/1/deduct', { amount })
    ])
    return { amount, spend, deduct }
  })
  const results = await Promise.all(requests)
  const statuses = results.flatMap(r => [r.spend.status, r.deduct.status])
  t.strictSame([...new Set(statuses)].sort(), [200, 400], 'only successes and refusals: no 5xx')
  const refusals = results.flatMap(r => [r.spend, r.deduct]).filter(r => r.status === 400).map(r => r.body.code)
  t.strictSame([...new Set(refusals)].sort(), ['INSUFFICIENT_CREDITS', 'INSUFFICIENT_POINTS'])

  const spent = results.filter(r => r.spend.status === 200).reduce((sum, r) => sum + r.amount, 0)
  const deducted = results.filter(r => r.deduct.status === 200).reduce((sum, r) => sum + r.amount, 0)
  const balance = await (await fetch(`${urlOne}/balance`)).json() as Record<string, number>
  const left = Object.values(balance).reduce((a, b) => a + b, 0)
  t.equal(spent + left, 1000, `every point spent was answered: ${spent} spent, ${left} left`)
  t.ok(left < 11, 'the spends ran the points down')
  const credits = (await (await fetch(`${urlTwo}/api/credits/1`)).json() as { credits: number }).credits
  t.equal(deducted + credits, 1000, `every credit deducted was answered: ${deducted} deducted, ${credits} left`)

  // One keyed spend sent to both processes at once, five times each: applied once.
  await post(urlOne, '/add', { payer: 'E', points: 10, timestamp: '2022-02-01T00:00:00Z' })
  const keyed = await Promise.all(Array.from({ length: 10 }, async (_, i) =>
    await post(i % 2 === 0 ? urlOne : urlTwo, '/spend', { points: 1 }, { 'idempotency-key': 'both-processes' })))
  const applied = keyed.filter(r => !r.replayed)
  t.equal(applied.length, 1, 'one applied, nine replayed')
  t.equal(applied[0]!.status, 200)
  t.strictSame((await (await fetch(`${urlTwo}/balance`)).json() as Record<string, number>).E, 9, 'one point spent')
  t.ok(keyed.every(r => r.status === applied[0]!.status && JSON.stringify(r.body) === JSON.stringify(applied[0]!.body)), 'all got the same answer')

  // Holds raced across the processes: for each, a capture to one and a void to the other, and
  // a second capture to the first; exactly one of the three wins.
  await post(urlOne, '/add', { payer: 'H', points: 100, timestamp: '2022-03-01T00:00:00Z' })
  const total = async () => Object.values(await (await fetch(`${urlOne}/balance`)).json() as Record<string, number>).reduce((a, b) => a + b, 0)
  const before = await total()
  const holds = []
  for (let i = 0; i < 10; i++) holds.push((await post(urlTwo, '/holds', { points: 5 })).body.id as number)
  const races = await Promise.all(holds.map(async (id, i) => await Promise.all([
    post(i % 2 === 0 ? urlOne : urlTwo, `/holds/${id}/capture`, {}),
    post(i % 2 === 0 ? urlTwo : urlOne, `/holds/${id}/void`, {}),
    post(i % 2 === 0 ? urlOne : urlTwo, `/holds/${id}/capture`, { points: 2 })
  ])))
  for (const [i, answers] of races.entries()) {
    t.equal(answers.filter(a => a.status === 200).length, 1, `hold ${holds[i]!}: one winner`)
    t.strictSame(answers.filter(a => a.status !== 200).map(a => `${a.status} ${a.body.code as string}`), ['409 HOLD_NOT_PENDING', '409 HOLD_NOT_PENDING'])
  }
  const captured = races.flat().filter(a => a.status === 200).reduce((sum, a) => sum + (a.body.captured ?? 0), 0)
  t.equal(await total(), before - captured, `the ${captured} points captured, and only they, left the balance`)

  one.kill('SIGTERM')
  two.kill('SIGTERM')
  t.equal((await one.exited).code, 0)
  t.equal((await two.exited).code, 0)
  const db = openDatabase(dbPath)
  t.teardown(() => db.close())
  t.strictSame(checkInvariants(db), [], 'every invariant holds')
})
