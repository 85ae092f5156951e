// `npm run bench`: the built server on a temp database, history loaded through the repositories,
// then driven by autocannon on 127.0.0.1. Machines here are shared and noisy, so every figure is
// also given as a ratio to a baseline route of the same server measured in the same run.
import { spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import autocannon from 'autocannon'
import { CreditsRepository } from '../credits/repository.js'
import { migrate } from '../db/migrate.js'
import { openDatabase, type Db } from '../db/open.js'
import { PointsRepository } from '../points/repository.js'
import { AlertsRepository } from '../alerts/repository.js'
import { UsersRepository } from '../users/repository.js'

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5)
const CONNECTIONS = 50
const SIZES = (process.env.BENCH_SIZES ?? '1000,100000,1000000').split(',').map(Number)
const USERS = 1000
const serverPath = new URL('../server.js', import.meta.url).pathname
const resultsDir = new URL('../../bench/results/', import.meta.url).pathname

const say = (line: string) => process.stdout.write(`${line}\n`)

function progress (label: string, done: number, total: number): void {
  const width = 30
  const filled = Math.round(width * done / total)
  process.stderr.write(`\r  ${label} [${'#'.repeat(filled)}${' '.repeat(width - filled)}] ${Math.round(100 * done / total)}%`)
  if (done === total) process.stderr.write('\n')
}

/** Runs `count` steps in transactions of `batch`, with a progress bar. */
function inBatches (db: Db, label: string, count: number, batch: number, step: (i: number) => void): void {
  for (let start = 0; start < count; start += batch) {
    const end = Math.min(count, start + batch)
    db.transaction(() => { for (let i = start; i < end; i++) step(i) }).immediate()
    progress(label, end, count)
  }
}

/**
 * History of `size` rows per kind, through the repository layer: `size` point adds of which 99 %
 * are spent again (so spends must find the live lots among dead ones), `size` events and `size`
 * credit changes spread over the users.
 */
async function loadHistory (dbPath: string, size: number): Promise<void> {
  const db = openDatabase(dbPath)
  await migrate(db)
  const now = () => new Date('2026-01-01T00:00:00Z')
  const users = new UsersRepository(db, now)
  const points = new PointsRepository(db, now)
  const credits = new CreditsRepository(db, now)
  const alerts = new AlertsRepository(db, now, 's')
  const payers = ['DANNON', 'UNILEVER', 'MILLER COORS']
  inBatches(db, 'users  ', USERS, 1000, i => users.create(`user${i}@bench.example`, `User ${i}`))
  const day = (i: number) => new Date(Date.UTC(2000, 0, 1) + i * 1000).toISOString()
  inBatches(db, 'adds   ', size, 10_000, i => points.add(0, { payer: payers[i % 3]!, points: 10, ts: day(i) }))
  const spendable = Math.floor(size * 0.99) * 10
  inBatches(db, 'spends ', Math.ceil(spendable / 10_000), 10, i => points.spend(0, Math.min(10_000, spendable - i * 10_000)))
  // Plenty left for the bench's own spends, newer than everything above.
  points.add(0, { payer: 'BENCH', points: 1_000_000_000, ts: day(size + 1) })
  inBatches(db, 'events ', size, 10_000, i => alerts.record(1 + (i % USERS), { type: i % 2 === 0 ? 'deposit' : 'withdraw', amount: 1000 + (i % 7), time: Math.floor(i / USERS) }))
  inBatches(db, 'credits', size, 10_000, i => credits.add(1 + (i % USERS), 1))
  db.pragma('wal_checkpoint(TRUNCATE)')
  db.close()
}

async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise(resolve => server.close(resolve))
  return port
}

interface Running { url: string, stop: () => Promise<number> }

