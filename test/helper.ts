import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance, InjectOptions } from 'fastify'
import type { Test } from 'tap'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { checkInvariantsPostgres } from '../src/storage/postgres/check.js'
import { checkInvariants } from '../src/storage/sqlite/check.js'
import { postgresWork, sqliteWork, type Work } from '../src/storage/work.js'
import { freshPostgres } from './postgres.js'

interface Teardown { teardown: (fn: () => unknown) => void }

/** A fresh directory under the OS temp dir, removed when the test ends. */
export function tempDir (t: Teardown): string {
  const dir = mkdtempSync(join(tmpdir(), 'tally-test-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/**
 * The engine the contract tests run on: SQLite, or PostgreSQL when TALLY_TEST_ENGINE=postgres
 * (test/postgres/contract/ runs each contract test file so). On PostgreSQL each build gets a
 * fresh schema on TEST_DATABASE_URL's server, or in PGlite when it is unset (test/postgres.ts).
 */
export const engine: 'sqlite' | 'postgres' = process.env.TALLY_TEST_ENGINE === 'postgres' ? 'postgres' : 'sqlite'

/**
 * How many random cases a property test runs: `sqlite` on SQLite, `postgres` on PostgreSQL (where
 * every request is round trips to a server, so a sequence takes several times longer, and
 * test/postgres/ compares the two engines' stores on random histories of their own), times
 * TALLY_PROPERTY_SCALE (default 1), and at least 1. CI's SERIALIZABLE pass runs 0.2 of them: a
 * property's requests go one at a time, which never conflict, so there they prove again what
 * the READ COMMITTED pass proved.
 */
export function propertyRuns (sqlite: number, postgres = sqlite): number {
  const scale = Number(process.env.TALLY_PROPERTY_SCALE ?? 1)
  return Math.max(1, Math.round((engine === 'postgres' ? postgres : sqlite) * scale))
}

export interface BuildOptions {
  env?: Record<string, string>
  now?: () => Date
  /** A SQLite file of the test's own: the app runs on SQLite whatever the engine. */
  dbPath?: string
  /** A database from freshDatabase(t), for apps that take turns on one database (a restart). */
  database?: Record<string, string>
}

/** The environment of a fresh database on the engine under test, dropped when the test ends. */
export async function freshDatabase (t: Teardown): Promise<Record<string, string>> {
  if (engine === 'sqlite') return { DB_PATH: join(tempDir(t), 'app.db') }
  const { url, poolSize } = await freshPostgres(t)
  return { DATABASE_URL: url, PG_POOL_SIZE: String(poolSize), PG_ISOLATION: process.env.PG_ISOLATION ?? 'read_committed' }
}

/** tally on a fresh database of the engine under test, closed when the test ends. */
export async function build (t: Teardown, options: BuildOptions = {}): Promise<FastifyInstance> {
  const database = options.database ?? (options.dbPath !== undefined ? { DB_PATH: options.dbPath } : await freshDatabase(t))
  // The daily grant writes on start-up; tests that are about it turn it on.
  const config = loadConfig({ ...database, ALLOW_FLUSH: 'true', DAILY_CREDITS_ENABLED: 'false', ...options.env })
  const app = buildApp(config, { logger: false, ...(options.now !== undefined && { now: options.now }) })
  t.teardown(() => app.close())
  await app.ready()
  return app
}

/**
 * Runs one SQL statement on the app's own database, either engine, and answers its rows. Write
 * it in the SQL both engines share; `?` placeholders, in order.
 */
export async function sql<T = any> (app: FastifyInstance, text: string, ...values: unknown[]): Promise<T[]> {
  if (app.storage.engine === 'sqlite') {
    const statement = app.db.prepare(text)
    return (statement.reader ? statement.all(...values) : (statement.run(...values), [])) as T[]
  }
  let n = 0
  return (await app.pg.query(text.replace(/\?/g, () => `$${++n}`), values)).rows as T[]
}

/** The single value of a one-row, one-column query (a count, a sum), as a number. */
export async function value (app: FastifyInstance, text: string, ...values: unknown[]): Promise<number> {
  const [row] = await sql<Record<string, unknown>>(app, text, ...values)
  return Number(Object.values(row!)[0])
}

/** Every row of every table: compare two of these to prove a refused request changed nothing. */
export async function snapshot (app: FastifyInstance): Promise<Record<string, unknown[]>> {
  const tables = (app.storage.engine === 'sqlite'
    ? await sql<{ name: string }>(app, "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
    : await sql<{ name: string }>(app, 'SELECT tablename AS name FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename')
  ).map(row => row.name)
  // Sorted whole, not by the first column only: rows equal there (a table keyed by several
  // columns, say) come in whatever order the engine keeps them, which an update may change.
  const rows = await Promise.all(tables.map(async table => (await sql(app, `SELECT * FROM "${table}"`))
    .map(row => ({ row, key: JSON.stringify(row) })).sort((a, b) => a.key < b.key ? -1 : a.key > b.key ? 1 : 0).map(({ row }) => row)))
  return Object.fromEntries(tables.map((table, i) => [table, rows[i]!]))
}

/** Every invariant db:check knows, checked on the app's database, either engine: [] when all hold. */
export async function invariants (app: FastifyInstance): Promise<string[]> {
  return app.storage.engine === 'sqlite' ? checkInvariants(app.db) : await checkInvariantsPostgres(app.pg)
}

/** Work for the app's engine that runs `run`: a stand-in for a store's work. */
export function workOf<R> (app: FastifyInstance, run: () => R): Work<R> {
  return app.storage.engine === 'sqlite' ? sqliteWork(run) : postgresWork(async () => run())
}

/** inject, answering status and parsed JSON body. */
export async function call (app: FastifyInstance, options: InjectOptions): Promise<{ status: number, body: any, headers: Record<string, unknown> }> {
  const response = await app.inject(options)
  const body = response.body === '' ? undefined : JSON.parse(response.body)
  return { status: response.statusCode, body, headers: response.headers }
}

export const post = async (app: FastifyInstance, url: string, payload?: unknown) =>
  await call(app, { method: 'POST', url, ...(payload !== undefined && { payload: payload as InjectOptions['payload'] }) })

export const get = async (app: FastifyInstance, url: string) => await call(app, { method: 'GET', url })

/** The canonical example's adds, in timestamp order. */
export const canonicalAdds = [
  { payer: 'DANNON', points: 300, timestamp: '2022-10-31T10:00:00Z' },
  { payer: 'UNILEVER', points: 200, timestamp: '2022-10-31T11:00:00Z' },
  { payer: 'DANNON', points: -200, timestamp: '2022-10-31T15:00:00Z' },
  { payer: 'MILLER COORS', points: 10000, timestamp: '2022-11-01T14:00:00Z' },
  { payer: 'DANNON', points: 1000, timestamp: '2022-11-02T14:00:00Z' }
]

/** Asserts a refusal in tally's error shape: the status, its text, a message and the code. */
export function expectError (t: Test, res: { status: number, body: any }, status: number, code: string): void {
  t.equal(res.status, status, `status ${status}`)
  t.match(res.body, { statusCode: status, error: String, message: String, code }, `error shape with ${code}`)
}
