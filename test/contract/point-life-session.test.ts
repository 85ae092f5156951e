import { readFileSync, writeFileSync } from 'node:fs'
import t from 'tap'
import { build } from '../helper.js'
import { readmeUrl } from '../readme-session.js'

// README.md's "The life of a point" shows one scripted session: the requests below, sent in
// order to a fresh tally whose clock the script sets (time has to pass for points to expire),
// and what tally answered, byte for byte. This runs the script on the engine under test and
// compares; `TALLY_README_WRITE=1 npx tap --disable-coverage test/contract/point-life-session.test.ts`
// writes a fresh session's outputs in. Every stamp comes from the script's clock, so nothing is
// masked.

type Step = { clock: string, why: string } | { method: 'GET' | 'POST', url: string, body?: unknown }

const script: Step[] = [
  { clock: '2026-01-10T09:00:00Z', why: 'a shop grants 500 points that expire at the end of January; a bank grants 1000 that never expire' },
  { method: 'POST', url: '/add', body: { payer: 'SHOP', points: 500, timestamp: '2026-01-01T00:00:00Z', expires_at: '2026-02-01T00:00:00Z' } },
  { method: 'POST', url: '/add', body: { payer: 'BANK', points: 1000, timestamp: '2026-01-05T00:00:00Z' } },
  { method: 'POST', url: '/spend', body: { points: 200 } },
  { clock: '2026-01-12T18:30:00Z', why: 'checkout holds 400 points until the payment clears; 250 are captured, the rest goes back' },
  { method: 'POST', url: '/holds', body: { points: 400, expires_at: '2026-01-13T18:30:00Z' } },
  { method: 'POST', url: '/holds/1/capture', body: { points: 250 } },
  { clock: '2026-01-20T10:00:00Z', why: 'another checkout is abandoned: its hold is voided' },
  { method: 'POST', url: '/holds', body: { points: 100 } },
  { method: 'GET', url: '/balance/details' },
  { method: 'POST', url: '/holds/2/void', body: {} },
  { clock: '2026-01-25T16:00:00Z', why: 'an order is refunded in part: 50 points go back to the lot the spend drew last' },
  { method: 'POST', url: '/spends/1/reversals', body: { points: 50 } },
  { method: 'GET', url: '/balance/details' },
  { clock: '2026-01-31T23:59:59.999Z', why: 'one millisecond before the shop\'s points expire, a spend still draws them' },
  { method: 'POST', url: '/spend', body: { points: 60 } },
  { clock: '2026-02-01T00:00:00Z', why: 'the instant they expire: no sweep has run, yet the 40 left are gone' },
  { method: 'GET', url: '/balance' },
  { method: 'POST', url: '/spend', body: { points: 100 } },
  { method: 'GET', url: '/expirations' },
  { method: 'GET', url: '/balance?at=2026-01-20T12:00:00Z' },
  { method: 'GET', url: '/holds' }
]

/** Runs the script on a fresh tally; answers the session as the README shows it. */
async function session (t: Parameters<typeof build>[0]): Promise<string> {
  let clock = new Date(0)
  const app = await build(t, { now: () => clock, env: { EXPIRY_SWEEP_ENABLED: 'false' } })
  const lines: string[] = []
  for (const step of script) {
    if ('clock' in step) {
      clock = new Date(step.clock)
      lines.push(`# ${step.clock}: ${step.why}`)
      continue
    }
    const res = await app.inject({ method: step.method, url: step.url, ...(step.body !== undefined && { payload: step.body as object }) })
    lines.push(`${step.method} ${step.url}${step.body !== undefined ? ` ${JSON.stringify(step.body)}` : ''}`, `${res.statusCode} ${res.body}`)
  }
  return lines.join('\n')
}

const START = '<!-- point-life session: written by test/contract/point-life-session.test.ts -->'
const END = '<!-- end of point-life session -->'

t.test('the README\'s life of a point is what tally answers to its script', async t => {
  const actual = await session(t)
  const readme = readFileSync(readmeUrl, 'utf8')
  const [before, rest] = readme.split(START)
  t.ok(rest !== undefined, 'the README has the session')
  const [, after] = rest!.split(END)
  const block = `${START}\n\`\`\`\n${actual}\n\`\`\`\n${END}`
  if (process.env.TALLY_README_WRITE === '1') {
    writeFileSync(readmeUrl, `${before!}${block}${after!}`)
    t.comment('README.md now shows this session: run again without TALLY_README_WRITE to check it')
    return
  }
  t.equal(`${START}${rest!.split(END)[0]!}${END}`, block)
})
