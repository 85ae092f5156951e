import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { ConnectionError, FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { ExpectationFailed, HeadersTooLarge, MalformedRequest, RequestTimeout, toErrorBody, type ErrorBody } from '../errors.js'

// Node's parser errors that are not plain malformed requests; every other one (an unknown method,
// a broken request line, a bad header character, a bad Content-Length or chunk size, ...) is a 400
// that gives the parser's reason.
const refusals: Record<string, ErrorBody> = {
  HPE_HEADER_OVERFLOW: toErrorBody(new HeadersTooLarge()),
  ERR_HTTP_REQUEST_TIMEOUT: toErrorBody(new RequestTimeout()),
  HPE_INVALID_EOF_STATE: toErrorBody(new MalformedRequest('the connection ended before the request was complete'))
}

/** The answer to a request Node's HTTP parser refused, in tally's error shape. */
export function clientErrorBody (err: ConnectionError & { reason?: string }): ErrorBody {
  return refusals[err.code] ?? toErrorBody(new MalformedRequest(err.reason ?? err.message))
}

function asJson (body: ErrorBody): { json: string, headers: Record<string, string> } {
  const json = JSON.stringify(body)
  return { json, headers: { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': String(Buffer.byteLength(json)), Connection: 'close' } }
}

/**
 * Fastify's clientErrorHandler: no request or reply exists, so the response is written to the
 * socket by hand, and the connection closed, as the parser cannot go on after an error. As Node
 * does, nothing is written if the socket is gone or a response on it has already begun (a reply
 * sent before the body finished arriving): a second status line would corrupt that one.
 */
export function answerClientError (this: FastifyInstance, err: ConnectionError, socket: Socket): void {
  const inFlight = (socket as Socket & { _httpMessage?: { headersSent: boolean } })._httpMessage
  if (!socket.writable || inFlight?.headersSent === true) {
    socket.destroy()
    return
  }
  const body = clientErrorBody(err)
  const { json, headers } = asJson(body)
  this.log.info({ code: err.code, statusCode: body.statusCode }, 'malformed request refused')
  const head = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join('')
  socket.end(`HTTP/1.1 ${body.statusCode} ${body.error}\r\n${head}\r\n${json}`, () => { socket.destroy() })
}

/**
 * The HTTP layer's other refusals, which Node would send without a body: an `Expect` other than
 * 100-continue (417), and an HTTP/1.1 request without `Host` (400, RFC 9112 §3.2; Node's own check
 * is turned off with the server option requireHostHeader: false, so that this one answers).
 */
export default fp(async (app: FastifyInstance) => {
  // A client that half-closes once its request is sent (FIN after the last byte) still gets the
  // answer, and then the socket is closed. By default Node aborts a request whose client ends
  // before it is answered, so only an answer that takes no I/O wait got out: a PostgreSQL round
  // trip lost it, though its write was applied. (An undocumented flag of http.Server; Node's own
  // socketOnEnd reads it.)
  (app.server as typeof app.server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true
  app.server.on('checkExpectation', (_request: IncomingMessage, response: ServerResponse) => {
    const { json, headers } = asJson(toErrorBody(new ExpectationFailed()))
    response.writeHead(417, headers).end(json)
  })
  app.addHook('onRequest', (request, _reply, done) => {
    if (request.headers.host === undefined && request.raw.httpVersion === '1.1') {
      return done(new MalformedRequest('an HTTP/1.1 request must send a Host header'))
    }
    done()
  })
}, { name: 'protocol-errors' })