/** The built server (dist/server.js) on 127.0.0.1; stop() answers its peak RSS in MB. */
async function startServer (dbPath: string, env: Record<string, string> = {}): Promise<Running> {
  const port = await freePort()
  // The flags of `npm start` (package.json): a 4 MB young generation keeps peak RSS down under
  // load at no cost in throughput (measured with this bench).
  const child = spawn(process.execPath, ['--max-semi-space-size=4', serverPath], {
    env: { ...process.env, DB_PATH: dbPath, PORT: String(port), HOST: '127.0.0.1', DAILY_CREDITS_ENABLED: 'false', ...env },
    stdio: ['ignore', 'ignore', 'inherit']
  })
  const killer = setTimeout(() => child.kill('SIGKILL'), 15 * 60_000) // never outlive the bench
  const url = `http://127.0.0.1:${port}`
  for (let tries = 0; ; tries++) {
    try {
      if ((await fetch(`${url}/health`)).ok) break
    } catch {}
    if (tries > 300) throw new Error('the server did not start')
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  return {
    url,
    stop: async () => {
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8')
      const peakKb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0)
      child.kill('SIGTERM')
      await new Promise(resolve => child.on('exit', resolve))
      clearTimeout(killer)
      return Math.round(peakKb / 1024)
    }
  }
}

interface Scenario { name: string, options: (url: string) => autocannon.Options }

const json = { 'content-type': 'application/json' }
let counter = 0
const scenarios: Scenario[] = [
  { name: 'baseline GET /live', options: url => ({ url: `${url}/live` }) },
  { name: 'POST /add', options: url => ({ url: `${url}/add`, method: 'POST', headers: json, body: JSON.stringify({ payer: 'ADDS', points: 1, timestamp: '2030-01-01T00:00:00Z' }) }) },
  { name: 'POST /spend', options: url => ({ url: `${url}/spend`, method: 'POST', headers: json, body: JSON.stringify({ points: 1 }) }) },
  { name: 'GET /balance', options: url => ({ url: `${url}/balance` }) },
  {
    name: 'POST /event',
    options: url => ({
      url: `${url}/event`,
      method: 'POST',
      headers: json,
      // Each request a new, later time, spread over the users so windows hold a realistic few.
      requests: [{
        setupRequest: (request: any) => {
          counter++
          // A user's next event is USERS requests later, so 50 in flight cannot arrive out of order.
          return { ...request, body: JSON.stringify({ type: counter % 3 === 0 ? 'withdraw' : 'deposit', amount: '12.34', user_id: 1 + (counter % USERS), time: 1_000_000 + Math.floor(counter / USERS) }) }
        }
      }]
    })
  },
  {
    name: 'POST /api/credits/:id/add',
    options: url => ({
      url,
      method: 'POST',
      headers: json,
      requests: [{ setupRequest: (request: any) => ({ ...request, path: `/api/credits/${1 + (counter++ % USERS)}/add`, body: JSON.stringify({ amount: 1 }) }) }]
    })
  }
]

// autocannon's percentiles come in whole milliseconds; the mean keeps the fraction.
interface Row { size: number, sync: string, scenario: string, rps: number, p50: number, p99: number, mean: number, errors: number, ratio: number }

async function drive (url: string, scenario: Scenario, seconds: number): Promise<Omit<Row, 'size' | 'sync' | 'ratio'>> {
  const result = await autocannon({ connections: CONNECTIONS, duration: seconds, ...scenario.options(url) })
  return {
    scenario: scenario.name,
    rps: Math.round(result.requests.average),
    p50: result.latency.p50,
    mean: Number(result.latency.mean.toFixed(2)),
    p99: result.latency.p99,
    errors: result.errors + result.non2xx
  }
}

async function measure (url: string, size: number, sync: string, names: string[]): Promise<Row[]> {
  // Warm the JIT and SQLite's page cache before anything counts.
  for (const scenario of scenarios.filter(s => names.includes(s.name))) await drive(url, scenario, 1)
  const rows: Row[] = []
  for (const scenario of scenarios.filter(s => names.includes(s.name))) {
    const row = await drive(url, scenario, SECONDS)
    rows.push({ size, sync, ...row, ratio: 0 })
    say(`  ${row.scenario.padEnd(28)} ${String(row.rps).padStart(7)} req/s  p50 ${row.p50} ms  p99 ${row.p99} ms  mean ${row.mean} ms${row.errors > 0 ? `  ${row.errors} errors` : ''}`)
  }
  const baseline = rows.find(r => r.scenario.startsWith('baseline'))!.rps
  for (const row of rows) row.ratio = Number((row.rps / baseline).toFixed(2))
  return rows
}

