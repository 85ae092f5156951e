import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import Fastify, { LogController, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify'
import alertsRoutes from './alerts/routes.js'
import type { Config } from './config.js'
import dailyGrant from './credits/daily-grant.js'
import creditsRoutes from './credits/routes.js'
import postgresStorage from './storage/postgres/plugin.js'
import sqliteStorage from './storage/sqlite/plugin.js'
import keyPurge from './idempotency/purge.js'
import errors, { toErrorBody } from './errors.js'
import bearerToken from './http/bearer-token.js'
import docs from './http/docs.js'
import strictParameters from './http/strict-parameters.js'
import protocolErrors, { answerClientError } from './http/protocol-errors.js'
import jsonBody from './http/json-body.js'
import pointsRoutes from './points/routes.js'
import { flushRoutes, healthRoute } from './system/routes.js'
import shutdown from './system/shutdown.js'
import securityHeaders from './http/security-headers.js'
import requestLog, { loggerOptions } from './http/logging.js'
import usersRoutes from './users/routes.js'
import expirySweep from './points/expiry-sweep.js'
import pointLifeRoutes from './points/life-routes.js'

export interface AppOptions {
  /** The clock every stored time comes from; tests pass their own. */
  now?: () => Date
  /** Overrides the logger built from config.logLevel (tests pass false). */
  logger?: FastifyServerOptions['logger']
}

/** Builds tally without side effects: nothing listens and process.env is not read. */
export function buildApp (config: Config, options: AppOptions = {}): FastifyInstance {
  const now = options.now ?? (() => new Date())
  const log = options.logger !== undefined ? { logger: options.logger, flush: () => {} } : loggerOptions(config)
  const app = Fastify({
    logger: log.logger,
    // One line per request, written when it is answered (below), not two.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 1024 * 1024,
    // The shutdown plugin answers requests that arrive while closing, in tally's error shape.
    return503OnClosing: false,
    // Errors the router raises before any route runs (a malformed URL) get the same shape.
    frameworkErrors: (err: FastifyError, _request: FastifyRequest, reply: FastifyReply) => {
      const body = toErrorBody(err)
      reply.code(body.statusCode).send(body)
    },
    // Requests Node's HTTP parser refuses (no route ever sees them) get the same shape too, and so
    // does a missing Host (protocolErrors below), which Node would refuse with an empty body.
    clientErrorHandler: answerClientError,
    http: { requireHostHeader: false },
    // Fastify's own Ajv (with its formats), told never to coerce or strip: "5000" is not 5000 and
    // unknown fields are refused. Path and query parameters are parsed strictly by
    // parseParameters before they are validated.
    ajv: { customOptions: { coerceTypes: false, useDefaults: true, removeAdditional: false, allErrors: false } }
  }).withTypeProvider<TypeBoxTypeProvider>()

  // JSON only: a text/plain body on a JSON route is a 415, not a string that fails validation.
  app.removeContentTypeParser('text/plain')

  app.register(requestLog, { flush: log.flush })
  // Security headers on every response, those the hooks below refuse with included; the docs
  // page sends its own CSP (src/http/docs.ts).
  app.register(securityHeaders)
  app.register(errors)
  app.register(protocolErrors)
  // JSON bodies: UTF-8 only, and every string storable as sent (U+0000, lone surrogates: 400).
  app.register(jsonBody)
  app.register(shutdown)
  app.register(docs, { bearer: config.apiToken !== undefined })
  // One engine: PostgreSQL when DATABASE_URL is set, else the SQLite file at DB_PATH.
  const stores = { now, eventTimeUnit: config.eventTimeUnit, idempotencyTtlHours: config.idempotencyTtlHours, drawOrder: config.drawOrder }
  if (config.databaseUrl !== undefined) {
    app.register(postgresStorage, { ...stores, url: config.databaseUrl, poolSize: config.pgPoolSize, isolation: config.pgIsolation })
  } else {
    app.register(sqliteStorage, { ...stores, dbPath: config.dbPath, synchronous: config.dbSynchronous })
  }
  app.register(keyPurge)
  if (config.dailyCredits.enabled) app.register(dailyGrant, { amount: config.dailyCredits.amount, now })
  if (config.expirySweep) app.register(expirySweep)

  app.register(async (app) => {
    await app.register(strictParameters)
    await app.register(healthRoute)
  })
  // Everything else: behind the bearer token when API_TOKEN is set.
  app.register(async (app) => {
    await app.register(strictParameters)
    if (config.apiToken !== undefined) await app.register(bearerToken, { token: config.apiToken })
    await app.register(flushRoutes, { allowFlush: config.allowFlush })
    await app.register(pointsRoutes, { perUser: false })
    await app.register(pointLifeRoutes, { perUser: false })
    await app.register(usersRoutes)
    await app.register(pointsRoutes, { perUser: true, prefix: '/users/:userId/points' })
    await app.register(pointLifeRoutes, { perUser: true, prefix: '/users/:userId/points' })
    await app.register(creditsRoutes)
    await app.register(alertsRoutes)
  })
  return app
}
