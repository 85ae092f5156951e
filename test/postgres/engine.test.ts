import t from 'tap'
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { DatabaseUnreachable } from '../../src/storage/postgres/pool.js'
import { freshPostgres } from '../postgres.js'

// The PostgreSQL engine's plugin: how it starts, and its SERIALIZABLE mode.

t.test('an unreachable server fails the start with one line naming it, and leaves nothing open', async t => {
  const config = loadConfig({ DATABASE_URL: 'postgres://postgres@127.0.0.1:1/tally', DAILY_CREDITS_ENABLED: 'false' })
  const app = buildApp(config, { logger: false })
  const err = await app.ready().then(() => undefined, (err: unknown) => err)
  t.ok(err instanceof DatabaseUnreachable, 'a DatabaseUnreachable')
  t.match((err as Error).message, /^cannot reach PostgreSQL at 127\.0\.0\.1:1\/tally: .*ECONNREFUSED/)
  t.notMatch((err as Error).message, /\n/, 'one line')
  await app.close()
})

t.test('with PG_ISOLATION=serializable every write and read still answers as in read_committed', async t => {
  const { url, poolSize } = await freshPostgres(t)
  const config = loadConfig({ DATABASE_URL: url, PG_POOL_SIZE: String(poolSize), PG_ISOLATION: 'serializable', DAILY_CREDITS_ENABLED: 'false' })
  const app = buildApp(config, { logger: false })
  t.teardown(() => app.close())
  await app.ready()
  const add = await app.inject({ method: 'POST', url: '/add', payload: { payer: 'DANNON', points: 300, timestamp: '2022-10-31T10:00:00Z' } })
  t.equal(add.statusCode, 200)
  const spend = await app.inject({ method: 'POST', url: '/spend?dry_run=true', payload: { points: 100 } })
  t.same(spend.json(), [{ payer: 'DANNON', points: -100 }])
  t.same((await app.inject({ method: 'GET', url: '/balance' })).json(), { DANNON: 300 }, 'the dry run changed nothing')
})
