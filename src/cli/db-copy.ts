import { parseArgs } from 'node:util'
import Database from 'better-sqlite3'
import { loadConfig, maskedUrl } from '../config.js'
import { copySqliteToPostgres, formatSummary } from '../storage/copy.js'
import { connectOrExplain, createPool } from '../storage/postgres/pool.js'
import { DatabaseOpenError, type Db } from '../storage/sqlite/open.js'
import { runCli } from './run.js'

const USAGE = 'usage: npm run db:copy -- --to postgres://USER@HOST:PORT/DATABASE (copies the file at DB_PATH into that empty database)'

/** The target's URL from the command line; anything else is the usage line (which never echoes a URL). */
function targetUrl (args: string[]): string {
  let to: string | undefined
  try {
    to = parseArgs({ args, options: { to: { type: 'string' } }, strict: true }).values.to
  } catch {
    // An unknown option or --to without a value: the usage line says what is wanted.
  }
  if (to === undefined || !/^postgres(ql)?:\/\//.test(to) || !URL.canParse(to)) throw new Error(USAGE)
  return to
}

/** The file, read-only: the copy never writes to it (nor creates it). */
function openReadOnly (path: string): Db {
  let db: Db | undefined
  try {
    db = new Database(path, { readonly: true, fileMustExist: true })
    // The first read: a file that is not a database fails here.
    db.pragma('schema_version')
    return db
  } catch (err) {
    db?.close()
    throw new DatabaseOpenError(path, err)
  }
}

// `npm run db:copy -- --to postgres://...`: copies the SQLite file at DB_PATH into an empty
// PostgreSQL database, verifies the copy against the file and prints what it did. DATABASE_URL
// is not read: the target is named on the command line, so a copy cannot land on the wrong one.
await runCli(async () => {
  const url = targetUrl(process.argv.slice(2))
  const { dbPath } = loadConfig({ DB_PATH: process.env.DB_PATH })
  const db = openReadOnly(dbPath)
  const target = `PostgreSQL at ${maskedUrl(url)}`
  // One connection: the copy runs on one client, and the steps around it one after another.
  const pool = createPool({ url, size: 1 })
  try {
    await connectOrExplain(pool, url)
    process.stderr.write(`copying ${dbPath} into ${target}\n`)
    const summary = await copySqliteToPostgres(db, pool, { progress: step => process.stderr.write(`  ${step}…\n`) })
    const report = formatSummary(summary, dbPath, target)
    if (!summary.committed) throw new Error(report)
    return report
  } finally {
    await pool.end()
    db.close()
  }
})
