import t from 'tap'
import { ConfigError, loadConfig } from '../src/config.js'
import { toErrorBody } from '../src/errors.js'
import { startServer } from './process.js'

// What needs no database: the configuration, and the error bodies errors become.

t.test('error codes: tally\'s own pass through, unknown framework ones are generic', async t => {
  const fastifyError = (code: string, statusCode: number) => Object.assign(new Error('m'), { code, statusCode, name: 'FastifyError' })
  t.equal(toErrorBody(fastifyError('FST_ERR_SOMETHING_NEW', 400)).code, 'BAD_REQUEST')
  t.equal(toErrorBody(fastifyError('INSUFFICIENT_POINTS', 400)).code, 'INSUFFICIENT_POINTS')
  t.equal(toErrorBody(fastifyError('FST_ERR_CTP_INVALID_CONTENT_LENGTH', 400)).code, 'INVALID_CONTENT_LENGTH')
  t.equal(toErrorBody(fastifyError('ANYTHING', 302)).code, 'INTERNAL_ERROR', 'a non-error status is a bug')
  t.strictSame(toErrorBody(Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY', name: 'SqliteError' }) as never),
    { statusCode: 503, error: 'Service Unavailable', message: 'The database is busy: another process held the write lock for 5 s; nothing was changed, retry', code: 'DATABASE_BUSY' })
  for (const code of ['SQLITE_FULL', 'SQLITE_IOERR_WRITE', 'SQLITE_IOERR', 'SQLITE_NOMEM', 'SQLITE_READONLY_DBMOVED', 'SQLITE_CORRUPT']) {
    t.equal(toErrorBody(Object.assign(new Error('x'), { code, name: 'SqliteError' }) as never).code, 'STORAGE_UNAVAILABLE', code)
  }
  t.equal(toErrorBody(Object.assign(new Error('x'), { code: 'SQLITE_CONSTRAINT_CHECK', name: 'SqliteError' }) as never).code, 'INTERNAL_ERROR', 'a broken CHECK is a bug')
})

t.test('configuration', async t => {
  t.strictSame(loadConfig({}), {
    port: 8000,
    host: '127.0.0.1',
    dbPath: 'data/app.db',
    logLevel: 'info',
    allowFlush: false,
    dailyCredits: { amount: 5, enabled: true },
    eventTimeUnit: 's',
    apiToken: undefined,
    dbSynchronous: 'normal',
    idempotencyTtlHours: 24,
    logPretty: false,
    databaseUrl: undefined,
    pgPoolSize: 10,
    pgIsolation: 'read_committed',
    drawOrder: 'timestamp',
    expirySweep: true
  }, 'defaults')
  t.strictSame(loadConfig({
    PORT: '0',
    HOST: '0.0.0.0',
    DB_PATH: '/tmp/x.db',
    LOG_LEVEL: 'silent',
    ALLOW_FLUSH: 'true',
    PATH: '/bin',
    DAILY_CREDITS_AMOUNT: '7',
    DAILY_CREDITS_ENABLED: 'false',
    EVENT_TIME_UNIT: 'ms',
    API_TOKEN: 'a-token-of-20-chars!',
    DB_SYNCHRONOUS: 'full',
    IDEMPOTENCY_TTL_HOURS: '48',
    LOG_PRETTY: 'true',
    DATABASE_URL: 'postgres://tally:s3cret@db.example:5433/tally?sslmode=require',
    PG_POOL_SIZE: '25',
    PG_ISOLATION: 'serializable',
    POINTS_DRAW_ORDER: 'expiry',
    EXPIRY_SWEEP_ENABLED: 'false'
  }), {
    port: 0,
    host: '0.0.0.0',
    dbPath: '/tmp/x.db',
    logLevel: 'silent',
    allowFlush: true,
    dailyCredits: { amount: 7, enabled: false },
    eventTimeUnit: 'ms',
    apiToken: 'a-token-of-20-chars!',
    dbSynchronous: 'full',
    idempotencyTtlHours: 48,
    logPretty: true,
    databaseUrl: 'postgres://tally:s3cret@db.example:5433/tally?sslmode=require',
    pgPoolSize: 25,
    pgIsolation: 'serializable',
    drawOrder: 'expiry',
    expirySweep: false
  })
  t.equal(loadConfig({ DATABASE_URL: 'postgresql:///tally' }).databaseUrl, 'postgresql:///tally', 'postgresql://, and no host: the local socket')
  t.equal(loadConfig({ DATABASE_URL: '' }).databaseUrl, undefined, 'empty: SQLite')
  t.equal(loadConfig({ PORT: '' }).port, 8000, 'an empty variable means the default')
  const bad: Array<[string, string, string]> = [
    ['PORT', 'abc', 'PORT must be an integer from 0 to 65535 (got "abc")'],
    ['PORT', '70000', 'PORT must be an integer from 0 to 65535 (got "70000")'],
    ['PORT', '80.5', 'PORT must be an integer from 0 to 65535 (got "80.5")'],
    ['LOG_LEVEL', 'loud', 'LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent (got "loud")'],
    ['ALLOW_FLUSH', 'yes', 'ALLOW_FLUSH must be true or false (got "yes")'],
    ['DAILY_CREDITS_AMOUNT', '0', 'DAILY_CREDITS_AMOUNT must be an integer from 1 to 1000000000 (got "0")'],
    ['EVENT_TIME_UNIT', 'h', 'EVENT_TIME_UNIT must be s or ms (got "h")'],
    // A secret is described, never echoed: a mistyped token ends up in logs.
    ['API_TOKEN', 'short', 'API_TOKEN must be unset, or a token of 16 to 1024 visible ASCII characters (got 5 characters; the value is not shown)'],
    ['API_TOKEN', 'sixteen chars or more but spaces', 'API_TOKEN must be unset, or a token of 16 to 1024 visible ASCII characters (got 32 characters, not all of them visible ASCII; the value is not shown)'],
    ['DB_SYNCHRONOUS', 'off', 'DB_SYNCHRONOUS must be normal or full (got "off")'],
    ['IDEMPOTENCY_TTL_HOURS', '0', 'IDEMPOTENCY_TTL_HOURS must be an integer from 1 to 8760 (got "0")'],
    // A database URL is shown with what may be its password masked: user info, password=.
    ['DATABASE_URL', 'mysql://tally:s3cret@db/tally', 'DATABASE_URL must be unset, or a postgres:// or postgresql:// URL (got "mysql://***@db/tally")'],
    ['DATABASE_URL', 'db.example/tally', 'DATABASE_URL must be unset, or a postgres:// or postgresql:// URL (got "db.example/tally")'],
    ['DATABASE_URL', 'postgres://tally:s3cret@db:99999/tally', 'DATABASE_URL must be unset, or a postgres:// or postgresql:// URL (got "postgres://***@db:99999/tally")'],
    ['DATABASE_URL', 'postgres://tally:s3#cret@w@db/tally', 'DATABASE_URL must be unset, or a postgres:// or postgresql:// URL (got "postgres://***@db/tally")'],
    ['DATABASE_URL', 'postgres://db:99999/tally?password=s3cret&x=y', 'DATABASE_URL must be unset, or a postgres:// or postgresql:// URL (got "postgres://db:99999/tally?password=***&x=y")'],
    ['DATABASE_URL', 'postgres://[db/tally', 'DATABASE_URL must be unset, or a postgres:// or postgresql:// URL (got "postgres://[db/tally")'],
    ['PG_POOL_SIZE', '0', 'PG_POOL_SIZE must be an integer from 1 to 1000 (got "0")'],
    ['PG_POOL_SIZE', '1001', 'PG_POOL_SIZE must be an integer from 1 to 1000 (got "1001")'],
    ['PG_POOL_SIZE', 'ten', 'PG_POOL_SIZE must be an integer from 1 to 1000 (got "ten")'],
    ['PG_ISOLATION', 'repeatable_read', 'PG_ISOLATION must be read_committed or serializable (got "repeatable_read")']
  ]
  for (const [name, value, message] of bad) {
    t.throws(() => loadConfig({ [name]: value }), new ConfigError(message), `${name}=${value}`)
  }
})

t.test('a bad API_TOKEN stops start-up without the value in the error', async t => {
  const mistyped = 'correct horse battery staple'
  const server = startServer({ API_TOKEN: mistyped })
  const { code, stderr, stdout } = await server.exited
  t.equal(code, 1)
  t.equal(stderr, 'tally: invalid configuration: API_TOKEN must be unset, or a token of 16 to 1024 visible ASCII characters ' +
    '(got 28 characters, not all of them visible ASCII; the value is not shown)\n')
  t.notMatch(stderr + stdout, /horse/, 'no part of the secret is printed')
})
