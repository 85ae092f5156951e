import fp from 'fastify-plugin'

declare module 'fastify' {
  interface FastifyInstance {
    /** Deletes idempotency keys past their TTL; at start and hourly. Logs, never throws. */
    purgeExpiredKeys: () => Promise<void>
  }
}

const HOUR = 3600_000

/**
 * Expired idempotency keys are purged at start and hourly; a lookup ignores them anyway. A purge
 * that fails (the disk full, say) is logged; the next hour tries again.
 */
export default fp(async (app) => {
  let timer: NodeJS.Timeout | undefined
  app.decorate('purgeExpiredKeys', async (): Promise<void> => {
    try {
      await app.storage.write(app.idempotency.purge())
    } catch (err) {
      app.log.error({ err }, 'purging expired idempotency keys failed')
    }
  })
  app.addHook('onReady', async () => {
    await app.purgeExpiredKeys()
    timer = setInterval(app.purgeExpiredKeys, HOUR).unref()
  })
  app.addHook('onClose', async () => { clearInterval(timer) })
}, { name: 'key-purge', dependencies: ['storage'] })
