import t from 'tap'
import { checkInvariantsPostgres } from '../../src/storage/postgres/check.js'
import { checkPool, ensureBuilt, freshDatabase, killAll, launchTally, missingServer, request, runDist, stopTally, type Tally } from './cluster.js'

// npm run test:pg-crash (TEST_DATABASE_URL: a real server). Two tally processes on one database
// take keyed writes from several clients each: adds (some negative), spends, credit adds and
// deducts, events. Each round, one of the two is killed with SIGKILL mid-load while the other
// serves on, then restarted. After each round nothing acknowledged is missing, nothing is half
// applied, and the balances are exactly what the committed requests make them.

const ROUNDS = 10
const WORKERS = 3 // per instance
const USERS = 3
const payers = ['DANNON', 'UNILEVER', 'MILLER COORS']
const pick = <T>(list: T[]): T => list[Math.floor(Math.random() * list.length)]!
const between = (low: number, high: number) => low + Math.floor(Math.random() * (high - low + 1))
const sleep = async (ms: number) => await new Promise(resolve => setTimeout(resolve, ms))
const cents = (n: number) => `${Math.floor(n / 100)}.${String(n % 100).padStart(2, '0')}`

/** A keyed write as sent: what it changes if it committed. */
type Sent =
  | { kind: 'add', ledger: number, payer: string, points: number }
  | { kind: 'spend', ledger: number, points: number }
  | { kind: 'credit', user: number, delta: number }
  | { kind: 'event', user: number, type: string, amount: number, time: number }

interface Acked { status: number, text: string, body: any }

let clock = 0

/** A random write, its path and body. */
function randomWrite (): { sent: Sent, path: string, body: object } {
  const user = between(1, USERS)
  const ledger = between(0, USERS)
  const prefix = ledger === 0 ? '' : `/users/${ledger}/points`
  switch (between(0, 5)) {
    case 0: case 1: {
      const payer = pick(payers)
      const points = between(-5, 60) || 1
      const timestamp = `2022-01-${String(between(1, 28)).padStart(2, '0')}T00:00:00Z`
      return { sent: { kind: 'add', ledger, payer, points }, path: `${prefix}/add`, body: { payer, points, timestamp } }
    }
    case 2: {
      const points = between(1, 40)
      return { sent: { kind: 'spend', ledger, points }, path: `${prefix}/spend`, body: { points } }
    }
    case 3: {
      const amount = between(1, 20)
      return { sent: { kind: 'credit', user, delta: amount }, path: `/api/credits/${user}/add`, body: { amount } }
    }
    case 4: {
      const amount = between(1, 12)
      return { sent: { kind: 'credit', user, delta: -amount }, path: `/api/credits/${user}/deduct`, body: { amount } }
    }
    default: {
      // Times increase as sent; two clients' events for one user may arrive out of order (400).
      const event = { user, type: pick(['deposit', 'withdraw']), amount: between(1, 50_000), time: ++clock }
      return { sent: { kind: 'event', ...event }, path: '/event', body: { type: event.type, amount: cents(event.amount), user_id: user, time: event.time } }
    }
  }
}