async function main (): Promise<void> {
  const started = Date.now()
  const dir = mkdtempSync(join(tmpdir(), 'tally-bench-'))
  const rows: Row[] = []
  const rss: Record<string, number> = {}
  try {
    for (const size of SIZES) {
      const dbPath = join(dir, `bench-${size}.db`)
      say(`history ${size.toLocaleString('en')} rows per kind: loading`)
      await loadHistory(dbPath, size)
      const server = await startServer(dbPath)
      const all = size === SIZES[0] || size === SIZES[SIZES.length - 1]
      rows.push(...await measure(server.url, size, 'normal', all
        ? scenarios.map(s => s.name)
        : ['baseline GET /live', 'POST /spend', 'GET /balance', 'POST /event']))
      rss[String(size)] = await server.stop()
      say(`  peak RSS ${rss[String(size)]} MB`)
      if (size === SIZES[0]) {
        say('DB_SYNCHRONOUS=full')
        const full = await startServer(dbPath, { DB_SYNCHRONOUS: 'full' })
        rows.push(...await measure(full.url, size, 'full', ['baseline GET /live', 'POST /spend']))
        await full.stop()
      }
      rmSync(dbPath, { force: true })
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }

  const smallest = SIZES[0]!
  const largest = SIZES[SIZES.length - 1]!
  const scaling = ['POST /spend', 'GET /balance', 'POST /event'].map(scenario => {
    const row = (size: number) => rows.find(r => r.size === size && r.sync === 'normal' && r.scenario === scenario)!
    const [small, large] = [row(smallest), row(largest)]
    const ratio = (a: number, b: number) => Number((a / Math.max(b, 0.01)).toFixed(2))
    return { scenario, p50Small: small.p50, p50Large: large.p50, ratio: ratio(large.p50, small.p50), meanSmall: small.mean, meanLarge: large.mean, meanRatio: ratio(large.mean, small.mean) }
  })
  const syncRatio = (() => {
    const spend = (sync: string) => rows.find(r => r.size === smallest && r.sync === sync && r.scenario === 'POST /spend')!
    return Number((spend('full').rps / spend('normal').rps).toFixed(2))
  })()

  const md = [
    `Measured ${new Date().toISOString().slice(0, 10)} by \`npm run bench\` (${CONNECTIONS} connections, ${SECONDS} s a scenario, autocannon and the server on the same ${(await import('node:os')).cpus().length}-core machine).`,
    '',
    '| history | sync | scenario | req/s | p50 ms | p99 ms | mean ms | ratio to baseline |',
    '|---:|---|---|---:|---:|---:|---:|---:|',
    ...rows.map(r => `| ${r.size.toLocaleString('en')} | ${r.sync} | ${r.scenario} | ${r.rps} | ${r.p50} | ${r.p99} | ${r.mean} | ${r.ratio} |`),
    '',
    `| latency, ${largest.toLocaleString('en')} rows vs ${smallest.toLocaleString('en')} | p50 ${smallest.toLocaleString('en')} | p50 ${largest.toLocaleString('en')} | p50 ratio | mean ${smallest.toLocaleString('en')} | mean ${largest.toLocaleString('en')} | mean ratio |`,
    '|---|---:|---:|---:|---:|---:|---:|',
    ...scaling.map(s => `| ${s.scenario} | ${s.p50Small} ms | ${s.p50Large} ms | ${s.ratio} | ${s.meanSmall} ms | ${s.meanLarge} ms | ${s.meanRatio} |`),
    '',
    `POST /spend with DB_SYNCHRONOUS=full runs at ${syncRatio} × the req/s of normal.`,
    '',
    `Peak RSS of the server: ${Object.entries(rss).map(([size, mb]) => `${Number(size).toLocaleString('en')} rows ${mb} MB`).join(', ')}.`,
    ''
  ].join('\n')
  mkdirSync(resultsDir, { recursive: true })
  writeFileSync(join(resultsDir, 'latest.json'), JSON.stringify({ seconds: SECONDS, connections: CONNECTIONS, rows, scaling, syncRatio, peakRssMb: rss }, null, 2) + '\n')
  writeFileSync(join(resultsDir, 'latest.md'), md)
  say('')
  say(md)
  say(`written to bench/results/latest.{json,md} in ${Math.round((Date.now() - started) / 1000)} s`)
}

await main()
