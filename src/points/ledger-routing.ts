import type { FastifyInstance, FastifyRequest } from 'fastify'
import { Type, type TSchema } from 'typebox'
import { InvalidTime } from '../errors.js'
import type { ErrorStatus } from '../schemas.js'
import { UserIdParams } from '../users/schemas.js'
import { parseTimestamp } from './timestamp.js'

export interface PointsRoutesOptions {
  /**
   * False: the routes serve the default ledger (0). True: they are registered under
   * /users/:userId/points and serve that user's own ledger (ledger n is user n's), 404 for an
   * unknown user.
   */
  perUser: boolean
}

/** A time field other than an add's timestamp, in its stored form; INVALID_TIMESTAMP names it. */
export function storedTime (name: string, text: string): string {
  const parsed = parseTimestamp(text)
  if (!parsed.ok) throw new InvalidTime(name, parsed.reason)
  return parsed.utc
}

/**
 * What every points route needs to serve either the default ledger or a user's: its docs tags,
 * its path parameters, its 404, the ledger a request is about, and settling before a read.
 */
export function ledgerRouting (app: FastifyInstance, perUser: boolean) {
  const { points, storage } = app
  const ledgerOf = (request: FastifyRequest): number => perUser ? (request.params as { userId: number }).userId : 0
  return {
    tags: perUser ? ['user points'] : ['points'],
    params: perUser ? { params: UserIdParams } : {},
    notFound: (perUser ? [404] : []) as ErrorStatus[],
    codes: perUser ? { 404: ['USER_NOT_FOUND'] } : {},
    // The store answers 404 for a ledger whose user does not exist.
    ledgerOf,
    /** The path parameters: the user's id (a user's ledger) and `more`. */
    paramsWith: <P extends Record<string, TSchema>>(more: P) => ({
      params: Type.Object({ ...(perUser ? UserIdParams.properties : {}), ...more }, { additionalProperties: false })
    }),
    /**
     * Before a read: if the ledger has lots or holds past their expiry that no write has settled
     * yet, settle them (a write) first, so that no answer shows an expired point as available.
     */
    settled: async (request: FastifyRequest): Promise<number> => {
      const ledgerId = ledgerOf(request)
      if (await points.due(ledgerId)) await storage.write(points.settle(ledgerId))
      return ledgerId
    }
  }
}
