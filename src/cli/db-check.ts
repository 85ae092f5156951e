import { existsSync } from 'node:fs'
import { loadConfig } from '../config.js'
import { checkInvariantsPostgres } from '../storage/postgres/check.js'
import { connectOrExplain, createPool } from '../storage/postgres/pool.js'
import { checkInvariants } from '../storage/sqlite/check.js'
import { openDatabase } from '../storage/sqlite/open.js'
import { runCli } from './run.js'

/** Throws naming every problem found, if any. */
function verdict (where: string, problems: string[]): string {
  if (problems.length > 0) throw new Error(`${problems.length} problem(s):\n  ${problems.join('\n  ')}`)
  return `${where}: every invariant holds`
}

const progress = (check: string): void => { process.stderr.write(`  ${check}…\n`) }

// `npm run db:check`: verifies the ledger's invariants on the configured database (DATABASE_URL,
// else DB_PATH: after a restore, a copy, a crash) and says what is wrong; exits 1 when anything is.
await runCli(async () => {
  const config = loadConfig(process.env)
  if (config.databaseUrl !== undefined) {
    const pool = createPool({ url: config.databaseUrl, size: 1 })
    try {
      await connectOrExplain(pool, config.databaseUrl)
      // Host and database only: the URL may carry a password.
      const url = new URL(config.databaseUrl)
      const where = `postgres ${url.host}${url.pathname}`
      process.stderr.write(`checking ${where}\n`)
      return verdict(where, await checkInvariantsPostgres(pool, progress))
    } finally {
      await pool.end()
    }
  }
  const { dbPath } = config
  if (!existsSync(dbPath)) throw new Error(`${dbPath} does not exist`)
  const db = openDatabase(dbPath)
  try {
    process.stderr.write(`checking ${dbPath}\n`)
    return verdict(dbPath, checkInvariants(db, progress))
  } finally {
    db.close()
  }
})
