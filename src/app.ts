import { readFileSync } from 'node:fs'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Ajv } from 'ajv'
import ajvFormats from 'ajv-formats'
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify'
import fp from 'fastify-plugin'
import type { Config } from './config.js'
import dbPlugin from './db/plugin.js'
import errors, { toErrorBody } from './errors.js'
import { AlertsRepository } from './alerts/repository.js'
import alertsRoutes from './alerts/routes.js'
import dailyGrant from './credits/daily-grant.js'
import { CreditsRepository } from './credits/repository.js'
import creditsRoutes from './credits/routes.js'
import { PointsRepository } from './points/repository.js'
import pointsRoutes from './points/routes.js'
import systemRoutes from './system/routes.js'
import { UsersRepository } from './users/repository.js'
import usersRoutes from './users/routes.js'

declare module 'fastify' {
  interface FastifyInstance {
    points: PointsRepository
    users: UsersRepository
    credits: CreditsRepository
    alerts: AlertsRepository
  }
}

export interface AppOptions {
  /** The clock every stored time comes from; tests pass their own. */
  now?: () => Date
  /** Overrides the logger built from config.logLevel (tests pass false). */
  logger?: FastifyServerOptions['logger']
}

const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }

// Bodies are validated strictly: "5000" is not 5000 and unknown fields are refused, not stripped.
// Path and query parameters arrive as text, so they are coerced.
const addFormats = ajvFormats.default
const bodyAjv = addFormats(new Ajv({ coerceTypes: false, useDefaults: true, removeAdditional: false, allErrors: false }))
const paramAjv = addFormats(new Ajv({ coerceTypes: 'array', useDefaults: true, removeAdditional: false, allErrors: false }))

/** Builds tally without side effects: nothing listens and process.env is not read. */
export function buildApp (config: Config, options: AppOptions = {}): FastifyInstance {
  const now = options.now ?? (() => new Date())
  const app = Fastify({
    logger: options.logger ?? { level: config.logLevel },
    bodyLimit: 1024 * 1024,
    // Errors the router raises before any route runs (a malformed URL) get the same shape.
    frameworkErrors: (err: FastifyError, _request: FastifyRequest, reply: FastifyReply) => {
      const body = toErrorBody(err)
      reply.code(body.statusCode).send(body)
    }
  }).withTypeProvider<TypeBoxTypeProvider>()

  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? bodyAjv : paramAjv).compile(schema))
  // JSON only: a text/plain body on a JSON route is a 415, not a string that fails validation.
  app.removeContentTypeParser('text/plain')

  app.register(errors)
  app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'tally',
        version,
        description: 'Reward points from many payers (spent oldest first, never negative per payer), user credits with a daily grant, and alerts on deposits and withdrawals. Every error body is {statusCode, error, message, code}; a refused request changes nothing.'
      },
      tags: [
        { name: 'points', description: 'The default points ledger: add, spend oldest first, balance, history' },
        { name: 'users', description: 'Users: each has a credit balance and a points ledger of their own' },
        { name: 'credits', description: 'Credit balances, their history, and the daily grant' },
        { name: 'user points', description: 'A user\'s own points ledger, with exactly the rules of the default one' },
        { name: 'alerts', description: 'Deposits and withdrawals judged by fixed rules with per-user thresholds; every event and alert kept' },
        { name: 'system', description: 'Health and maintenance' }
      ]
    }
  })
  app.register(swaggerUi, { routePrefix: '/docs' })
  app.register(dbPlugin, { dbPath: config.dbPath })
  app.register(fp(async (app) => {
    app.decorate('points', new PointsRepository(app.db, now))
    app.decorate('users', new UsersRepository(app.db, now))
    app.decorate('credits', new CreditsRepository(app.db, now))
    app.decorate('alerts', new AlertsRepository(app.db, now, config.eventTimeUnit))
  }, { name: 'repositories', dependencies: ['db'] }))
  if (config.dailyCredits.enabled) {
    // Options as a function: the repositories exist only once the plugin above has loaded.
    app.register(dailyGrant, parent => ({ credits: parent.credits, amount: config.dailyCredits.amount, now }))
  }

  app.register(async (app) => {
    await app.register(systemRoutes, { allowFlush: config.allowFlush })
    await app.register(pointsRoutes, { points: app.points })
    await app.register(usersRoutes, { users: app.users })
    await app.register(pointsRoutes, { points: app.points, users: app.users, prefix: '/users/:userId/points' })
    await app.register(creditsRoutes, { credits: app.credits })
    await app.register(alertsRoutes, { alerts: app.alerts })
  })
  return app
}
