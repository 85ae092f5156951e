import type { FastifyInstance, FastifyServerOptions } from 'fastify'
import fp from 'fastify-plugin'
import pino from 'pino'
import type { Config } from '../config.js'

/**
 * The logger's options: JSON lines on stdout, written asynchronously (a line no longer costs a
 * write(2) of its own on the request's path: lines logged while a write is in flight go out
 * together in the next), or human-readable ones through pino-pretty. `flush` writes out what is
 * still buffered; the plugin below calls it on close.
 */
export function loggerOptions (config: Config): { logger: FastifyServerOptions['logger'], flush: () => void } {
  if (config.logPretty) {
    return {
      logger: { level: config.logLevel, transport: { target: 'pino-pretty', options: { translateTime: 'SYS:standard', ignore: 'pid,hostname' } } },
      flush: () => {}
    }
  }
  const stream = pino.destination({ dest: 1, sync: false })
  return { logger: { level: config.logLevel, stream }, flush: () => { stream.flushSync() } }
}

/** One line per request, written when it is answered; the buffered log is flushed on close. */
export default fp<{ flush: () => void }>(async (app: FastifyInstance, { flush }) => {
  // Callback hooks, not async ones: no promise per request.
  app.addHook('onResponse', (request, reply, done) => {
    request.log.info({ method: request.method, url: request.url, statusCode: reply.statusCode, ms: Math.round(reply.elapsedTime * 100) / 100 }, 'request')
    done()
  })
  app.addHook('onClose', (_app, done) => {
    flush()
    done()
  })
}, { name: 'request-log' })
