// `npm run bench`: the built server on a temp database, history loaded through the repositories,
// then driven by autocannon on 127.0.0.1. Machines here are shared and noisy, so every figure is
// given as a ratio to a bare Fastify app (src/bench/bare.ts, its own process) measured right
// before it, and to tally's own GET /live, each the median of BENCH_RUNS runs.
// BENCH_ENGINES (sqlite,postgres by default) picks the engines; PostgreSQL's part is in
// runPostgres below.
import { spawn } from 'node:child_process'
import { createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import autocannon from 'autocannon'
import { freePort } from './net.js'
import { createDatabase, loadPgHistory, pgbench, pgbenchInit, probe, type BenchDatabase } from './postgres.js'
import { SqliteCredits } from '../credits/sqlite.js'
import { migrate } from '../storage/sqlite/migrate.js'
import { openDatabase, type Db } from '../storage/sqlite/open.js'
import { SqlitePoints } from '../points/sqlite.js'
import { SqliteAlerts } from '../alerts/sqlite.js'
import { SqliteUsers } from '../users/sqlite.js'

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5)
const RUNS = Number(process.env.BENCH_RUNS ?? 3)
const CONNECTIONS = 50
const SIZES = (process.env.BENCH_SIZES ?? '1000,100000,1000000').split(',').map(Number)
const USERS = 1000
const IMPORT_BATCHES = Number(process.env.BENCH_IMPORT_BATCHES ?? 30)
const PEER = process.env.BENCH_PEER
// BENCH_SCENARIOS=none: only the extras (import rate, RSS, slowest commit); or a comma list of names.
const ONLY = process.env.BENCH_SCENARIOS?.split(',')
const ENGINES = (process.env.BENCH_ENGINES ?? 'sqlite,postgres').split(',')
for (const engine of ENGINES) {
  if (engine !== 'sqlite' && engine !== 'postgres') throw new Error(`BENCH_ENGINES: ${JSON.stringify(engine)} is none of sqlite, postgres`)
}
// The server the PostgreSQL rows run on; the bench makes its own databases there and drops them.
const PG_URL = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
const PG_SCENARIOS = ['POST /add', 'POST /spend', 'GET /balance', 'POST /event', 'POST /api/credits/:id/add']
const serverPath = new URL('../server.js', import.meta.url).pathname
const barePath = new URL('./bare.js', import.meta.url).pathname
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
 * History of `size` rows per kind, through the SQLite stores: `size` point adds of which 99 %
 * are spent again (so spends must find the live lots among dead ones), `size` events and `size`
 * credit changes spread over the users.
 */
async function loadHistory (dbPath: string, size: number): Promise<void> {
  const db = openDatabase(dbPath)
  await migrate(db)
  const now = () => new Date('2026-01-01T00:00:00Z')
  const users = new SqliteUsers(db, now)
  const points = new SqlitePoints(db, now)
  const credits = new SqliteCredits(db, now)
  const alerts = new SqliteAlerts(db, now, 's')
  const payers = ['DANNON', 'UNILEVER', 'MILLER COORS']
  inBatches(db, 'users  ', USERS, 1000, i => users.create(`user${i}@bench.example`, `User ${i}`).run())
  const day = (i: number) => new Date(Date.UTC(2000, 0, 1) + i * 1000).toISOString()
  inBatches(db, 'adds   ', size, 10_000, i => points.add(0, { payer: payers[i % 3]!, points: 10, ts: day(i) }).run())
  const spendable = Math.floor(size * 0.99) * 10
  inBatches(db, 'spends ', Math.ceil(spendable / 10_000), 10, i => points.spend(0, Math.min(10_000, spendable - i * 10_000), false).run())
  // Plenty left for the bench's own spends, newer than everything above.
  points.add(0, { payer: 'BENCH', points: 1_000_000_000, ts: day(size + 1) }).run()
  inBatches(db, 'events ', size, 10_000, i => alerts.record(1 + (i % USERS), { type: i % 2 === 0 ? 'deposit' : 'withdraw', amount: 1000 + (i % 7), time: Math.floor(i / USERS) }).run())
  inBatches(db, 'credits', size, 10_000, i => credits.add(1 + (i % USERS), 1).run())
  // Plenty for the bench's own deducts.
  inBatches(db, 'credits', USERS, 1000, i => credits.add(1 + i, 1_000_000_000).run())
  db.pragma('wal_checkpoint(TRUNCATE)')
  db.close()
}

