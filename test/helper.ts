import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance, InjectOptions } from 'fastify'
import type { Test } from 'tap'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config.js'

interface Teardown { teardown: (fn: () => unknown) => void }

/** A fresh directory under the OS temp dir, removed when the test ends. */
export function tempDir (t: Teardown): string {
  const dir = mkdtempSync(join(tmpdir(), 'tally-test-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

export interface BuildOptions {
  env?: Record<string, string>
  now?: () => Date
  dbPath?: string
}

/** tally on its own temp SQLite file, closed when the test ends. */
export async function build (t: Teardown, options: BuildOptions = {}): Promise<FastifyInstance> {
  const dbPath = options.dbPath ?? join(tempDir(t), 'app.db')
  // The daily grant writes on start-up; tests that are about it turn it on.
  const config = loadConfig({ DB_PATH: dbPath, ALLOW_FLUSH: 'true', DAILY_CREDITS_ENABLED: 'false', ...options.env })
  const app = buildApp(config, { logger: false, ...(options.now !== undefined && { now: options.now }) })
  t.teardown(() => app.close())
  await app.ready()
  return app
}

/** Every row of every table: compare two of these to prove a refused request changed nothing. */
export function snapshot (app: FastifyInstance): Record<string, unknown[]> {
  const tables = app.db.prepare(
    "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
  ).pluck().all() as string[]
  return Object.fromEntries(tables.map(table => [table, app.db.prepare(`SELECT * FROM "${table}"`).all()]))
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
