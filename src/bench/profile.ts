// `npm run bench:profile`: where a request's microseconds go. The built server runs under
// --cpu-prof on a temp file with a small history; autocannon drives one scenario at a time; the
// profile's samples are summed by what they are (SQLite, socket writes, validation, logging, ...)
// and divided by the requests answered: CPU µs per request, by part.
import { spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import autocannon from 'autocannon'
import { freePort } from './net.js'

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5)
const serverPath = new URL('../server.js', import.meta.url).pathname
const json = { 'content-type': 'application/json' }
let counter = 0

const scenarios: Record<string, (url: string) => autocannon.Options> = {
  'GET /live': url => ({ url: `${url}/live` }),
  'GET /balance': url => ({ url: `${url}/balance` }),
  'POST /add': url => ({ url: `${url}/add`, method: 'POST', headers: json, body: JSON.stringify({ payer: 'ADDS', points: 1, timestamp: '2030-01-01T00:00:00Z' }) }),
  'POST /spend': url => ({ url: `${url}/spend`, method: 'POST', headers: json, body: JSON.stringify({ points: 1 }) }),
  'POST /event': url => ({
    url: `${url}/event`,
    method: 'POST',
    headers: json,
    requests: [{ setupRequest: (request: any) => ({ ...request, body: JSON.stringify({ type: 'deposit', amount: '12.34', user_id: 1 + (++counter % 100), time: 1_000_000 + Math.floor(counter / 100) }) }) }]
  })
}

interface ProfileNode { id: number, callFrame: { functionName: string, url: string }, children?: number[] }
interface Profile { nodes: ProfileNode[], samples: number[], timeDeltas: number[] }

/** What a sample is spent on, by the function and file it is in. */
function partOf (node: ProfileNode): string {
  const { functionName: fn, url } = node.callFrame
  if (fn === '(idle)') return 'idle (waiting for the network or the other core)'
  if (fn === '(garbage collector)') return 'garbage collection'
  // A statement runs in native code, which the profile counts to the JS function that ran it.
  if (/\/dist\/[a-z]+\/repository\.js$/.test(url)) return 'SQLite statements (and the repositories\' rules)'
  if (url.includes('better-sqlite3')) return 'SQLite transactions (BEGIN, savepoints, COMMIT)'
  if (fn === 'writev' || url.includes('stream_base_commons')) return 'socket writes (the responses)'
  if (fn === 'writeString' || fn === 'writeBuffer') return 'file writes (the log)'
  if (url.includes('/pino') || url.includes('sonic-boom')) return 'the request log line'
  if (url.includes('/ajv') || url.includes('RegExp')) return 'validation'
  if (url.includes('fast-json-stringify')) return 'response serialization'
  if (url.includes('secure-json-parse') || fn === 'parse') return 'JSON parsing'
  if (url.includes('/fastify/') || url.includes('find-my-way') || url.includes('light-my-request') || url.includes('avvio')) return 'Fastify'
  if (url.startsWith('node:') || url === '') return 'Node (HTTP parsing, streams, timers)'
  if (url.includes('/dist/')) return 'tally\'s own code'
  return 'other'
}

async function profile (name: string, options: (url: string) => autocannon.Options): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'tally-profile-'))
  try {
    const port = await freePort()
    const child = spawn(process.execPath, ['--max-semi-space-size=4', '--cpu-prof', `--cpu-prof-dir=${dir}`, serverPath], {
      env: { ...process.env, DB_PATH: join(dir, 'app.db'), PORT: String(port), HOST: '127.0.0.1', DAILY_CREDITS_ENABLED: 'false', LOG_LEVEL: 'info' },
      stdio: ['ignore', 'ignore', 'inherit']
    })
    const url = `http://127.0.0.1:${port}`
    for (let tries = 0; ; tries++) {
      try {
        if ((await fetch(`${url}/health`)).ok) break
      } catch {}
      if (tries > 300) throw new Error('the server did not start')
      await new Promise(resolve => setTimeout(resolve, 100))
    }
    for (let i = 1; i <= 100; i++) {
      await fetch(`${url}/users`, { method: 'POST', headers: json, body: JSON.stringify({ email: `u${i}@bench.example`, name: `U ${i}` }) })
    }
    await fetch(`${url}/add`, { method: 'POST', headers: json, body: JSON.stringify({ payer: 'BENCH', points: 1_000_000_000, timestamp: '2020-01-01T00:00:00Z' }) })
    const warm = await autocannon({ connections: 50, duration: 1, ...options(url) })
    const result = await autocannon({ connections: 50, duration: SECONDS, ...options(url) })
    child.kill('SIGTERM')
    await new Promise(resolve => child.on('exit', resolve))
    const file = readdirSync(dir).find(f => f.endsWith('.cpuprofile'))!
    const prof = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Profile
    const byId = new Map(prof.nodes.map(node => [node.id, node]))
    const parts = new Map<string, number>()
    prof.samples.forEach((id, i) => {
      const part = partOf(byId.get(id)!)
      parts.set(part, (parts.get(part) ?? 0) + (prof.timeDeltas[i] ?? 0))
    })
    // The profile covers start-up and the warm-up too: their requests count as well.
    const requests = warm.requests.total + result.requests.total + 101
    const busy = [...parts].filter(([part]) => !part.startsWith('idle')).reduce((sum, [, us]) => sum + us, 0)
    process.stdout.write(`\n${name}: ${Math.round(result.requests.average)} req/s, ${(busy / requests).toFixed(1)} µs of the server's CPU per request\n`)
    process.stdout.write('| part | µs per request | share |\n|---|---:|---:|\n')
    for (const [part, us] of [...parts].filter(([part]) => !part.startsWith('idle')).sort((a, b) => b[1] - a[1])) {
      process.stdout.write(`| ${part} | ${(us / requests).toFixed(1)} | ${Math.round(100 * us / busy)} % |\n`)
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

const chosen = (process.env.PROFILE_SCENARIOS ?? Object.keys(scenarios).join(',')).split(',')
for (const name of chosen) await profile(name, scenarios[name]!)
