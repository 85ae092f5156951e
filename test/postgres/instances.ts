import { readdirSync } from 'node:fs'
import t from 'tap'
import { checkPool, ensureBuilt, freshDatabase, inFlightLimit, killAll, launchTally, missingServer, request, runDist, shuffled, stopTally, type Answer, type Tally } from './cluster.js'

// npm run test:instances (TEST_DATABASE_URL: a real server). Three tally processes start at the
// same moment on one empty database, then take at once, spread round-robin over the three: spends
// on one ledger and deducts on one user asking more than is there, one keyed request sent to all
// three, one email in several letter cases, one user's events, and the daily grant (each instance
// catches up on start; two credits:daily commands run meanwhile). Every read-check-write that
// SQLite's single writer made safe must stay safe here through row locks and unique keys alone.
// Run in both isolation modes.

const DAILY = 5
const START = 400 // four payers of 100 on the default ledger
const KEYED_POINTS = 50
const KEYED_CREDITS = 7
const GRANTED_USERS = 12
const EVENT_USER = 2
const HOLD_USER = 3 // its own ledger: holds raced by captures and voids
const HOLDS = 12

const cents = (n: number) => `${Math.floor(n / 100)}.${String(n % 100).padStart(2, '0')}`
const sum = (values: number[]) => values.reduce((a, b) => a + b, 0)
const sorted = (values: number[]) => [...values].sort((a, b) => a - b)

/** One email in six letter cases, all the same email. */
const casings = (email: string) => {
  const [local, domain] = email.split('@') as [string, string]
  return [email, email.toUpperCase(), `${local[0]!.toUpperCase()}${local.slice(1)}@${domain}`, `${local}@${domain.toUpperCase()}`,
    `${local.toUpperCase()}@${domain}`, [...email].map((c, i) => i % 2 === 0 ? c.toUpperCase() : c).join('')]
}

/** Answers with a status of 500 or more, named: none may occur. */
const serverErrors = (what: string, answers: Answer[]) =>
  answers.filter(a => a.status >= 500).map(a => `${what}: ${a.status} ${a.text}`)

const codesOf = (answers: Answer[]) => [...new Set(answers.filter(a => a.status !== 200 && a.status !== 201).map(a => `${a.status} ${String(a.body?.code)}`))].sort()

