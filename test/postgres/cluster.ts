import { spawn, execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { freePort } from '../../src/bench/net.js'
import { createPool } from '../../src/storage/postgres/pool.js'

// Several real tally processes (the built dist/server.js, as deployed) on one database of the
// server at TEST_DATABASE_URL, for the multi-instance proofs (instances.ts, crash-rounds.ts).
// Everything listens on 127.0.0.1; every child is killed when the test ends, and after a bound
// even if it does not.

const root = fileURLToPath(new URL('../../', import.meta.url))

/** Why these proofs cannot run here, if they cannot: they need real parallel sessions, not PGlite. */
export function missingServer (): string | undefined {
  if ((process.env.TEST_DATABASE_URL ?? '') !== '') return undefined
  return 'TEST_DATABASE_URL is not set: this proof runs against a real PostgreSQL server ' +
    '(e.g. TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres)'
}

function serverUrl (): string {
  const missing = missingServer()
  if (missing !== undefined) throw new Error(missing)
  return process.env.TEST_DATABASE_URL!
}

function newest (path: string): number {
  const stat = statSync(path)
  if (!stat.isDirectory()) return stat.mtimeMs
  return Math.max(0, ...readdirSync(path).map(name => newest(join(path, name))))
}

/** Compiles src/ to dist/ when dist/server.js is missing or older than any source. */
export function ensureBuilt (): void {
  const server = join(root, 'dist/server.js')
  const sources = Math.max(newest(join(root, 'src')), newest(join(root, 'tsconfig.json')), newest(join(root, 'tsconfig.build.json')))
  if (existsSync(server) && statSync(server).mtimeMs >= sources) return
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')
  execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'pipe' })
}

/** Whether process `pid` of this machine is running. */
function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as { code?: string }).code === 'EPERM'
  }
}

/**
 * A fresh, empty database `tally_<kind>_<pid>_<random>` on the server, dropped by `teardown`.
 * Databases a run that died left behind (its pid no longer runs) are dropped first.
 */
export async function freshDatabase (kind: string, teardown: (fn: () => Promise<void>) => void): Promise<string> {
  const server = serverUrl()
  const name = `tally_${kind}_${process.pid}_${randomBytes(4).toString('hex')}`
  const admin = new pg.Client({ connectionString: server })
  await admin.connect()
  try {
    const { rows } = await admin.query<{ name: string }>(
      "SELECT datname AS name FROM pg_database WHERE datname ~ ('^tally_' || $1 || '_[0-9]+_[0-9a-f]{8}$')", [kind])
    for (const left of rows) {
      if (!alive(Number(left.name.split('_').at(-2)))) await admin.query(`DROP DATABASE IF EXISTS ${left.name} WITH (FORCE)`).catch(() => {})
    }
    await admin.query(`CREATE DATABASE ${name}`)
  } finally {
    await admin.end()
  }
  teardown(async () => {
    const admin = new pg.Client({ connectionString: server })
    await admin.connect()
    // FORCE: the connections of a killed instance the server has not noticed yet do not count.
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
    await admin.end()
  })
  const url = new URL(server)
  url.pathname = `/${name}`
  return url.href
}

export interface Exit { code: number | null, signal: NodeJS.Signals | null, output: string }

export interface Child {
  pid: number
  exited: Promise<Exit>
  kill: (signal: NodeJS.Signals) => void
  /** The last 64 KiB of stdout and stderr together. */
  output: () => string
}

const children = new Set<Child>()

/** SIGKILLs every child still running: at a test's end, and as this process exits. */
export function killAll (): void {
  for (const child of children) child.kill('SIGKILL')
}
process.on('exit', killAll)

