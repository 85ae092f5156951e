import { Cron } from 'croner'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

/** Ledgers settled per round of a sweep; a sweep goes on with more rounds until none is due. */
const LEDGERS_PER_ROUND = 100

/**
 * Settles every ledger with lots or holds past their expiry: writes their expirations and
 * expires their holds. Once a minute, in every instance (on PostgreSQL the ledger's lock makes
 * two instances' sweeps of one ledger take turns, and the second finds nothing due). Nothing
 * depends on it for correctness: every request settles its ledger first. It keeps the history
 * (GET /expirations) current for ledgers nobody touches. Registered when EXPIRY_SWEEP_ENABLED.
 */
export async function sweepExpired (app: FastifyInstance): Promise<number> {
  const { points, storage } = app
  let settled = 0
  for (;;) {
    const ledgers = await points.dueLedgers(LEDGERS_PER_ROUND)
    for (const ledgerId of ledgers) await storage.write(points.settle(ledgerId))
    settled += ledgers.length
    if (ledgers.length < LEDGERS_PER_ROUND) return settled
  }
}

export default fp(async (app: FastifyInstance) => {
  const job = new Cron('* * * * *', {
    timezone: 'UTC',
    paused: true,
    protect: true,
    catch: (err) => { app.log.error({ err }, 'expiry sweep failed') }
  }, async () => {
    const settled = await sweepExpired(app)
    if (settled > 0) app.log.info({ ledgers: settled }, 'expiry sweep settled ledgers')
  })
  app.decorate('expirySweep', job)
  // Only once listening, as the daily grant: an app that only injects (tests) never sweeps.
  app.addHook('onListen', async () => { job.resume() })
  app.addHook('onClose', async () => { job.stop() })
}, { name: 'expiry-sweep', dependencies: ['storage'] })

declare module 'fastify' {
  interface FastifyInstance {
    /** The minute sweep, present when EXPIRY_SWEEP_ENABLED is true. */
    expirySweep?: Cron
  }
}