const missing = missingServer()
if (missing !== undefined) {
  t.fail(missing)
} else {
  ensureBuilt()
  for (const isolation of ['read_committed', 'serializable']) {
    t.test(`three instances at once, PG_ISOLATION=${isolation}`, { timeout: 55_000 }, async t => {
      t.teardown(killAll)
      const url = await freshDatabase('inst', fn => { t.teardown(fn) })
      const env = { DATABASE_URL: url, PG_ISOLATION: isolation, PG_POOL_SIZE: '8', DAILY_CREDITS_ENABLED: 'true', DAILY_CREDITS_AMOUNT: String(DAILY) }

      // The same moment, the empty database: each migrates (or finds it migrated) and catches up.
      const clock = Date.now()
      const took: string[] = []
      const lap = (what: string) => took.push(`${what} ${((Date.now() - clock) / 1000).toFixed(1)} s`)
      const launched = await Promise.all([0, 1, 2].map(async () => await launchTally(env)))
      await Promise.all(launched.map(async i => await i.ready))
      const [one, two, three] = launched as [Tally, Tally, Tally]
      const urls = [one.url, two.url, three.url]
      const at = (i: number) => urls[i % 3]!
      const db = checkPool(url, fn => { t.teardown(fn) })
      const migrations = readdirSync(new URL('../../migrations/postgres', import.meta.url)).filter(f => f.endsWith('.sql')).sort()
      const { rows: versions } = await db.query<{ version: number }>('SELECT version FROM schemaversion ORDER BY version')
      // Version 0 is postgrator's own first row.
      t.strictSame(versions.map(v => v.version), [0, ...migrations.map(f => Number(f.split('.')[0]))], 'migrated once: one schemaversion row per migration')

      // Set up through the first instance: points on the default ledger, users (1 takes the
      // deducts, 2 the events), credits.
      for (const [i, payer] of ['A', 'B', 'C', 'D'].entries()) {
        t.equal((await request(one.url, 'POST', '/add', { payer, points: START / 4, timestamp: `2022-01-0${i + 1}T00:00:00Z` })).status, 200)
      }
      for (let i = 0; i < GRANTED_USERS; i++) {
        t.equal((await request(one.url, 'POST', '/users', { email: `user${i}@example.com`, name: `User ${i}` })).status, 201)
      }
      t.equal((await request(one.url, 'POST', '/api/credits/1/add', { amount: 100 })).status, 200)
      t.equal((await request(one.url, 'POST', `/users/${HOLD_USER}/points/add`, { payer: 'H', points: 1000, timestamp: '2022-01-01T00:00:00Z' })).status, 200)
      for (let i = 0; i < HOLDS; i++) {
        t.equal((await request(one.url, 'POST', `/users/${HOLD_USER}/points/holds`, { points: 10 })).status, 201)
      }

      // A client as the API asks: a 503 DATABASE_BUSY changed nothing and is sent again. On
      // SERIALIZABLE, a transaction that lost its retries to conflicts on one hot row ends so.
      // The bulk of the requests go through `limit`: at most 12 in flight to one instance (the
      // rest wait here, as behind a load balancer), enough to keep its pool busy and its
      // transactions contending, not so many that they wait out the pool's checkout timeout on a
      // loaded machine. The racing bursts (one key, one email) bypass it, to arrive together.
      const limit = inFlightLimit(12)
      let busy = 0
      const send = async (url: string, path: string, body: object, headers?: Record<string, string>): Promise<Answer> => {
        for (let attempt = 1; ; attempt++) {
          const answer = await request(url, 'POST', path, body, headers)
          if (answer.status !== 503 || answer.body?.code !== 'DATABASE_BUSY' || attempt === 20) return answer
          busy++
          await new Promise(resolve => setTimeout(resolve, 10 * attempt))
        }
      }
      const queued = async (url: string, path: string, body: object) => await limit(url, async () => await send(url, path, body))

      // Everything at once, round-robin over the three, the kinds of request mixed in a random order.
      lap('started and set up')
      const began = Date.now()
      const daily = [runDist('cli/credits-daily.js', env), runDist('cli/credits-daily.js', env)]
      const spendAsks = Array.from({ length: 100 }, (_, i) => 1 + (i % 13))
      const deductAsks = Array.from({ length: 80 }, (_, i) => 1 + (i % 4))
      const emails = Array.from({ length: 8 }, (_, i) => `race${i}@example.com`)
      // Six lanes, two per instance, each sending its events in time order, at different paces:
      // times repeat within and across lanes, and a slower lane falls behind the user's last event.
      const lanes = Array.from({ length: 6 }, (_, lane) => Array.from({ length: 15 }, (_, i) => ({
        time: Math.floor(i * (lane + 3) / 4), amount: 10_000 + lane * 100 + i
      })))
      const spends: Answer[] = []
      const deducts: Answer[] = []
      const keyedAdds: Answer[] = []
      const keyedCredits: Answer[] = []
      const signups: Array<{ email: string, cased: string, answer: Answer }> = []
      const events: Array<{ amount: number, time: number, answer: Answer }> = []
      // Each hold at once: a partial capture, a full capture and a void, one to each instance.
      const resolutions: Array<Array<{ how: string, answer: Answer }>> = []
      const resolvers = [['capture', { points: 4 }], ['capture', {}], ['void', {}]] as const
      /** Six copies of one keyed request, two to each instance, all at once. */
      const keyedBurst = (into: Answer[], path: string, body: object, key: string) => async () => {
        into.push(...await Promise.all(Array.from({ length: 6 }, async (_, i) => await send(at(i), path, body, { 'idempotency-key': key }))))
      }
      const addKey = `add-${isolation}`
      const creditKey = `credit-${isolation}`
      const jobs: Array<() => Promise<unknown>> = [
        ...spendAsks.map((points, i) => async () => { spends[i] = await queued(at(i), '/spend', { points }) }),
        ...deductAsks.map((amount, i) => async () => { deducts[i] = await queued(at(i), '/api/credits/1/deduct', { amount }) }),
        ...[0, 1].map(() => keyedBurst(keyedAdds, '/add', { payer: 'KEYED', points: KEYED_POINTS, timestamp: '2022-02-01T00:00:00Z' }, addKey)),
        ...[0, 1].map(() => keyedBurst(keyedCredits, '/api/credits/1/add', { amount: KEYED_CREDITS }, creditKey)),
        // Each email in six letter cases at once, two to each instance.
        ...emails.map(email => async () => signups.push(...await Promise.all(casings(email).map(async (cased, i) =>
          ({ email, cased, answer: await send(at(i), '/users', { email: cased, name: 'Racer' }) }))))),
        ...Array.from({ length: HOLDS }, (_, h) => async () => {
          resolutions[h] = await Promise.all(resolvers.map(async ([action, body], i) => ({
            how: `${action} ${JSON.stringify(body)}`,
            answer: await send(at(h + i), `/users/${HOLD_USER}/points/holds/${h + 1}/${action}`, body)
          })))
        }),
        ...lanes.map((lane, l) => async () => {
          for (const { time, amount } of lane) {
            events.push({ time, amount, answer: await queued(at(l), '/event', { type: 'deposit', amount: cents(amount), user_id: EVENT_USER, time }) })
          }
        })
      ]
      await Promise.all(shuffled(jobs).map(async job => await job()))
      t.comment(`${spends.length + deducts.length + keyedAdds.length + keyedCredits.length + signups.length + events.length} requests at once took ${Date.now() - began} ms; ${busy} DATABASE_BUSY answers sent again`)
      // READ COMMITTED waits for row locks and never retries: nothing should have been busy.
      if (isolation === 'read_committed') t.equal(busy, 0, 'no DATABASE_BUSY under READ COMMITTED')
      const commands = await Promise.all(daily.map(async c => await c.exited))
      t.strictSame(commands.map(c => c.code), [0, 0], 'both credits:daily commands ran while the instances served')
      lap('load done')
      // A last grant, alone: it grants whoever the others could not have seen (users created since).
      const last = await runDist('cli/credits-daily.js', env).exited
      lap('last grant done')
      t.equal(last.code, 0, last.output)
      const day = /daily credits for (\d{4}-\d{2}-\d{2})/.exec(last.output)?.[1]

      t.strictSame([
        ...serverErrors('spend', spends), ...serverErrors('deduct', deducts), ...serverErrors('keyed add', keyedAdds),
        ...serverErrors('keyed credits', keyedCredits), ...serverErrors('users', signups.map(s => s.answer)),
        ...serverErrors('event', events.map(e => e.answer)), ...serverErrors('hold', resolutions.flat().map(r => r.answer))
      ], [], 'no 5xx: every conflict between instances was resolved, not surfaced')

      await t.test('the total drawn never exceeds what was there', async t => {
        t.ok(sum(spendAsks) > START + KEYED_POINTS, `asked ${sum(spendAsks)} of ${START + KEYED_POINTS}`)
        t.strictSame(codesOf(spends), ['400 INSUFFICIENT_POINTS'], 'only successes and INSUFFICIENT_POINTS')
        const ok = spends.map((s, i) => ({ s, points: spendAsks[i]! })).filter(({ s }) => s.status === 200)
        t.strictSame(ok.filter(({ s, points }) => -sum(s.body.map((d: { points: number }) => d.points)) !== points), [], 'each answer drew what it asked')
        const spent = sum(ok.map(({ points }) => points))
        const balance = (await request(three.url, 'GET', '/balance')).body as Record<string, number>
        const left = sum(Object.values(balance))
        t.equal(spent + left, START + KEYED_POINTS, `what the 200s drew plus what is left is what was there: ${spent} + ${left}`)
        const { rows: [stored] } = await db.query('SELECT count(*)::int AS n, coalesce(sum(points), 0)::int AS points FROM point_spends WHERE ledger_id = 0')
        t.strictSame(stored, { n: ok.length, points: spent }, 'one stored spend per 200, none other')
        const { rows: [total] } = await db.query('SELECT balance FROM ledger_totals WHERE ledger_id = 0')
        t.equal(total.balance, left, 'the maintained total agrees')
      })

      await t.test('deducts on one user: none lost, none past the balance', async t => {
        t.strictSame(codesOf(deducts), ['400 INSUFFICIENT_CREDITS'])
        const ok = deducts.map((d, i) => ({ d, amount: deductAsks[i]! })).filter(({ d }) => d.status === 200)
        const deducted = sum(ok.map(({ amount }) => amount))
        const { rows } = await db.query<{ balance_after: number }>("SELECT balance_after FROM credit_entries WHERE user_id = 1 AND kind = 'deduct'")
        t.strictSame(sorted(rows.map(r => r.balance_after)), sorted(ok.map(({ d }) => d.body.credits)),
          'the balances the 200s answered are exactly the balances the history recorded')
        const credits = (await request(two.url, 'GET', '/api/credits/1')).body.credits
        t.equal(credits, 100 + KEYED_CREDITS + DAILY - deducted, `100 + ${KEYED_CREDITS} + the grant − ${deducted} deducted`)
        const { rows: [history] } = await db.query('SELECT sum(delta)::int AS total FROM credit_entries WHERE user_id = 1')
        t.equal(history.total, credits, 'the history sums to the balance')
      })

      await t.test('each key applies exactly once; every answer is the first, byte for byte', async t => {
        for (const [key, answers, rowsSql] of [
          [addKey, keyedAdds, "SELECT count(*)::int AS n FROM point_transactions WHERE payer = 'KEYED'"],
          [creditKey, keyedCredits, `SELECT count(*)::int AS n FROM credit_entries WHERE user_id = 1 AND kind = 'add' AND delta = ${KEYED_CREDITS}`]
        ] as const) {
          const first = answers.filter(a => !a.replayed)
          t.equal(first.length, 1, `${key}: one answer applied, ${answers.length - 1} marked Idempotent-Replayed`)
          t.equal(first[0]?.status, 200, `${key}: applied`)
          t.strictSame([...new Set(answers.map(a => `${a.status} ${a.text}`))], [`200 ${first[0]?.text}`], `${key}: all ${answers.length} answers identical`)
          t.equal((await db.query(rowsSql)).rows[0].n, 1, `${key}: one row written`)
          t.equal((await db.query('SELECT count(*)::int AS n FROM idempotency_keys WHERE key = $1', [key])).rows[0].n, 1, `${key}: one key stored`)
        }
      })

      await t.test('each email, in any letter case, creates one user', async t => {
        for (const email of emails) {
          const mine = signups.filter(s => s.email === email)
          const created = mine.filter(s => s.answer.status === 201)
          t.equal(created.length, 1, `${email}: one 201`)
          t.equal(created[0]?.answer.body.email, created[0]?.cased, `${email}: stored as that request spelled it`)
          t.strictSame(mine.filter(s => s.answer.status !== 201).map(s => `${s.answer.status} ${s.answer.body.code}`),
            Array(mine.length - 1).fill('409 EMAIL_TAKEN'), `${email}: every other casing 409 EMAIL_TAKEN`)
          t.equal((await db.query('SELECT count(*)::int AS n FROM users WHERE email_key = $1', [email])).rows[0].n, 1, `${email}: one row`)
        }
      })

      await t.test('no event accepted out of order; every accepted event is stored', async t => {
        t.ok(codesOf(events.map(e => e.answer)).every(code => code === '400 EVENT_OUT_OF_ORDER'), `only 200 and EVENT_OUT_OF_ORDER: ${codesOf(events.map(e => e.answer)).join(', ')}`)
        const { rows } = await db.query<{ id: number, time: number, amount: number }>('SELECT id, time, amount FROM events WHERE user_id = $1 ORDER BY id', [EVENT_USER])
        const backwards = rows.filter((row, i) => i > 0 && row.time < rows[i - 1]!.time)
        t.strictSame(backwards, [], 'in id (commit) order, times never go back')
        const accepted = events.filter(e => e.answer.status === 200)
        t.strictSame(sorted(rows.map(r => r.amount)), sorted(accepted.map(e => e.amount)), `the ${accepted.length} accepted events, and only they, are stored`)
        t.ok(accepted.length >= 15, `events were accepted: ${accepted.length} of ${events.length}`)
      })

      await t.test('each hold resolves once: one capture or void wins, the others are HOLD_NOT_PENDING', async t => {
        let captured = 0
        for (const [h, answers] of resolutions.entries()) {
          const won = answers.filter(r => r.answer.status === 200)
          t.equal(won.length, 1, `hold ${h + 1}: one winner (${won.map(r => r.how).join(', ')})`)
          t.strictSame(answers.filter(r => r.answer.status !== 200).map(r => `${r.answer.status} ${r.answer.body?.code}`),
            ['409 HOLD_NOT_PENDING', '409 HOLD_NOT_PENDING'], `hold ${h + 1}: the others refused`)
          const winner = won[0]!.answer.body
          const { rows: [stored] } = await db.query('SELECT status, captured FROM point_holds WHERE id = $1', [h + 1])
          t.strictSame(stored, { status: winner.status, captured: winner.captured ?? null }, `hold ${h + 1}: stored as the winner answered`)
          captured += winner.captured ?? 0
        }
        const balance = (await request(two.url, 'GET', `/users/${HOLD_USER}/points/balance/details`)).body
        t.strictSame(balance, { H: { available: 1000 - captured, held: 0, expiring: [] } }, `1000 less the ${captured} points captured, none held`)
        const { rows: [spent] } = await db.query('SELECT coalesce(sum(points), 0)::int AS points, count(*)::int AS n FROM point_spends WHERE ledger_id = $1', [HOLD_USER])
        t.strictSame(spent, { points: captured, n: resolutions.filter(a => a.some(r => r.answer.status === 200 && r.how.startsWith('capture'))).length }, 'one spend per winning capture')
      })

      await t.test('each user is granted once that day', async t => {
        t.ok(day, `the last grant named its day: ${last.output}`)
        const { rows: users } = await db.query(
          'SELECT u.id, (SELECT count(*)::int FROM daily_grants g WHERE g.user_id = u.id AND g.day = $1) AS today, ' +
          '(SELECT count(*)::int FROM daily_grants g WHERE g.user_id = u.id) AS grants, ' +
          "(SELECT count(*)::int FROM credit_entries e WHERE e.user_id = u.id AND e.kind = 'daily_grant') AS entries FROM users u ORDER BY u.id", [day])
        t.equal(users.length, GRANTED_USERS + emails.length)
        t.strictSame(users.filter(u => u.today !== 1 || u.grants !== u.entries), [], 'every user: one grant today, one credit entry per grant')
        const { rows: runs } = await db.query<{ trigger: string, n: number, users: number }>(
          'SELECT trigger, count(*)::int AS n, sum(users_credited)::int AS users FROM daily_grant_runs GROUP BY trigger ORDER BY trigger')
        t.strictSame(runs.map(r => [r.trigger, r.n]), [['command', 3], ['startup', 1]], 'three commands; of three start-up catch-ups, one ran (the others found its run)')
        t.equal(sum(runs.map(r => r.users)), users.length, 'the runs granted as many users as there are grants')
      })

      const check = await runDist('cli/db-check.js', { DATABASE_URL: url }).exited
      t.equal(check.code, 0, `db:check holds: ${check.output.trim().split('\n').at(-1)}`)
      lap('db:check done')
      const exits = await Promise.all(launched.map(stopTally))
      lap('stopped')
      t.comment(`at ${took.join(', ')}`)
      t.strictSame(exits.map(e => e.code), [0, 0, 0], 'all three served to the end and shut down cleanly')
    })
  }
}
