import fp from 'fastify-plugin'
import { parseParameters, refuseUndeclaredQuery } from '../schemas.js'

/**
 * In the scope it is registered in: a route refuses query parameters it does not declare, and
 * path and query parameters are parsed strictly ("5000" is 5000, "5e3" is refused) before they
 * are validated.
 */
export default fp(async (app) => {
  app.addHook('onRoute', refuseUndeclaredQuery)
  app.addHook('preValidation', parseParameters)
}, { name: 'strict-parameters', encapsulate: false })
