import { Type, type Static, type TSchema } from 'typebox'
import { Value } from 'typebox/value'
import type { DrawOrder } from './points/ledger.js'
import type { Isolation } from './storage/postgres/transaction.js'

// The environment tally reads, one entry a variable. `description` doubles as the text of the
// error that names a bad value, so each says what the variable accepts.
export const EnvSchema = Type.Object({
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 8000, description: 'an integer from 0 to 65535' }),
  HOST: Type.String({ minLength: 1, default: '127.0.0.1', description: 'a host name or IP address to listen on' }),
  DB_PATH: Type.String({ minLength: 1, default: 'data/app.db', description: 'a path to the SQLite database file' }),
  LOG_LEVEL: Type.Enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
    { default: 'info', description: 'one of fatal, error, warn, info, debug, trace, silent' }),
  ALLOW_FLUSH: Type.Boolean({ default: false, description: 'true or false' }),
  DAILY_CREDITS_AMOUNT: Type.Integer({ minimum: 1, maximum: 1_000_000_000, default: 5, description: 'an integer from 1 to 1000000000' }),
  DAILY_CREDITS_ENABLED: Type.Boolean({ default: true, description: 'true or false' }),
  EVENT_TIME_UNIT: Type.Enum(['s', 'ms'], { default: 's', description: 's or ms' }),
  API_TOKEN: Type.Optional(Type.String({ minLength: 16, maxLength: 1024, pattern: '^[\\x21-\\x7e]+$', description: 'unset, or a token of 16 to 1024 visible ASCII characters' })),
  DB_SYNCHRONOUS: Type.Enum(['normal', 'full'], { default: 'normal', description: 'normal or full' }),
  IDEMPOTENCY_TTL_HOURS: Type.Integer({ minimum: 1, maximum: 8760, default: 24, description: 'an integer from 1 to 8760' }),
  LOG_PRETTY: Type.Boolean({ default: false, description: 'true or false' }),
  DATABASE_URL: Type.Optional(Type.String({ pattern: '^postgres(ql)?://', description: 'unset, or a postgres:// or postgresql:// URL' })),
  PG_POOL_SIZE: Type.Integer({ minimum: 1, maximum: 1000, default: 10, description: 'an integer from 1 to 1000' }),
  PG_ISOLATION: Type.Enum(['read_committed', 'serializable'], { default: 'read_committed', description: 'read_committed or serializable' }),
  POINTS_DRAW_ORDER: Type.Enum(['timestamp', 'expiry'], { default: 'timestamp', description: 'timestamp or expiry' }),
  EXPIRY_SWEEP_ENABLED: Type.Boolean({ default: true, description: 'true or false' })
})

export type Env = Static<typeof EnvSchema>

export interface Config {
  port: number
  host: string
  dbPath: string
  logLevel: string
  allowFlush: boolean
  dailyCredits: { amount: number, enabled: boolean }
  /** The unit of an event's time, and so of the alert windows. */
  eventTimeUnit: 's' | 'ms'
  /** When set, every route but /health and the docs needs `Authorization: Bearer <token>`. */
  apiToken: string | undefined
  dbSynchronous: 'normal' | 'full'
  idempotencyTtlHours: number
  /** Human-readable logs through pino-pretty (a dev dependency) instead of JSON lines. */
  logPretty: boolean
  /** When set, tally runs on this PostgreSQL database instead of the SQLite file at dbPath. */
  databaseUrl: string | undefined
  pgPoolSize: number
  pgIsolation: Isolation
  /** Which lots spends and holds draw first: oldest timestamp, or soonest expiry. */
  drawOrder: DrawOrder
  /** The minute sweep that writes expirations and expires holds (request time settles anyway). */
  expirySweep: boolean
}

export class ConfigError extends Error {
  override name = 'ConfigError'
}

// Variables whose value must never reach a log: a mistyped secret is still mostly the secret.
const secrets = new Set(['API_TOKEN'])

/**
 * A database URL with whatever may be its password masked: everything between the scheme and the
 * last @ (user and password, even unencoded ones the URL parser would stumble on), and any
 * password= parameter.
 */
export function maskedUrl (raw: string): string {
  return raw.replace(/^([a-z][a-z\d+.-]*:(?:\/\/)?)?.*@/is, '$1***@').replace(/(password=)[^&#]*/gi, '$1***')
}

/** What the error shows of a bad value: the value itself, or for a secret only its shape. */
function shown (name: string, raw: string): string {
  if (name === 'DATABASE_URL') return JSON.stringify(maskedUrl(raw))
  if (!secrets.has(name)) return JSON.stringify(raw)
  const visible = /^[\x21-\x7e]*$/.test(raw) ? '' : ', not all of them visible ASCII'
  return `${[...raw].length} characters${visible}; the value is not shown`
}

function parseVariable (name: string, schema: TSchema, raw: string | undefined): unknown {
  if (raw === undefined || raw === '') return (schema as { default?: unknown }).default
  // Environment variables are strings; booleans and integers are spelled exactly, so
  // "1.5", "yes" or " 8000" are refused rather than guessed at.
  let value: unknown = raw
  if ('type' in schema && schema.type === 'integer') {
    value = /^-?\d+$/.test(raw) ? Number(raw) : raw
  } else if ('type' in schema && schema.type === 'boolean') {
    value = raw === 'true' ? true : raw === 'false' ? false : raw
  }
  // A URL must also be one that can be read as such, as pg will.
  if (!Value.Check(schema, value) || (name === 'DATABASE_URL' && !URL.canParse(raw))) {
    const { description } = schema as { description: string }
    throw new ConfigError(`${name} must be ${description} (got ${shown(name, raw)})`)
  }
  return value
}

/** Reads and validates tally's configuration; throws a ConfigError naming the first bad variable. */
export function loadConfig (env: Record<string, string | undefined>): Config {
  const parsed: Record<string, unknown> = {}
  for (const [name, schema] of Object.entries(EnvSchema.properties)) {
    parsed[name] = parseVariable(name, schema, env[name])
  }
  const valid = parsed as Env
  return {
    port: valid.PORT,
    host: valid.HOST,
    dbPath: valid.DB_PATH,
    logLevel: valid.LOG_LEVEL,
    allowFlush: valid.ALLOW_FLUSH,
    dailyCredits: { amount: valid.DAILY_CREDITS_AMOUNT, enabled: valid.DAILY_CREDITS_ENABLED },
    eventTimeUnit: valid.EVENT_TIME_UNIT,
    apiToken: valid.API_TOKEN,
    dbSynchronous: valid.DB_SYNCHRONOUS,
    idempotencyTtlHours: valid.IDEMPOTENCY_TTL_HOURS,
    logPretty: valid.LOG_PRETTY,
    databaseUrl: valid.DATABASE_URL,
    pgPoolSize: valid.PG_POOL_SIZE,
    pgIsolation: valid.PG_ISOLATION,
    drawOrder: valid.POINTS_DRAW_ORDER,
    expirySweep: valid.EXPIRY_SWEEP_ENABLED
  }
}