interface Running { url: string, stop: () => Promise<number> }

/** A node process serving on 127.0.0.1 until stop(), which answers its peak RSS in MB. */
async function startProcess (args: string[], env: Record<string, string>, logFile: string | null, ready: string): Promise<Running> {
  const port = await freePort()
  const log = logFile === null ? 'ignore' : createWriteStream(logFile, { flags: 'a' })
  if (log !== 'ignore') await new Promise(resolve => log.on('open', resolve))
  const child = spawn(process.execPath, args, {
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', ...env },
    stdio: ['ignore', log, 'inherit']
  })
  const killer = setTimeout(() => child.kill('SIGKILL'), 30 * 60_000) // never outlive the bench
  const url = `http://127.0.0.1:${port}`
  for (let tries = 0; ; tries++) {
    try {
      if ((await fetch(`${url}${ready}`)).ok) break
    } catch {}
    if (tries > 300) throw new Error(`${args.join(' ')} did not start`)
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
      if (log !== 'ignore') log.close()
      return Math.round(peakKb / 1024)
    }
  }
}

/**
 * The built server at its defaults (LOG_LEVEL=info, its log lines written to `logFile`), with
 * the flags of `npm start` (package.json) unless `flags` says otherwise.
 */
async function startTally (dbPath: string, logFile: string, env: Record<string, string> = {}, flags = ['--max-semi-space-size=4']): Promise<Running> {
  return await startProcess([...flags, serverPath], { DB_PATH: dbPath, DAILY_CREDITS_ENABLED: 'false', LOG_LEVEL: 'info', ...env }, logFile, '/health')
}

interface Scenario { name: string, options: (url: string) => autocannon.Options }

const json = { 'content-type': 'application/json' }
let counter = 0
const rotate = (path: (user: number) => string, body?: string) => (url: string): autocannon.Options => ({
  url,
  ...(body !== undefined && { method: 'POST', headers: json }),
  requests: [{ setupRequest: (request: any) => ({ ...request, path: path(1 + (counter++ % USERS)), ...(body !== undefined && { body }) }) }]
})

const scenarios: Scenario[] = [
  { name: 'GET /live', options: url => ({ url: `${url}/live` }) },
  { name: 'GET /health', options: url => ({ url: `${url}/health` }) },
  { name: 'GET /balance', options: url => ({ url: `${url}/balance` }) },
  { name: 'GET /api/credits/:id', options: rotate(user => `/api/credits/${user}`) },
  { name: 'POST /add', options: url => ({ url: `${url}/add`, method: 'POST', headers: json, body: JSON.stringify({ payer: 'ADDS', points: 1, timestamp: '2030-01-01T00:00:00Z' }) }) },
  { name: 'POST /spend', options: url => ({ url: `${url}/spend`, method: 'POST', headers: json, body: JSON.stringify({ points: 1 }) }) },
  { name: 'POST /api/credits/:id/add', options: rotate(user => `/api/credits/${user}/add`, JSON.stringify({ amount: 1 })) },
  { name: 'POST /api/credits/:id/deduct', options: rotate(user => `/api/credits/${user}/deduct`, JSON.stringify({ amount: 1 })) },
  // Issue 13: a balance at a past moment (one index read per payer), and each connection placing
  // a hold then capturing half of it (its rest goes back): req/s counts both requests.
  { name: 'GET /balance?at=', options: url => ({ url: `${url}/balance?at=2025-06-01T00:00:00Z` }) },
  {
    name: 'POST /holds + capture',
    options: url => ({
      url,
      requests: [
        {
          method: 'POST',
          path: '/holds',
          headers: json,
          body: JSON.stringify({ points: 2 }),
          onResponse: (status: number, body: string, context: any) => { if (status === 201) context.hold = JSON.parse(body).id }
        },
        {
          method: 'POST',
          headers: json,
          body: JSON.stringify({ points: 1 }),
          setupRequest: (request: any, context: any) => ({ ...request, path: `/holds/${String(context.hold)}/capture` })
        }
      ]
    })
  },
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
  }
]

