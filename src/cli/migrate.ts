import { loadConfig } from '../config.js'
import { migratePostgres } from '../storage/postgres/migrate.js'
import { connectOrExplain, createPool } from '../storage/postgres/pool.js'
import { migrate } from '../storage/sqlite/migrate.js'
import { openDatabase } from '../storage/sqlite/open.js'
import { runCli } from './run.js'

/** What a run did, in one line. */
const said = (where: string, { applied, version }: { applied: string[], version: number }): string => applied.length > 0
  ? `${where}: applied ${applied.join(', ')}; now at version ${version}`
  : `${where}: already at version ${version}, nothing to apply`

// `npm run migrate`: applies pending migrations to the configured database (DATABASE_URL, else
// DB_PATH) and says what it did.
await runCli(async () => {
  const config = loadConfig(process.env)
  if (config.databaseUrl !== undefined) {
    const pool = createPool({ url: config.databaseUrl, size: 1 })
    try {
      await connectOrExplain(pool, config.databaseUrl)
      const url = new URL(config.databaseUrl)
      return said(`postgres ${url.host}${url.pathname}`, await migratePostgres(pool))
    } finally {
      await pool.end()
    }
  }
  const db = openDatabase(config.dbPath)
  try {
    return said(config.dbPath, await migrate(db))
  } finally {
    db.close()
  }
})
