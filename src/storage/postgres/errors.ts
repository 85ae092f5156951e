import pg from 'pg'

/** The 503 a PostgreSQL failure is answered with, or undefined when it is not the database's trouble. */
export type PgTrouble = 'STORAGE_UNAVAILABLE' | 'DATABASE_BUSY'

// The connection failed or broke: Node's socket errors, and pg's own words for a closed one.
const CONNECTION_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN'
])
const CONNECTION_MESSAGES = [
  'Connection terminated', // unexpectedly, or "due to connection timeout" (the server did not answer)
  'Client has encountered a connection error and is not queryable',
  'Client was closed and is not queryable'
]
// pg-pool's words when every connection of a full pool stayed busy past the connect timeout:
// tally's own load, not a broken server.
const POOL_EXHAUSTED = 'timeout exceeded when trying to connect'

/**
 * Classifies a PostgreSQL failure for the HTTP layer. STORAGE_UNAVAILABLE: the server cannot be
 * reached, is shutting down, is out of disk, memory or connections, or no longer lets tally in
 * (SQLSTATE classes 08, 53, 58, 57P01-57P03, and 28 and 3D000: a changed password, a dropped
 * database). DATABASE_BUSY: a lock or statement timeout (55P03, 57014), a full pool, or
 * a conflict (40001, 40P01) still there after the transaction's retries. Anything else (a
 * constraint, a bug) is not the database's trouble.
 */
export function pgTrouble (err: unknown): PgTrouble | undefined {
  if (err instanceof pg.DatabaseError) return sqlstateTrouble(err.code ?? '')
  if (!(err instanceof Error)) return undefined
  const { code } = err as Error & { code?: unknown }
  if (typeof code === 'string' && CONNECTION_CODES.has(code)) return 'STORAGE_UNAVAILABLE'
  // tally's own conflicts carry the SQLSTATE too (a dry run that saw the ledger change).
  if (code === '40001') return 'DATABASE_BUSY'
  if (CONNECTION_MESSAGES.some(m => err.message.startsWith(m))) return 'STORAGE_UNAVAILABLE'
  if (err.message === POOL_EXHAUSTED) return 'DATABASE_BUSY'
  return undefined
}

function sqlstateTrouble (code: string): PgTrouble | undefined {
  const cls = code.slice(0, 2)
  if (['08', '28', '53', '58'].includes(cls) || /^57P0[123]$/.test(code) || code === '3D000') return 'STORAGE_UNAVAILABLE'
  if (code === '55P03' || code === '57014' || code === '40001' || code === '40P01') return 'DATABASE_BUSY'
  return undefined
}
