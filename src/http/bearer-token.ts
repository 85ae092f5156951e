import bearerAuth from '@fastify/bearer-auth'
import fp from 'fastify-plugin'
import { errorBody } from '../errors.js'

export interface BearerTokenOptions {
  token: string
}

/** In the scope it is registered in, every request needs `Authorization: Bearer <token>`. */
export default fp<BearerTokenOptions>(async (app, { token }) => {
  // rfc6749 mode: the scheme is case-insensitive (RFC 7235), `bearer <token>` works too.
  await app.register(bearerAuth, {
    keys: [token],
    specCompliance: 'rfc6749',
    addHook: false,
    verifyErrorLogLevel: 'warn'
  })
  // Every 401 says which scheme to use (RFC 9110 §11.6.1).
  app.addHook('onRequest', (request, reply, done) => {
    app.verifyBearerAuth!(request, reply, (err) => {
      if (err === undefined) return done()
      reply.code(401).header('www-authenticate', 'Bearer realm="tally"')
        .send(errorBody(401, 'Send Authorization: Bearer <API_TOKEN>', 'UNAUTHORIZED'))
    })
  })
}, { name: 'bearer-token', encapsulate: false })