/** `node dist/<script>` with `env` over this process's, SIGKILLed after `limitMs` at the latest. */
export function runDist (script: string, env: Record<string, string>, limitMs = 60_000): Child {
  const child = spawn(process.execPath, [join(root, 'dist', script)], {
    cwd: root,
    env: { ...process.env, HOST: '127.0.0.1', LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  const keep = (chunk: Buffer): void => { output = (output + String(chunk)).slice(-65_536) }
  child.stdout.on('data', keep)
  child.stderr.on('data', keep)
  const timer = setTimeout(() => child.kill('SIGKILL'), limitMs)
  let running = true
  const handle: Child = {
    pid: child.pid!,
    exited: new Promise(resolve => {
      child.on('exit', (code, signal) => {
        running = false
        clearTimeout(timer)
        children.delete(handle)
        resolve({ code, signal, output })
      })
    }),
    kill: signal => { if (running) child.kill(signal) },
    output: () => output
  }
  children.add(handle)
  return handle
}

export interface Tally extends Child {
  url: string
  /** Resolves once GET /health answers 200 (migrated, the database reached); rejects if it exits first. */
  ready: Promise<void>
}

/** A tally server (dist/server.js) on a free port of 127.0.0.1. */
export async function launchTally (env: Record<string, string>, limitMs = 120_000): Promise<Tally> {
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const child = runDist('server.js', { ...env, PORT: String(port) }, limitMs)
  let exited = false
  child.exited.then(() => { exited = true }, () => {})
  const ready = (async () => {
    const deadline = Date.now() + 30_000
    for (;;) {
      if (exited) throw new Error(`tally on port ${port} exited before it was ready:\n${child.output()}`)
      if (Date.now() > deadline) throw new Error(`tally on port ${port} not ready after 30 s:\n${child.output()}`)
      const status = await fetch(`${url}/health`).then(res => res.status, () => 0)
      if (status === 200) return
      await new Promise(resolve => setTimeout(resolve, 25))
    }
  })()
  ready.catch(() => {})
  return { ...child, url, ready }
}

/** Ends a server with SIGTERM (a clean shutdown) and answers how it exited, SIGKILL after 15 s. */
export async function stopTally (tally: Child): Promise<Exit> {
  tally.kill('SIGTERM')
  const timer = setTimeout(() => tally.kill('SIGKILL'), 15_000)
  try {
    return await tally.exited
  } finally {
    clearTimeout(timer)
  }
}

export interface Answer {
  status: number
  /** The body exactly as sent. */
  text: string
  body: any
  replayed: boolean
}

/** One JSON request; rejects if the connection fails (the server is gone: nothing acknowledged). */
export async function request (url: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: { ...(body !== undefined && { 'content-type': 'application/json' }), ...headers },
    ...(body !== undefined && { body: JSON.stringify(body) })
  })
  const text = await res.text()
  return { status: res.status, text, body: text === '' ? undefined : JSON.parse(text), replayed: res.headers.get('idempotent-replayed') === 'true' }
}

/**
 * Runs work for an instance with at most `max` of them in flight to it, the rest waiting here in
 * arrival order, as behind a load balancer's connection limit.
 */
export function inFlightLimit (max: number): <T>(url: string, work: () => Promise<T>) => Promise<T> {
  const lanes = new Map<string, { running: number, waiting: Array<() => void> }>()
  return async (url, work) => {
    let lane = lanes.get(url)
    if (lane === undefined) lanes.set(url, lane = { running: 0, waiting: [] })
    const mine = lane
    if (mine.running >= max) await new Promise<void>(resolve => mine.waiting.push(resolve))
    else mine.running++
    try {
      return await work()
    } finally {
      // A finished request hands its place straight to the next in line.
      const next = mine.waiting.shift()
      if (next !== undefined) next()
      else mine.running--
    }
  }
}

/** `list` in a random order (Fisher–Yates). */
export function shuffled<T> (list: T[]): T[] {
  const copy = [...list]
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [copy[i], copy[j]] = [copy[j]!, copy[i]!]
  }
  return copy
}

/** A pool on `url` for the checks (BIGINTs as numbers, as tally reads them), ended by `teardown`. */
export function checkPool (url: string, teardown: (fn: () => Promise<void>) => void): pg.Pool {
  const pool = createPool({ url, size: 2 })
  teardown(async () => { await pool.end() })
  return pool
}
