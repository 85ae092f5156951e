import pg from 'pg'

const INT8 = 20
const INT8_ARRAY = 1016

/** A BIGINT as a JS number; one past 2^53 − 1 (either sign) would come back rounded, so it throws. */
export function parseBigint (text: string): number {
  const value = Number(text)
  if (!Number.isSafeInteger(value)) {
    throw new RangeError(`PostgreSQL returned the BIGINT ${text}, past what a JS number holds exactly (±9007199254740991)`)
  }
  return value
}

type Nested = string | null | Nested[]
const mapNested = (value: Nested, parse: (text: string) => number): unknown =>
  Array.isArray(value) ? value.map(v => mapNested(v, parse)) : value === null ? null : parse(value)

// pg's own array parser, which leaves the elements as strings.
const parseTextArray = pg.types.getTypeParser(INT8_ARRAY as never, 'text') as (text: string) => Nested
const parseBigintArray = (text: string): unknown => mapNested(parseTextArray(text), parseBigint)

// This pool's own parsers, not pg.types': setting those would change every other pg user in the
// process. int4 is a number already and numeric (sum() of BIGINTs) stays a string, as pg has it.
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => {
    if (oid === INT8 && format !== 'binary') return parseBigint
    if (oid === INT8_ARRAY && format !== 'binary') return parseBigintArray
    return pg.types.getTypeParser(oid, format as 'text')
  }) as pg.CustomTypesConfig['getTypeParser']
}

export interface PoolOptions {
  url: string
  size: number
  /** How long a checkout waits for a connection (new, or free in a full pool) before failing. */
  connectTimeoutMs?: number
}

/** A pg Pool on `url` of at most `size` connections, whose BIGINTs come back as numbers. */
export function createPool ({ url, size, connectTimeoutMs = 10_000 }: PoolOptions): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max: size,
    connectionTimeoutMillis: connectTimeoutMs,
    keepAlive: true,
    types
  })
  // An idle connection that breaks (the server restarts, a proxy drops it) is reported here; the
  // pool has already dropped it and the next checkout connects anew. Unheard, the 'error' event
  // would end the process.
  pool.on('error', () => {})
  return pool
}

/**
 * The server cannot be reached at start. The message is one line naming where tally looked and
 * why it failed, never the password.
 */
export class DatabaseUnreachable extends Error {
  override name = 'DatabaseUnreachable'
  constructor (url: string, err: unknown) {
    // pg's own reading of the URL (and of PGHOST, PGPORT ... for what it leaves out).
    const { host, port, database, password } = new pg.Client({ connectionString: url }) as unknown as
      { host: string, port: number, database: string, password: string | null }
    let cause = causeOf(err).replace(/\s*\n\s*/g, ' ')
    if (typeof password === 'string' && password !== '') cause = cause.replaceAll(password, '***')
    super(`cannot reach PostgreSQL at ${host}:${port}/${database}: ${cause}`, { cause: err })
  }
}

/** What went wrong, in words: an AggregateError (every address of a host refused) has none of its own. */
function causeOf (err: unknown): string {
  const { message, code, errors } = err as { message?: string, code?: string, errors?: unknown[] }
  if (message !== undefined && message !== '') return message
  if (Array.isArray(errors) && errors.length > 0) return errors.map(causeOf).join('; ')
  return code ?? String(err)
}

/** One round trip, at start: throws a DatabaseUnreachable if the server cannot be reached. */
export async function connectOrExplain (pool: pg.Pool, url: string): Promise<void> {
  try {
    await pool.query('SELECT 1')
  } catch (err) {
    throw new DatabaseUnreachable(url, err)
  }
}
