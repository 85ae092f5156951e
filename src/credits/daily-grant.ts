import { Cron } from 'croner'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

/** The UTC calendar day of an instant, 'YYYY-MM-DD': the unit a daily grant is counted in. */
export function utcDay (instant: Date): string {
  return instant.toISOString().slice(0, 10)
}

export interface DailyGrantOptions {
  amount: number
  now: () => Date
}

/**
 * Grants every user the daily credits at 00:00 UTC, and once the server listens when no grant has
 * run today (a service that was down at midnight catches up for today; earlier missed days are
 * not back-filled). An app that never listens (tests that only inject) neither catches up nor
 * schedules. Registered only when DAILY_CREDITS_ENABLED is true.
 */
export default fp<DailyGrantOptions>(async (app: FastifyInstance, { amount, now }) => {
  // The grant is a write like any other: on SQLite it waits for another process's lock without
  // blocking; on PostgreSQL every instance runs it and the (user, day) key grants each user once.
  const { credits, storage } = app
  const job = new Cron('0 0 * * *', {
    timezone: 'UTC',
    name: 'daily-credits',
    paused: true,
    protect: true,
    // A failed run (the file locked for too long, say) is logged; the next midnight tries again.
    catch: (err) => { app.log.error({ err }, 'daily credits grant failed') }
  }, async () => {
    app.log.info(await storage.write(credits.grantDaily(utcDay(now()), amount, 'schedule')), 'daily credits granted')
  })
  app.decorate('dailyGrant', job)
  // Only once listening: a start that fails (the port taken, say) grants nothing. A catch-up that
  // fails is logged and the service goes on; the next midnight tries again.
  // Fastify does not wait for an async onListen hook: dailyCatchUp says when it is done.
  let caughtUp: (() => void) | undefined
  app.decorate('dailyCatchUp', new Promise<void>(resolve => { caughtUp = resolve }))
  app.addHook('onListen', async () => {
    try {
      const run = await storage.write(credits.catchUp(utcDay(now()), amount))
      if (run !== null) app.log.info(run, 'daily credits granted (start-up catch-up)')
    } catch (err) {
      app.log.error({ err }, 'daily credits catch-up failed')
    }
    job.resume()
    caughtUp!()
  })
  app.addHook('onClose', async () => { job.stop() })
}, { name: 'daily-grant', dependencies: ['storage'] })

declare module 'fastify' {
  interface FastifyInstance {
    /** The midnight job, present when DAILY_CREDITS_ENABLED is true. */
    dailyGrant?: Cron
    /** Settles once the start-up catch-up has run (or failed, which is logged). */
    dailyCatchUp?: Promise<void>
  }
}
