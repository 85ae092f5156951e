import type { FastifyInstance } from 'fastify'
import { build, call } from '../helper.js'

interface Teardown { teardown: (fn: () => unknown) => void }

/** The service clock of one test: it stands still until the test moves it. */
export interface Clock {
  now: Date
  set: (instant: string) => void
}

/**
 * tally on a fresh database with a clock the test moves and the expiry sweep off, so that only
 * requests meet what fell due: what a test sees holds whether or not a sweep ran.
 */
export async function clockedApp (t: Teardown, start: string, env: Record<string, string> = {}): Promise<{ app: FastifyInstance, clock: Clock }> {
  const clock: Clock = { now: new Date(start), set (instant) { clock.now = new Date(instant) } }
  const app = await build(t, { now: () => new Date(clock.now), env: { EXPIRY_SWEEP_ENABLED: 'false', ...env } })
  return { app, clock }
}

/** The balance as sent, text: its keys' order is part of the contract. */
export async function rawBalance (app: FastifyInstance, url = '/balance'): Promise<string> {
  return (await app.inject(url)).body
}

/** Every row of the ledger tables but the idempotency keys: what a replay must leave alone. */
export function withoutKeys (snap: Record<string, unknown[]>): Record<string, unknown[]> {
  const { idempotency_keys: _keys, ...data } = snap
  return data
}

export const capture = async (app: FastifyInstance, holdId: number, body: object = {}, prefix = '') =>
  await call(app, { method: 'POST', url: `${prefix}/holds/${holdId}/capture`, payload: body })

export const voidHold = async (app: FastifyInstance, holdId: number, prefix = '') =>
  await call(app, { method: 'POST', url: `${prefix}/holds/${holdId}/void`, payload: {} })

export const reverse = async (app: FastifyInstance, spendId: number, body: object = {}, prefix = '') =>
  await call(app, { method: 'POST', url: `${prefix}/spends/${spendId}/reversals`, payload: body })
