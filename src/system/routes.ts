import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { resetDatabase } from '../db/reset.js'
import { errorResponses } from '../schemas.js'

export interface SystemRoutesOptions {
  allowFlush: boolean
}

/** Health, and the guarded flush used by demos and test set-ups. */
const systemRoutes: FastifyPluginAsyncTypebox<SystemRoutesOptions> = async (app, { allowFlush }) => {
  const roundTrip = app.db.prepare('SELECT 1').pluck()

  app.get('/health', {
    schema: {
      tags: ['system'],
      summary: 'Liveness with a database round trip',
      response: { 200: Type.Object({ status: Type.Literal('ok') }), ...errorResponses([]) }
    }
  }, async () => {
    roundTrip.get()
    return { status: 'ok' as const }
  })

  if (!allowFlush) return
  for (const method of ['POST', 'DELETE'] as const) {
    app.route({
      method,
      url: '/flushDB',
      schema: {
        tags: ['system'],
        summary: 'Erase all data (only with ALLOW_FLUSH=true)',
        description: 'Returns the database to its freshly migrated state: every ledger, user, event and alert is deleted and ids start again at 1. Without ALLOW_FLUSH=true this route does not exist (404).',
        response: { 200: Type.Object({ flushed: Type.Literal(true) }), ...errorResponses([]) }
      },
      handler: async (request) => {
        resetDatabase(app.db)
        request.log.warn('database flushed')
        return { flushed: true as const }
      }
    })
  }
}

export default systemRoutes
