import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { ShuttingDown } from '../errors.js'

/**
 * Draining on close. Node's server.close() ends only the keep-alive sockets that are idle at that
 * moment: a request still in flight would be answered keep-alive and its socket then held the
 * close open until the client let go (close-with-grace gives up after 10 s and exits 1). So once
 * close has begun every answer says `Connection: close`, and a request arriving during the drain
 * is refused with tally's error shape (Fastify's own drain 503 has no `code`).
 */
export default fp(async (app: FastifyInstance) => {
  let closing = false
  app.addHook('preClose', async () => { closing = true })
  app.addHook('onRequest', async () => {
    if (closing) throw new ShuttingDown()
  })
  app.addHook('onSend', async (_request, reply, payload) => {
    if (closing) reply.header('connection', 'close')
    return payload
  })
}, { name: 'shutdown' })
