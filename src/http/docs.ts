import { readFileSync } from 'node:fs'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import fp from 'fastify-plugin'

const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }

export interface DocsOptions {
  /** Whether routes need a bearer token: the docs then say so and offer to send one. */
  bearer: boolean
}

/** The OpenAPI document, generated from the routes' schemas, and its page at /docs. */
export default fp<DocsOptions>(async (app, { bearer }) => {
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'tally',
        version,
        description: 'Reward points from many payers (spent oldest first, never negative per payer), user credits with a daily grant, and alerts on deposits and withdrawals. Every error body is {statusCode, error, message, code}; a refused request changes nothing. Write routes honour an Idempotency-Key header.'
      },
      tags: [
        { name: 'points', description: 'The default points ledger: add, spend oldest first, balance, history' },
        { name: 'users', description: 'Users: each has a credit balance and a points ledger of their own' },
        { name: 'credits', description: 'Credit balances, their history, and the daily grant' },
        { name: 'user points', description: 'A user\'s own points ledger, with exactly the rules of the default one' },
        { name: 'alerts', description: 'Deposits and withdrawals judged by fixed rules with per-user thresholds; every event and alert kept' },
        { name: 'system', description: 'Health and maintenance' }
      ],
      ...(bearer && {
        components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
        security: [{ bearer: [] }]
      })
    }
  })
  await app.register(swaggerUi, {
    routePrefix: '/docs',
    staticCSP: true,
    // Swagger UI sets inline styles (never inline scripts): allow those, and no https upgrade.
    transformStaticCSP: (header: string) => header
      .replace(/\s*upgrade-insecure-requests;?/, '')
      .replace(/style-src ([^;]*);/, "style-src $1 'unsafe-inline';")
  })
}, { name: 'docs' })