const missing = missingServer()
if (missing !== undefined) {
  t.fail(missing)
} else {
  ensureBuilt()
  t.test(`${ROUNDS} rounds of kill -9 of one instance of two under load`, { timeout: 110_000 }, async t => {
    t.teardown(killAll)
    const url = await freshDatabase('crash', fn => { t.teardown(fn) })
    const env = { DATABASE_URL: url, PG_POOL_SIZE: '6', DAILY_CREDITS_ENABLED: 'false' }
    const instances: Tally[] = await Promise.all([launchTally(env), launchTally(env)])
    await Promise.all(instances.map(async i => await i.ready))
    for (let u = 1; u <= USERS; u++) {
      t.equal((await request(instances[0]!.url, 'POST', '/users', { email: `u${u}@example.com`, name: `U${u}` })).status, 201)
    }
    const db = checkPool(url, fn => { t.teardown(fn) })

    const sent = new Map<string, Sent>()
    const acked = new Map<string, Acked>()
    // In flight to an instance when it was killed: committed or not, as the database says.
    const unanswered = new Set<string>()
    let committedUnanswered = 0
    const fiveHundreds: string[] = []
    const broken: string[] = []
    let held = 0

    /** One client of instance `slot`: writes until told to stop, whatever happens to the server. */
    async function client (round: number, slot: number, worker: number, stop: { now: boolean }): Promise<void> {
      for (let i = 0; !stop.now; i++) {
        const key = `r${round}-s${slot}-w${worker}-${i}`
        const { sent: write, path, body } = randomWrite()
        sent.set(key, write)
        let answer
        try {
          answer = await request(instances[slot]!.url, 'POST', path, body, { 'idempotency-key': key })
        } catch (err) {
          // Refused: sent while the instance was down, so never received.
          if ((err as { cause?: { code?: string } }).cause?.code !== 'ECONNREFUSED') unanswered.add(key)
          await sleep(20) // not acknowledged, either way
          continue
        }
        if (answer.status >= 500) fiveHundreds.push(`${key} ${path}: ${answer.status} ${answer.text}`)
        if (answer.status < 300) acked.set(key, answer)
      }
    }

    /** What is wrong now, all writes stopped: an empty list when the round held. */
    async function verify (): Promise<string[]> {
      const problems = (await checkInvariantsPostgres(db)).map(p => `invariant: ${p}`)
      const conn = await db.connect()
      try {
        // One snapshot for every read below.
        await conn.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
        const keys = new Map((await conn.query<{ key: string, status: number, body: string }>('SELECT key, status, body FROM idempotency_keys')).rows.map(r => [r.key, r]))
        // Acknowledged: stored, with the very answer the client got.
        for (const [key, answer] of acked) {
          const stored = keys.get(key)
          if (stored === undefined) problems.push(`acknowledged ${key} is missing`)
          else if (stored.status !== answer.status || stored.body !== answer.text) problems.push(`acknowledged ${key} stored as ${stored.status} ${stored.body}, answered ${answer.status} ${answer.text}`)
        }
        const adds = (await conn.query<{ id: number, payer: string, points: number, ledger_id: number }>('SELECT id, payer, points, ledger_id FROM point_transactions')).rows
        const byId = new Map(adds.map(row => [row.id, row]))
        for (const [key, answer] of acked) {
          const write = sent.get(key)!
          if (write.kind !== 'add') continue
          const row = byId.get(answer.body.id)
          if (row?.payer !== write.payer || row.points !== write.points || row.ledger_id !== write.ledger) problems.push(`acknowledged add ${key} (id ${answer.body.id}) is ${JSON.stringify(row)}`)
        }
        // Committed (acknowledged or not: the server may have died before answering) is exactly
        // the keys stored, each with its work; balances are what those writes make them.
        const committed = [...keys.keys()].map(key => sent.get(key)).filter(write => write !== undefined)
        committedUnanswered = [...keys.keys()].filter(key => unanswered.has(key)).length
        const expected = { ledgers: new Map<number, number>(), credits: new Map<number, number>(), adds: 0, spends: 0, entries: 0, events: 0 }
        const bump = (map: Map<number, number>, id: number, by: number) => map.set(id, (map.get(id) ?? 0) + by)
        for (const write of committed) {
          if (write.kind === 'add') { bump(expected.ledgers, write.ledger, write.points); expected.adds++ }
          if (write.kind === 'spend') { bump(expected.ledgers, write.ledger, -write.points); expected.spends++ }
          if (write.kind === 'credit') { bump(expected.credits, write.user, write.delta); expected.entries++ }
          if (write.kind === 'event') expected.events++
        }
        const count = async (sql: string) => Number((await conn.query(sql)).rows[0].n)
        const counts = {
          adds: adds.length,
          spends: await count('SELECT count(*) AS n FROM point_spends'),
          entries: await count('SELECT count(*) AS n FROM credit_entries'),
          events: await count('SELECT count(*) AS n FROM events')
        }
        for (const what of ['adds', 'spends', 'entries', 'events'] as const) {
          if (counts[what] !== expected[what]) problems.push(`${counts[what]} ${what} stored, ${expected[what]} committed keys`)
        }
        const totals = new Map((await conn.query<{ ledger_id: number, balance: number }>('SELECT ledger_id, balance FROM ledger_totals')).rows.map(r => [r.ledger_id, r.balance]))
        for (let ledger = 0; ledger <= USERS; ledger++) {
          if ((totals.get(ledger) ?? 0) !== (expected.ledgers.get(ledger) ?? 0)) problems.push(`ledger ${ledger}: total ${totals.get(ledger)}, committed writes make ${expected.ledgers.get(ledger)}`)
        }
        const credits = new Map((await conn.query<{ id: number, credits: number }>('SELECT id, credits FROM users')).rows.map(r => [r.id, r.credits]))
        for (let user = 1; user <= USERS; user++) {
          if (credits.get(user) !== (expected.credits.get(user) ?? 0)) problems.push(`user ${user}: ${credits.get(user)} credits, committed writes make ${expected.credits.get(user) ?? 0}`)
        }
        const events = (await conn.query<{ user_id: number, time: number, id: number }>('SELECT user_id, time, id FROM events ORDER BY id')).rows
        const last = new Map<number, number>()
        for (const event of events) {
          if (event.time < (last.get(event.user_id) ?? 0)) problems.push(`event ${event.id} of user ${event.user_id}: time ${event.time} after ${last.get(event.user_id)}`)
          last.set(event.user_id, event.time)
        }
        await conn.query('COMMIT')
      } finally {
        conn.release()
      }
      return problems
    }

    for (let round = 1; round <= ROUNDS; round++) {
      const stop = { now: false }
      const clients = instances.flatMap((_, slot) => Array.from({ length: WORKERS }, async (_, w) => await client(round, slot, w, stop)))
      await sleep(between(200, 700))
      const slot = round % 2
      const victim = instances[slot]!
      victim.kill('SIGKILL')
      // The other serves on while the killed one's sessions end.
      await sleep(between(100, 300))
      stop.now = true
      await Promise.all(clients)
      const { signal } = await victim.exited
      if (signal !== 'SIGKILL') broken.push(`round ${round}: the instance ended by ${String(signal)}, not the kill`)
      const restarted = await launchTally(env)
      await restarted.ready
      instances[slot] = restarted
      const problems = await verify()
      if (problems.length === 0) held++
      else broken.push(`round ${round}: ${problems.slice(0, 5).join('; ')}`)
    }

    const check = await runDist('cli/db-check.js', { DATABASE_URL: url }).exited
    t.equal(check.code, 0, `db:check holds: ${check.output.trim().split('\n').at(-1)}`)
    const exits = await Promise.all(instances.map(stopTally))
    t.strictSame(exits.map(e => e.code), [0, 0], 'both shut down cleanly at the end')

    const line = `pg crash rounds: ${held}/${ROUNDS} held`
    t.comment(line)
    process.stdout.write(`${line}\n`)
    t.comment(`${acked.size} acknowledged of ${sent.size} sent writes checked after every round; ` +
      `${unanswered.size} were in flight at a kill, ${committedUnanswered} of them committed`)
    t.strictSame(broken, [], 'every round held')
    t.strictSame(fiveHundreds, [], 'no 5xx reached a client')
    t.ok(acked.size > ROUNDS * 20, `load was real: ${acked.size} acknowledged writes`)
  })
}
