import { createHash } from 'node:crypto'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { InvalidIdempotencyKey } from '../errors.js'
import type { IdempotencyRepository } from './repository.js'

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
 * Answers a write route, through the group commit (app.writes): the answer is sent only once the
 * write is committed. Without an Idempotency-Key header: runs `work` and sends its result.
 * With one: runs it at most once per key (see IdempotencyRepository.once); a replay carries
 * `Idempotent-Replayed: true`. The result is serialized by the route's own response schema,
 * so the stored answer is byte for byte what the first caller got.
 */
export async function answerOnce (
  idempotency: IdempotencyRepository, request: FastifyRequest, reply: FastifyReply, status: number, work: () => unknown
): Promise<FastifyReply> {
  // A string by the route's header schema (a repeated header is refused there).
  const key = request.headers['idempotency-key'] as string | undefined
  const { writes } = request.server
  if (key === undefined) return await reply.code(status).send(await writes.run(work))
  if (!VALID_KEY.test(key)) throw new InvalidIdempotencyKey()
  const fingerprint = createHash('sha256')
    .update(`${request.method} ${request.url}\n${canonicalJson(request.body ?? null)}`)
    .digest('hex')
  const serialize = reply.getSerializationFunction(String(status))!
  const outcome = await writes.run(() => idempotency.once(key, fingerprint, status, () => serialize(work() as Record<string, unknown>)))
  if (outcome.replayed) reply.header('idempotent-replayed', 'true')
  return await reply.code(outcome.status).type('application/json; charset=utf-8').send(outcome.body)
}
