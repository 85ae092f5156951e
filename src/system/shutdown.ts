import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { ShuttingDown } from '../errors.js'

/** How long a drain waits for requests still arriving before it closes their connections. */
export const DRAIN_GRACE_MS = 2000
/**
 * When it stops waiting for answers too (a client that does not read its answer, a handler that
 * never returns): within close-with-grace's 10 s, so the process still exits 0.
 */
export const DRAIN_LIMIT_MS = 7000

/**
 * Draining on close. Node's server.close() ends only the keep-alive sockets that are idle at that
 * moment: a request still in flight would be answered keep-alive and its socket then held the
 * close open until the client let go (close-with-grace gives up after 10 s and exits 1). So once
 * close has begun every answer says `Connection: close`, and a request arriving during the drain
 * is refused with tally's error shape (Fastify's own drain 503 has no `code`).
 *
 * A drain has a deadline: a client that sent half its headers or half its body and then nothing
 * would hold the close open just the same. After DRAIN_GRACE_MS every connection is closed except
 * those whose request has fully arrived and is still being answered: those are answered, until
 * DRAIN_LIMIT_MS, when every connection left is closed.
 */
export default fp(async (app: FastifyInstance) => {
  let closing = false
  let deadline: NodeJS.Timeout | undefined
  const connections = new Set<Socket>()
  // Every request from its headers until its answer has gone (or its socket closed).
  const requests = new Set<IncomingMessage>()
  app.server.on('connection', (socket: Socket) => {
    connections.add(socket)
    socket.once('close', () => connections.delete(socket))
  })
  app.server.on('request', (request: IncomingMessage, response) => {
    requests.add(request)
    response.once('close', () => requests.delete(request))
  })
  function closeUnfinished (): void {
    const answering = new Set([...requests].filter(request => request.complete).map(request => request.socket))
    let closed = 0
    for (const socket of connections) {
      if (!answering.has(socket)) { socket.destroy(); closed++ }
    }
    app.log.info({ closed, answering: answering.size }, 'drain deadline: closed the connections with nothing to answer')
  }

  function closeAll (): void {
    for (const socket of connections) socket.destroy()
    app.log.warn({ closed: connections.size }, 'drain limit: closed the connections still being answered')
  }

  let limit: NodeJS.Timeout | undefined
  app.addHook('preClose', async () => {
    closing = true
    deadline = setTimeout(closeUnfinished, DRAIN_GRACE_MS).unref()
    limit = setTimeout(closeAll, DRAIN_LIMIT_MS).unref()
  })
  app.addHook('onClose', async () => {
    clearTimeout(deadline)
    clearTimeout(limit)
  })
  // Callback hooks, not async ones: they run on every request, and a promise each costs.
  app.addHook('onRequest', (_request, _reply, done) => {
    done(closing ? new ShuttingDown() : undefined)
  })
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (closing) reply.header('connection', 'close')
    done(null, payload)
  })
}, { name: 'shutdown' })