/** What the issue asks of each scenario's ratio to bare Fastify. */
const targets: Record<string, number> = {
  'GET /live': 0.9,
  'GET /health': 0.8,
  'GET /balance': 0.8,
  'GET /api/credits/:id': 0.8,
  'POST /add': 0.6,
  'POST /spend': 0.6,
  'POST /api/credits/:id/add': 0.6,
  'POST /api/credits/:id/deduct': 0.6,
  'POST /event': 0.5,
  'GET /balance?at=': 0.8,
  'POST /holds + capture': 0.6
}

interface Drive { rps: number, p50: number, p99: number, mean: number, errors: number }

/**
 * The scenario against every server of `urls` at once, the connections split evenly between
 * them: req/s summed, the mean weighted by requests, p50 and p99 the larger of the servers'
 * (autocannon gives percentiles, not the histograms to merge). autocannon's percentiles come
 * in whole milliseconds; the mean keeps the fraction.
 */
async function drive (urls: string[], scenario: Scenario, seconds: number): Promise<Drive> {
  const results = await Promise.all(urls.map(async url =>
    await autocannon({ connections: CONNECTIONS / urls.length, duration: seconds, ...scenario.options(url) })))
  const answered = results.reduce((sum, r) => sum + r.requests.total, 0)
  return {
    rps: Math.round(results.reduce((sum, r) => sum + r.requests.average, 0)),
    p50: Math.max(...results.map(r => r.latency.p50)),
    mean: Number((results.reduce((sum, r) => sum + r.latency.mean * r.requests.total, 0) / Math.max(answered, 1)).toFixed(2)),
    p99: Math.max(...results.map(r => r.latency.p99)),
    errors: results.reduce((sum, r) => sum + r.errors + r.non2xx, 0)
  }
}

const bareScenario: Scenario = { name: 'bare Fastify', options: url => ({ url: `${url}/` }) }

