import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { answerOnce } from '../http/write-path.js'
import { mapWork } from '../storage/work.js'
import { IdempotencyHeaders, bodyErrors, errorResponses, refuseBody } from '../schemas.js'

export interface FlushRoutesOptions {
  allowFlush: boolean
}

/**
 * Liveness and readiness: open to all, even when API_TOKEN is set, because an orchestrator's
 * probes carry no secrets. `security: []` shows them as open on the docs page.
 */
export const healthRoute: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/live', {
    schema: {
      tags: ['system'],
      summary: 'Liveness: the process answers (no database work)',
      description: 'For a supervisor\'s liveness probe, and the baseline of npm run bench. Open even when API_TOKEN is set. /health is the readiness check.',
      security: [],
      response: { 200: Type.Object({ status: Type.Literal('live') }), ...errorResponses([]) }
    }
  }, async () => ({ status: 'live' as const }))

  app.get('/health', {
    schema: {
      tags: ['system'],
      summary: 'Readiness: answers after a database round trip',
      description: 'For a supervisor\'s readiness probe. Open even when API_TOKEN is set. 200 once the database answers.',
      security: [],
      response: { 200: Type.Object({ status: Type.Literal('ok') }), ...errorResponses([]) }
    }
  }, async () => {
    await app.storage.ping()
    return { status: 'ok' as const }
  })
}

/** The guarded flush used by demos and test set-ups. */
export const flushRoutes: FastifyPluginAsyncTypebox<FlushRoutesOptions> = async (app, { allowFlush }) => {
  if (!allowFlush) return
  for (const method of ['POST', 'DELETE'] as const) {
    app.route({
      method,
      url: '/flushDB',
      schema: {
        tags: ['system'],
        summary: 'Erase all data (only with ALLOW_FLUSH=true)',
        description: 'Returns the database to its freshly migrated state: every ledger, user, event and alert is deleted and ids start again at 1. Takes no body (or `{}`). Runs through the group commit like every write; with an Idempotency-Key, the key is stored after the erase, so a retry is answered, not erased again. Without ALLOW_FLUSH=true this route does not exist (404).',
        headers: IdempotencyHeaders,
        response: { 200: Type.Object({ flushed: Type.Literal(true) }), ...errorResponses(bodyErrors) }
      },
      preValidation: refuseBody,
      handler: async (request, reply) => await answerOnce(request, reply, 200, mapWork(app.storage.reset(), () => {
        request.log.warn('database flushed')
        return { flushed: true as const }
      }))
    })
  }
}
