import { randomBytes } from 'node:crypto'
import pg from 'pg'
import t from 'tap'

// PostgreSQL for tests. Each freshPostgres(t) gives an empty schema of its own, reachable by its
// URL (the URL sets search_path), dropped when t ends. Where it lives:
// - TEST_DATABASE_URL set: a server. One database per test file (process), created on first
//   use as tally_t_<pid>_<random> and dropped when the file's tests end.
// - otherwise: PGlite (PostgreSQL compiled to WASM) in memory, served over a socket so the same
//   pg code runs. It has one session, so one schema at a time: a test that holds two databases
//   at once (two apps compared) gets a second PGlite. Each takes ~3 s to start, so it starts when
//   first asked, and is used again by the tests after.

/** Whether the schemas live in PGlite rather than on a server. */
export const usingPGlite = (process.env.TEST_DATABASE_URL ?? '') === ''

interface Backend {
  /** The database's URL, without search_path. */
  url: string
  poolSize: number
  /** Runs SQL outside any test's pool: creating and dropping schemas. */
  exec: (sql: string) => Promise<void>
}

let server: Promise<Backend> | undefined
/** The PGlites started, and whether a schema of a test that has not ended is in each. */
const pglites: Array<{ backend: Promise<Backend>, inUse: boolean }> = []
let schemas = 0

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
 * Drops the databases of test files that died before their end (a crash, a kill -9), known by
 * the pid in their name. Only on a server of this machine, where that pid means this machine's.
 */
async function dropLeftovers (admin: pg.Client, serverUrl: string): Promise<void> {
  if (!['127.0.0.1', 'localhost', '[::1]', ''].includes(new URL(serverUrl).hostname)) return
  const { rows } = await admin.query<{ name: string }>("SELECT datname AS name FROM pg_database WHERE datname ~ '^tally_t_[0-9]+_[0-9a-f]{8}$'")
  for (const { name } of rows) {
    if (alive(Number(name.split('_')[2]))) continue
    // Another file may be dropping it at the same moment.
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => {})
  }
}

async function startServerDatabase (serverUrl: string): Promise<Backend> {
  const name = `tally_t_${process.pid}_${randomBytes(4).toString('hex')}`
  const admin = new pg.Client({ connectionString: serverUrl })
  await admin.connect()
  try {
    await dropLeftovers(admin, serverUrl)
    // A locale that does not sort bytewise, where the server has one (ICU), as many production
    // databases do: tally must not depend on the database's collation.
    await admin.query(`CREATE DATABASE ${name} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'`)
      .catch(async () => await admin.query(`CREATE DATABASE ${name}`))
  } finally {
    await admin.end()
  }
  const url = new URL(serverUrl)
  url.pathname = `/${name}`
  const client = new pg.Client({ connectionString: url.href })
  await client.connect()
  t.teardown(async () => {
    await client.end()
    const admin = new pg.Client({ connectionString: serverUrl })
    await admin.connect()
    // FORCE: a pool some test left open must not keep the database alive.
    await admin.query(`DROP DATABASE ${name} WITH (FORCE)`)
    await admin.end()
  })
  return { url: url.href, poolSize: 4, exec: async sql => { await client.query(sql) } }
}

async function startPGlite (): Promise<Backend> {
  const { PGlite } = await import('@electric-sql/pglite')
  const { PGLiteSocketServer } = await import('@electric-sql/pglite-socket')
  const db = await PGlite.create()
  // More than one connection may be open (a test of two "processes"): PGlite still runs one
  // statement at a time in its one session, and a transaction to its end before another's.
  const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0, maxConnections: 16 })
  await server.start()
  t.teardown(async () => {
    await server.stop()
    await db.close()
  })
  // One session, one pool connection: two would interleave their transactions in it.
  const exec = async (sql: string): Promise<void> => {
    // A connection a test closed mid-transaction (on purpose, or as tally does with a broken
    // one) has its transaction rolled back by the server a moment later, in the one session
    // this runs in too: do it now instead.
    if (db.isInTransaction()) await db.exec('ROLLBACK')
    await db.exec(sql)
  }
  return { url: `postgres://postgres@${server.getServerConn()}/postgres`, poolSize: 1, exec }
}

/** A fresh, empty (unmigrated) schema for `t`, dropped at its end; use a pool of `poolSize`. */
export async function freshPostgres (test: { teardown: (fn: () => unknown) => void }): Promise<{ url: string, poolSize: number }> {
  const serverUrl = process.env.TEST_DATABASE_URL ?? ''
  let pglite: { backend: Promise<Backend>, inUse: boolean } | undefined
  if (usingPGlite) {
    pglite = pglites.find(p => !p.inUse)
    if (pglite === undefined) pglites.push(pglite = { backend: startPGlite(), inUse: false })
    pglite.inUse = true
  }
  const { url, poolSize, exec } = await (pglite?.backend ?? (server ??= startServerDatabase(serverUrl)))
  const schema = `tally_s${++schemas}`
  await exec(`CREATE SCHEMA ${schema}`)
  // PGlite reads no options from a connection's start-up: its one session is every connection's,
  // so the schema is chosen there, for the one test schema this PGlite holds until it ends.
  if (pglite !== undefined) await exec(`SET search_path TO ${schema}`)
  test.teardown(async () => {
    await exec(`DROP SCHEMA ${schema} CASCADE`)
    if (pglite !== undefined) pglite.inUse = false
  })
  const schemaUrl = new URL(url)
  schemaUrl.searchParams.set('options', `-c search_path=${schema}`)
  return { url: schemaUrl.href, poolSize }
}
