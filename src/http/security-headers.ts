import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

/**
 * The security headers helmet 8's defaults send, computed once. @fastify/helmet 13 builds
 * helmet's middleware (and parses its CSP) anew on every request, which cost more than half of a
 * bare route's throughput; these values are what it sent, minus `upgrade-insecure-requests`
 * (tally is served over plain http on localhost, and the upgrade would send the docs page's own
 * scripts to an https port that is not there). The docs page sends its own CSP (app.ts).
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'content-security-policy': [
    "default-src 'self'",
    "base-uri 'self'",
    "font-src 'self' https: data:",
    "form-action 'self'",
    "frame-ancestors 'self'",
    "img-src 'self' data:",
    "object-src 'none'",
    "script-src 'self'",
    "script-src-attr 'none'",
    "style-src 'self' https: 'unsafe-inline'"
  ].join(';'),
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'origin-agent-cluster': '?1',
  'referrer-policy': 'no-referrer',
  'strict-transport-security': 'max-age=31536000; includeSubDomains',
  'x-content-type-options': 'nosniff',
  'x-dns-prefetch-control': 'off',
  'x-download-options': 'noopen',
  'x-frame-options': 'SAMEORIGIN',
  'x-permitted-cross-domain-policies': 'none',
  'x-xss-protection': '0'
})

/** Every response carries SECURITY_HEADERS; a route may replace one (the docs page's CSP). */
export default fp(async (app: FastifyInstance) => {
  // A callback hook, not an async one: no promise per request.
  app.addHook('onRequest', (_request, reply, done) => {
    reply.headers(SECURITY_HEADERS)
    done()
  })
}, { name: 'security-headers' })
