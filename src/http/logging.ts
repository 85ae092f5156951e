import type { FastifyInstance, FastifyServerOptions } from 'fastify'
import fp from 'fastify-plugin'
import pino from 'pino'
import type { Config } from '../config.js'

/**
 * The logger's options: JSON lines on stdout, or human-readable ones through pino-pretty.
 * JSON lines are buffered and written asynchronously, at least every 100 ms or 4 KiB, rather
 * than one write(2) per line on the request's path (measured by npm run bench:profile: a line's
 * own write cost about as much as the rest of its logging). So a SIGKILL loses at most the last
 * 100 ms of log lines, never data. `flush` writes out the rest; the plugin below calls it on close.
 */
export function loggerOptions (config: Config): { logger: FastifyServerOptions['logger'], flush: () => void } {
  if (config.logPretty) {
    return {
      logger: { level: config.logLevel, transport: { target: 'pino-pretty', options: { translateTime: 'SYS:standard', ignore: 'pid,hostname' } } },
      flush: () => {}
    }
  }
  const stream = pino.destination({ dest: 1, sync: false, minLength: 4096 })
  const timer = setInterval(() => { stream.flush() }, 100).unref()
  return {
    logger: { level: config.logLevel, stream },
    flush: () => {
      clearInterval(timer)
      stream.flushSync()
    }
  }
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
