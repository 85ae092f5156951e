import { loadConfig } from '../config.js'
import { utcDay } from '../credits/daily-grant.js'
import { CreditsRepository } from '../credits/repository.js'
import { migrate } from '../storage/sqlite/migrate.js'
import { openDatabase } from '../storage/sqlite/open.js'
import { runCli } from './run.js'

// `npm run credits:daily`: today's grant, once, then exit. Safe to run while the service runs or
// twice in a row: a user already granted today is not granted again.
await runCli(async () => {
  const config = loadConfig(process.env)
  const db = openDatabase(config.dbPath)
  try {
    await migrate(db)
    const run = new CreditsRepository(db, () => new Date())
      .grantDaily(utcDay(new Date()), config.dailyCredits.amount, 'command')
    return `daily credits for ${run.day}: credited ${run.users_credited} user(s) with ${config.dailyCredits.amount} each`
  } finally {
    db.close()
  }
})
