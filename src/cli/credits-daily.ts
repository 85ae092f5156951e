import { buildApp } from '../app.js'
import { loadConfig } from '../config.js'
import { utcDay } from '../credits/daily-grant.js'
import { runCli } from './run.js'

// `npm run credits:daily`: today's grant, once, then exit, on whichever engine the configuration
// names. Safe to run while the service runs or twice in a row: a user already granted today is
// not granted again.
await runCli(async () => {
  const config = loadConfig(process.env)
  const { amount } = config.dailyCredits
  // The app without its schedule: nothing listens, only the stores are used.
  const app = buildApp({ ...config, dailyCredits: { amount, enabled: false } }, { logger: false })
  try {
    await app.ready()
    const run = await app.storage.write(app.credits.grantDaily(utcDay(new Date()), amount, 'command'))
    return `daily credits for ${run.day}: credited ${run.users_credited} user(s) with ${amount} each`
  } finally {
    await app.close()
  }
})
