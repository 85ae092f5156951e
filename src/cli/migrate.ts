import { loadConfig } from '../config.js'
import { migrate } from '../storage/sqlite/migrate.js'
import { openDatabase } from '../storage/sqlite/open.js'
import { runCli } from './run.js'

// `npm run migrate`: applies pending migrations to DB_PATH and says what it did.
await runCli(async () => {
  const config = loadConfig(process.env)
  const db = openDatabase(config.dbPath)
  try {
    const { applied, version } = await migrate(db)
    return applied.length > 0
      ? `${config.dbPath}: applied ${applied.join(', ')}; now at version ${version}`
      : `${config.dbPath}: already at version ${version}, nothing to apply`
  } finally {
    db.close()
  }
})