function median (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

interface Row {
  size: number
  scenario: string
  rps: number
  bareRps: number
  ratio: number
  ratioToLive: number
  p50: number
  p99: number
  mean: number
  errors: number
}

/**
 * Each scenario RUNS times, each time right after the bare app; the medians of those runs. With
 * several `urls`, each run drives them all at once (drive).
 */
async function measure (urls: string[], bareUrl: string, size: number, names: string[]): Promise<Row[]> {
  const chosen = scenarios.filter(s => names.includes(s.name))
  // Warm the JIT and the database's page cache before anything counts.
  await drive([bareUrl], bareScenario, 1)
  for (const scenario of chosen) await drive(urls, scenario, 1)
  const rows: Row[] = []
  for (const scenario of chosen) {
    const runs: Array<Drive & { bare: number }> = []
    for (let run = 0; run < RUNS; run++) {
      const bare = await drive([bareUrl], bareScenario, SECONDS)
      runs.push({ ...await drive(urls, scenario, SECONDS), bare: bare.rps })
    }
    const row: Row = {
      size,
      scenario: scenario.name,
      rps: Math.round(median(runs.map(r => r.rps))),
      bareRps: Math.round(median(runs.map(r => r.bare))),
      ratio: Number(median(runs.map(r => r.rps / r.bare)).toFixed(2)),
      ratioToLive: 0,
      p50: median(runs.map(r => r.p50)),
      p99: median(runs.map(r => r.p99)),
      mean: Number(median(runs.map(r => r.mean)).toFixed(2)),
      errors: runs.reduce((sum, r) => sum + r.errors, 0)
    }
    rows.push(row)
    say(`  ${row.scenario.padEnd(30)} ${String(row.rps).padStart(7)} req/s  bare ${row.bareRps}  ratio ${row.ratio}  p99 ${row.p99} ms  mean ${row.mean} ms${row.errors > 0 ? `  ${row.errors} errors` : ''}`)
  }
  const live = rows.find(r => r.scenario === 'GET /live')
  for (const row of rows) row.ratioToLive = live === undefined ? NaN : Number((row.rps / live.rps).toFixed(2))
  return rows
}

/** The slowest group commit the server logged on its way out (src/db/write-queue.ts). */
function slowestCommit (logFile: string): number {
  const lines = readFileSync(logFile, 'utf8').split('\n').filter(line => line.includes('slowestCommitMs'))
  return lines.length === 0 ? NaN : (JSON.parse(lines[lines.length - 1]!) as { slowestCommitMs: number }).slowestCommitMs
}

/** Adds per second through POST /add/batch, batches of 10 000 positive adds, one client. */
async function importRate (url: string): Promise<{ addsPerSecond: number, batches: number } | null> {
  const batch = (n: number) => JSON.stringify({
    adds: Array.from({ length: 10_000 }, (_, i) => ({ payer: `IMPORT ${i % 10}`, points: 1, timestamp: new Date(Date.UTC(2031, 0, 1) + (n * 10_000 + i) * 1000).toISOString() }))
  })
  const post = async (body: string) => await fetch(`${url}/add/batch`, { method: 'POST', headers: json, body })
  const probe = await post(batch(0))
  if (probe.status === 404) return null
  if (!probe.ok) throw new Error(`POST /add/batch answered ${probe.status}: ${await probe.text()}`)
  // Bodies built before the clock starts: the rate is tally's, not the bench's JSON.stringify.
  const bodies = Array.from({ length: IMPORT_BATCHES }, (_, n) => batch(n + 1))
  const started = performance.now()
  for (const body of bodies) {
    const res = await post(body)
    if (!res.ok) throw new Error(`POST /add/batch answered ${res.status}`)
    await res.arrayBuffer()
  }
  const seconds = (performance.now() - started) / 1000
  return { addsPerSecond: Math.round(IMPORT_BATCHES * 10_000 / seconds), batches: IMPORT_BATCHES }
}

/**
 * The in-memory peer (BENCH_PEER: the path of its built server, started with PORT): POST /spend
 * of 1 point with 1 000 lots in it, against tally's with its 1 000-row history.
 */
async function peerSpend (): Promise<number | null> {
  if (PEER === undefined) return null
  const peer = await startProcess([PEER], {}, null, '/balance')
  try {
    for (let i = 0; i < 1000; i++) {
      await fetch(`${peer.url}/add`, { method: 'POST', headers: json, body: JSON.stringify({ payer: ['DANNON', 'UNILEVER', 'MILLER COORS'][i % 3], points: 1_000_000, timestamp: new Date(Date.UTC(2000, 0, 1) + i * 1000).toISOString() }) })
    }
    const spend = scenarios.find(s => s.name === 'POST /spend')!
    await drive([peer.url], spend, 1)
    return (await drive([peer.url], spend, SECONDS)).rps
  } finally {
    await peer.stop()
  }
}

interface PostgresRun {
  server: string
  version: string
  history: number
  pgbench: { tps: number, clients: number, seconds: number, runs: number[] }
  one: Row[]
  two: Row[]
}

/**
 * tally on PostgreSQL: one fresh database with the smallest history (loaded through the Pg
 * stores), the PostgreSQL scenarios against one tally process, then against two on the same
 * database; then pgbench's TPC-B-like transaction in a database of its own, as many clients
 * as autocannon's connections, BENCH_RUNS times (the median). Both databases are dropped at
 * the end. Skipped, with the reason, when no server answers at BENCH_PG_URL.
 */
async function runPostgres (dir: string, bareUrl: string): Promise<PostgresRun | { skipped: string }> {
  const server = await probe(PG_URL)
  if ('unreachable' in server) return { skipped: server.unreachable }
  const size = SIZES[0]!
  const names = PG_SCENARIOS.filter(name => ONLY === undefined || ONLY.includes(name))
  const databases: BenchDatabase[] = []
  const started: Running[] = []
  // Each process at its defaults: a pool of 10, READ COMMITTED.
  const startOn = async (db: BenchDatabase, n: number) => {
    const running = await startTally(join(dir, 'unused.db'), join(dir, `tally-pg-${n}.log`), { DATABASE_URL: db.url })
    started.push(running)
    return running
  }
  try {
    const tally = await createDatabase(PG_URL, 'tally_bench')
    databases.push(tally)
    say(`PostgreSQL ${server.version} (database ${tally.name}): history ${size.toLocaleString('en')} rows per kind, loaded through the Pg stores`)
    await loadPgHistory(tally.url, size, USERS, progress)
    say('  one tally process')
    const single = await startOn(tally, 1)
    const one = await measure([single.url], bareUrl, size, names)
    await started.pop()!.stop()
    say(`  two tally processes, ${CONNECTIONS / 2} connections each`)
    const pair = [await startOn(tally, 2), await startOn(tally, 3)]
    const two = await measure(pair.map(p => p.url), bareUrl, size, names)
    while (started.length > 0) await started.pop()!.stop()

    const ceiling = await createDatabase(PG_URL, 'tally_pgbench')
    databases.push(ceiling)
    await pgbenchInit(ceiling.url)
    const runs: number[] = []
    for (let run = 0; run < RUNS; run++) runs.push(await pgbench(ceiling.url, CONNECTIONS, SECONDS))
    const tps = Number(median(runs).toFixed(1))
    say(`  pgbench TPC-B-like, scale 1, ${CONNECTIONS} clients, 2 threads, prepared: ${tps} tps`)
    return { server: PG_URL, version: server.version, history: size, pgbench: { tps, clients: CONNECTIONS, seconds: SECONDS, runs }, one, two }
  } finally {
    while (started.length > 0) await started.pop()!.stop()
    for (const db of databases) await db.drop()
  }
}

/** The markdown of the PostgreSQL part: its rows beside SQLite's of the same history. */
function postgresSection (pg: PostgresRun | { skipped: string }, sqliteRows: Row[]): string[] {
  if ('skipped' in pg) return [`PostgreSQL: skipped, ${pg.skipped}.`, '']
  const sqlite = (name: string) => sqliteRows.find(r => r.size === pg.history && r.scenario === name)
  const cell = (row: Row | undefined, ...keys: Array<'rps' | 'ratio' | 'p50' | 'p99'>) => keys.map(key => row?.[key] ?? '—').join(' | ')
  const ceiling = (row: Row | undefined, processes: string) => row === undefined
    ? []
    : [`POST /spend on PostgreSQL, ${processes}: ${row.rps} tps = ${(row.rps / pg.pgbench.tps).toFixed(2)}× pgbench${processes === 'one process' ? ` (target ≥ 0.5×) ${row.rps / pg.pgbench.tps >= 0.5 ? 'met' : '**missed**'}` : ''}`, '']
  const spendOne = pg.one.find(r => r.scenario === 'POST /spend')
  const spendTwo = pg.two.find(r => r.scenario === 'POST /spend')
  return [
    `PostgreSQL ${pg.version} on the same machine, a fresh database holding a history of ${pg.history.toLocaleString('en')} rows per kind (loaded through the Pg stores, then VACUUM ANALYZE). Each tally process at its defaults (a pool of 10, READ COMMITTED). Two processes: one database, autocannon against both at once with ${CONNECTIONS / 2} connections each; req/s summed, p50 and p99 the larger of the two. SQLite: the same scenarios at the same history, from this run (— when it did not run).`,
    '',
    '| scenario | SQLite req/s | SQLite ratio to bare | PG 1 process req/s | ratio to bare | p50 ms | p99 ms | PG 2 processes req/s | ratio to bare | p50 ms | p99 ms |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...pg.one.map(one => {
      const two = pg.two.find(r => r.scenario === one.scenario)
      return `| ${one.scenario} | ${cell(sqlite(one.scenario), 'rps', 'ratio')} | ${cell(one, 'rps', 'ratio', 'p50', 'p99')} | ${cell(two, 'rps', 'ratio', 'p50', 'p99')} |`
    }),
    '',
    `pgbench's TPC-B-like transaction on the same server (\`pgbench -i -s 1\`, then \`pgbench -c ${pg.pgbench.clients} -j 2 -T ${pg.pgbench.seconds} -M prepared\`, the median of ${pg.pgbench.runs.length} runs): ${pg.pgbench.tps} tps.`,
    '',
    ...ceiling(spendOne, 'one process'),
    ...ceiling(spendTwo, 'two processes')
  ]
}

