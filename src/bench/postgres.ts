// The PostgreSQL side of `npm run bench`: a throwaway database per run, the history loaded
// through the Pg stores, and pgbench's TPC-B-like transaction as the ceiling of a write
// transaction on the same server. run.ts drives tally against these.
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { PgAlerts } from '../alerts/postgres.js'
import { PgCredits } from '../credits/postgres.js'
import { PgPoints } from '../points/postgres.js'
import { migratePostgres } from '../storage/postgres/migrate.js'
import { createPool, DatabaseUnreachable } from '../storage/postgres/pool.js'
import { PgTransactions } from '../storage/postgres/transaction.js'
import type { PostgresWork } from '../storage/work.js'
import { PgUsers } from '../users/postgres.js'

/** `url` with its database replaced by `database`. */
function withDatabase (url: string, database: string): string {
  const parsed = new URL(url)
  parsed.pathname = `/${database}`
  return parsed.href
}

async function admin<R> (serverUrl: string, run: (client: pg.Client) => Promise<R>): Promise<R> {
  const client = new pg.Client({ connectionString: serverUrl, connectionTimeoutMillis: 5000 })
  await client.connect()
  try {
    return await run(client)
  } finally {
    await client.end()
  }
}

/** The server's version, or why the server at `serverUrl` cannot be used (one line, never the password). */
export async function probe (serverUrl: string): Promise<{ version: string } | { unreachable: string }> {
  try {
    return await admin(serverUrl, async client => {
      const { rows: [row] } = await client.query<{ server_version: string }>('SHOW server_version')
      return { version: row!.server_version }
    })
  } catch (err) {
    return { unreachable: new DatabaseUnreachable(serverUrl, err).message }
  }
}

export interface BenchDatabase { name: string, url: string, drop: () => Promise<void> }

/** A new, empty database `<prefix>_<random>` on the server; drop() removes it, connections and all. */
export async function createDatabase (serverUrl: string, prefix: string): Promise<BenchDatabase> {
  const name = `${prefix}_${randomBytes(4).toString('hex')}`
  await admin(serverUrl, async client => await client.query(`CREATE DATABASE ${name}`))
  return {
    name,
    url: withDatabase(serverUrl, name),
    // FORCE: a tally process killed mid-run must not keep the database alive.
    drop: async () => { await admin(serverUrl, async client => await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)) }
  }
}

/**
 * The history run.ts's loadHistory writes on SQLite, written through the Pg stores into the
 * database at `url` (migrated first): `users` users, `size` point adds of which 99 % are spent
 * again, `size` events and `size` credit changes, plus the stock the bench's own spends and
 * deducts draw on. The adds go in as batches (one statement per thousand): one add at a time,
 * a 100 000-row history would take longer than the bench.
 */
export async function loadPgHistory (url: string, size: number, users: number,
  progress: (label: string, done: number, total: number) => void): Promise<void> {
  const pool = createPool({ url, size: 1 })
  try {
    await migratePostgres(pool)
    const tx = new PgTransactions(pool, 'read_committed')
    const now = () => new Date('2026-01-01T00:00:00Z')
    const stores = { users: new PgUsers(tx, now), points: new PgPoints(tx, now), credits: new PgCredits(tx, now), alerts: new PgAlerts(tx, now, 's') }
    // Works of one kind, `batch` to a transaction.
    const inBatches = async (label: string, count: number, batch: number, step: (i: number) => PostgresWork<unknown>): Promise<void> => {
      for (let start = 0; start < count; start += batch) {
        const end = Math.min(count, start + batch)
        await tx.run(async t => { for (let i = start; i < end; i++) await step(i).run(t) })
        progress(label, end, count)
      }
    }
    const payers = ['DANNON', 'UNILEVER', 'MILLER COORS']
    const day = (i: number) => new Date(Date.UTC(2000, 0, 1) + i * 1000).toISOString()
    await inBatches('users  ', users, 1000, i => stores.users.create(`user${i}@bench.example`, `User ${i}`))
    await inBatches('adds   ', Math.ceil(size / 10_000), 1, n => stores.points.addBatch(0,
      Array.from({ length: Math.min(10_000, size - n * 10_000) }, (_, j) => ({ payer: payers[(n * 10_000 + j) % 3]!, points: 10, ts: day(n * 10_000 + j) }))))
    const spendable = Math.floor(size * 0.99) * 10
    await inBatches('spends ', Math.ceil(spendable / 10_000), 10, i => stores.points.spend(0, Math.min(10_000, spendable - i * 10_000), false))
    await inBatches('stock  ', 1, 1, () => stores.points.add(0, { payer: 'BENCH', points: 1_000_000_000, ts: day(size + 1) }))
    await inBatches('events ', size, 1000, i => stores.alerts.record(1 + (i % users), { type: i % 2 === 0 ? 'deposit' : 'withdraw', amount: 1000 + (i % 7), time: Math.floor(i / users) }))
    await inBatches('credits', size, 1000, i => stores.credits.add(1 + (i % users), 1))
    await inBatches('credits', users, 1000, i => stores.credits.add(1 + i, 1_000_000_000))
    // Fresh statistics, as a database in service would have: the planner then sees the history.
    await pool.query('VACUUM ANALYZE')
  } finally {
    await pool.end()
  }
}

async function run (command: string, args: string[]): Promise<string> {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { out += chunk.toString() })
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject)
    child.on('close', resolve)
  })
  if (code !== 0) throw new Error(`${command} ${args[0]!} ... exited with ${code}: ${out.trim().split('\n').slice(-3).join(' / ')}`)
  return out
}

/**
 * pgbench's built-in TPC-B-like transaction (scale 1, prepared statements) for `seconds`, with
 * `clients` clients on 2 threads; answers its tps ("without initial connection time").
 */
export async function pgbench (databaseUrl: string, clients: number, seconds: number): Promise<number> {
  const out = await run('pgbench', ['-c', String(clients), '-j', '2', '-T', String(seconds), '-M', 'prepared', databaseUrl])
  const tps = /^tps = ([\d.]+) \(without initial connection time\)$/m.exec(out)?.[1]
  if (tps === undefined) throw new Error(`pgbench printed no tps line: ${out.trim().split('\n').slice(-3).join(' / ')}`)
  return Number(tps)
}

/** `pgbench -i -s 1`: its four tables, 100 000 accounts, in the database at `databaseUrl`. */
export async function pgbenchInit (databaseUrl: string): Promise<void> {
  await run('pgbench', ['-i', '-s', '1', '-q', databaseUrl])
}
