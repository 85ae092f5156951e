import { createHash } from 'node:crypto'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { InvalidIdempotencyKey } from '../errors.js'
import type { Work } from '../storage/work.js'

const VALID_KEY = /^[\x21-\x7e]{1,255}$/

/**
 * JSON with every object's keys sorted: the same body with its fields in another order is the same
 * request. Arrays keep their order, which means something.
 */
export function canonicalJson (value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  if (value !== null && typeof value === 'object') {
    const entries = Object.keys(value).sort().map(key => `${JSON.stringify(key)}:${canonicalJson((value as Record<string, unknown>)[key])}`)
    return `{${entries.join(',')}}`
  }
  return JSON.stringify(value)
}

/**
 * The one write path. Runs `work` in one transaction of the engine (SQLite: the group commit;
 * PostgreSQL: the request's own transaction, retried whole on a serialization failure) and
 * answers only once it is committed. Without an Idempotency-Key header that is all. With one,
 * the work runs at most once per key and its answer is stored in the same transaction; a replay
 * carries `Idempotent-Replayed: true`. The answer is serialized by the route's own response
 * schema, so the stored answer is byte for byte what the first caller got.
 */
export async function answerOnce (request: FastifyRequest, reply: FastifyReply, status: number, work: Work<unknown>): Promise<FastifyReply> {
  // A string by the route's header schema (a repeated header is refused there).
  const key = request.headers['idempotency-key'] as string | undefined
  const { storage } = request.server
  if (key === undefined) return await reply.code(status).send(await storage.write(work))
  if (!VALID_KEY.test(key)) throw new InvalidIdempotencyKey()
  const fingerprint = createHash('sha256')
    .update(`${request.method} ${request.url}\n${canonicalJson(request.body ?? null)}`)
    .digest('hex')
  const serialize = reply.getSerializationFunction(String(status))! as (result: unknown) => string
  const outcome = await storage.writeOnce(work, { key, fingerprint, status, serialize })
  if (outcome.replayed) reply.header('idempotent-replayed', 'true')
  return await reply.code(outcome.status).type('application/json; charset=utf-8').send(outcome.body)
}