async function main (): Promise<void> {
  const started = Date.now()
  const dir = mkdtempSync(join(tmpdir(), 'tally-bench-'))
  const rows: Row[] = []
  const rss: Record<string, number> = {}
  const slowest: Record<string, number> = {}
  const extra: string[] = []
  const bare = await startProcess([barePath], {}, null, '/')
  const report: Record<string, unknown> = {}
  let postgres: PostgresRun | { skipped: string } | undefined
  try {
    for (const size of ENGINES.includes('sqlite') ? SIZES : []) {
      const dbPath = join(dir, `bench-${size}.db`)
      const logFile = join(dir, `tally-${size}.log`)
      say(`history ${size.toLocaleString('en')} rows per kind: loading`)
      await loadHistory(dbPath, size)
      const server = await startTally(dbPath, logFile)
      rows.push(...await measure([server.url], bare.url, size, scenarios.map(s => s.name).filter(name => ONLY === undefined || ONLY.includes(name))))
      if (size === SIZES[SIZES.length - 1]) {
        const rate = await importRate(server.url)
        report.import = rate
        extra.push(rate === null
          ? 'Bulk import: POST /add/batch is not there.'
          : `Bulk import into a ledger of ${size.toLocaleString('en')} lots: ${rate.addsPerSecond.toLocaleString('en')} adds/s (${rate.batches} batches of 10 000 positive adds, one client, over HTTP).`)
        say(`  ${extra[extra.length - 1]!}`)
      }
      rss[String(size)] = await server.stop()
      slowest[String(size)] = slowestCommit(logFile)
      say(`  peak RSS ${rss[String(size)]} MB; slowest group commit ${slowest[String(size)]} ms`)
      if (size === SIZES[SIZES.length - 1]) {
        // The young generation's size: npm start's 4 MB against V8's default, on the numbers.
        const plain = await startTally(dbPath, logFile, {}, [])
        const semi = await measure([plain.url], bare.url, size, ['POST /spend', 'POST /event'].filter(name => ONLY === undefined || ONLY.includes(name)))
        const plainRss = await plain.stop()
        report.semiSpaceDefault = { rows: semi, peakRssMb: plainRss }
        extra.push(`Without --max-semi-space-size=4 at ${size.toLocaleString('en')} rows: ${semi.map(r => `${r.scenario} ratio ${r.ratio}, `).join('')}peak RSS ${plainRss} MB.`)
        say(`  ${extra[extra.length - 1]!}`)
      }
      if (size === SIZES[0]) {
        const peer = await peerSpend()
        const tallySpend = rows.find(r => r.size === size && r.scenario === 'POST /spend')?.rps ?? NaN
        report.peer = { peerRps: peer, tallyRps: tallySpend }
        extra.push(peer === null
          ? `POST /spend of 1 point with ${size.toLocaleString('en')} lots: ${tallySpend} req/s (BENCH_PEER unset: no peer run).`
          : `POST /spend of 1 point with ${size.toLocaleString('en')} lots: tally ${tallySpend} req/s, the peer ${peer} req/s: ${(tallySpend / peer).toFixed(1)}×.`)
        say(`  ${extra[extra.length - 1]!}`)
      }
      rmSync(dbPath, { force: true })
    }
    if (ENGINES.includes('postgres')) {
      postgres = await runPostgres(dir, bare.url)
      if ('skipped' in postgres) say(`PostgreSQL: skipped, ${postgres.skipped}`)
      report.postgres = postgres
    }
  } finally {
    await bare.stop()
    rmSync(dir, { recursive: true, force: true })
  }

  const smallest = SIZES[0]!
  const largest = SIZES[SIZES.length - 1]!
  const measured = scenarios.filter(({ name }) => rows.some(r => r.scenario === name))
  const scaling = measured.map(({ name }) => {
    const row = (size: number) => rows.find(r => r.size === size && r.scenario === name)!
    const [small, large] = [row(smallest), row(largest)]
    return { scenario: name, meanSmall: small.mean, meanLarge: large.mean, meanRatio: Number((large.mean / Math.max(small.mean, 0.01)).toFixed(2)) }
  })
  const mark = (ok: boolean) => ok ? 'met' : '**missed**'
  const pgRows = postgres === undefined || 'skipped' in postgres
    ? []
    : [...postgres.one.map(r => ({ ...r, on: 'PostgreSQL, one process' })), ...postgres.two.map(r => ({ ...r, on: 'PostgreSQL, two processes' }))]
  // The SQLite tables, when it ran.
  const sqliteMd = rows.length === 0
    ? []
    : [
        '| history | scenario | req/s | bare Fastify req/s | ratio to bare | target | ratio to /live | p50 ms | p99 ms | mean ms |',
        '|---:|---|---:|---:|---:|---|---:|---:|---:|---:|',
        ...rows.map(r => `| ${r.size.toLocaleString('en')} | ${r.scenario} | ${r.rps} | ${r.bareRps} | ${r.ratio} | ≥ ${targets[r.scenario]} ${mark(r.ratio >= targets[r.scenario]!)} | ${r.ratioToLive} | ${r.p50} | ${r.p99}${r.p99 > 10 ? ' **> 10**' : ''} | ${r.mean} |`),
        '',
        `| scenario | mean ${smallest.toLocaleString('en')} | mean ${largest.toLocaleString('en')} | ratio (target ≤ 1.2) |`,
        '|---|---:|---:|---:|',
        ...scaling.map(s => `| ${s.scenario} | ${s.meanSmall} ms | ${s.meanLarge} ms | ${s.meanRatio}${s.meanRatio > 1.2 ? ' **missed**' : ''} |`),
        '',
        `Peak RSS of the server (target < 200 MB): ${Object.entries(rss).map(([size, mb]) => `${Number(size).toLocaleString('en')} rows ${mb} MB`).join(', ')}.`,
        '',
        `Slowest group commit (its writes, COMMIT and any WAL checkpoint, on the event loop): ${Object.entries(slowest).map(([size, ms]) => `${Number(size).toLocaleString('en')} rows ${ms} ms`).join(', ')}.`,
        '',
        ...extra.flatMap(line => [line, ''])
      ]
  const failed = [
    ...rows.filter(r => r.errors > 0).map(r => ` (${r.size} ${r.scenario}: ${r.errors})`),
    ...pgRows.filter(r => r.errors > 0).map(r => ` (${r.on}, ${r.scenario}: ${r.errors})`)
  ]
  const md = [
    `Measured ${new Date().toISOString().slice(0, 10)} by \`npm run bench\` (BENCH_ENGINES=${ENGINES.join(',')}): ${CONNECTIONS} connections, ${SECONDS} s a run, the median of ${RUNS} runs, each right after a run of a bare Fastify app (one JSON route, logger off, its own process); autocannon, tally and the bare app on the same ${cpus().length}-core machine. tally at its defaults: LOG_LEVEL=info, its log written to a file.`,
    '',
    ...sqliteMd,
    ...(postgres === undefined ? [] : postgresSection(postgres, rows)),
    `${failed.length === 0 ? 'No' : 'Some'} scenario had errors or non-2xx answers${failed.join('')}.`,
    ''
  ].join('\n')
  mkdirSync(resultsDir, { recursive: true })
  const stamp = new Date().toISOString().replace(/[:.]/g, '-')
  const result = JSON.stringify({ seconds: SECONDS, runs: RUNS, connections: CONNECTIONS, rows, scaling, peakRssMb: rss, slowestCommitMs: slowest, ...report }, null, 2) + '\n'
  writeFileSync(join(resultsDir, 'latest.json'), result)
  writeFileSync(join(resultsDir, `${stamp}.json`), result)
  writeFileSync(join(resultsDir, 'latest.md'), md)
  writeFileSync(join(resultsDir, `${stamp}.md`), md)
  say('')
  say(md)
  say(`written to bench/results/ (latest.md, latest.json, ${stamp}.*) in ${Math.round((Date.now() - started) / 1000)} s`)
}

await main()
