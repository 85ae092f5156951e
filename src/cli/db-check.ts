import { existsSync } from 'node:fs'
import { loadConfig } from '../config.js'
import { checkInvariants } from '../storage/sqlite/check.js'
import { openDatabase } from '../storage/sqlite/open.js'
import { runCli } from './run.js'

// `npm run db:check`: verifies the ledger's invariants on DB_PATH (after a restore, say) and
// says what is wrong; exits 1 when anything is.
await runCli(async () => {
  const { dbPath } = loadConfig(process.env)
  if (!existsSync(dbPath)) throw new Error(`${dbPath} does not exist`)
  const db = openDatabase(dbPath)
  try {
    process.stderr.write(`checking ${dbPath}\n`)
    const problems = checkInvariants(db, check => process.stderr.write(`  ${check}…\n`))
    if (problems.length > 0) throw new Error(`${problems.length} problem(s):\n  ${problems.join('\n  ')}`)
    return `${dbPath}: every invariant holds`
  } finally {
    db.close()
  }
})
