import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { migratePostgres } from '../../src/storage/postgres/migrate.js'
import { createPool } from '../../src/storage/postgres/pool.js'
import { freshPostgres, usingPGlite } from '../postgres.js'
import { tempDir } from '../helper.js'

async function freshPool (t: Test, url?: string) {
  const fresh = await freshPostgres(t)
  const pool = createPool({ url: url ?? fresh.url, size: fresh.poolSize })
  t.teardown(() => pool.end())
  return { pool, url: fresh.url }
}

const tablesIn = async (pool: Awaited<ReturnType<typeof freshPool>>['pool']) =>
  (await pool.query("SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY 1"))
    .rows.map(r => r.table_name)

t.test('migrates an empty schema once; a second run applies nothing', async t => {
  const { pool } = await freshPool(t)
  t.strictSame(await migratePostgres(pool), { applied: ['1.do.schema', '2.do.point-life'], version: 2 })
  t.ok((await tablesIn(pool)).includes('schemaversion'), 'its record is in the schema it migrated')
  t.ok((await tablesIn(pool)).includes('point_lots'))
  t.strictSame(await migratePostgres(pool), { applied: [], version: 2 })
  t.strictSame((await pool.query('SELECT version, name FROM schemaversion ORDER BY version')).rows, [
    { version: 0, name: null },
    { version: 1, name: 'schema' },
    { version: 2, name: 'point-life' }
  ])
})

t.test('two processes starting at once on an empty schema: one migrates, the other finds it done', async t => {
  const { url } = await freshPool(t)
  const pools = [createPool({ url, size: 1 }), createPool({ url, size: 1 })]
  t.teardown(() => Promise.all(pools.map(p => p.end())))
  const results = await Promise.all(pools.map(p => migratePostgres(p)))
  t.strictSame(results.map(r => r.version), [2, 2])
  t.strictSame(results.map(r => r.applied).sort(), [[], ['1.do.schema', '2.do.point-life']])
})

t.test('another schema of the database with its own schemaversion does not count', async t => {
  const { pool } = await freshPool(t)
  // A decoy as another deployment in the same database would have, further along.
  await pool.query('CREATE SCHEMA tally_decoy; CREATE TABLE tally_decoy.schemaversion (version BIGINT PRIMARY KEY, name TEXT, md5 TEXT, run_at TIMESTAMPTZ); INSERT INTO tally_decoy.schemaversion VALUES (5, \'x\', \'y\', now())')
  t.teardown(() => pool.query('DROP SCHEMA tally_decoy CASCADE'))
  t.strictSame(await migratePostgres(pool), { applied: ['1.do.schema', '2.do.point-life'], version: 2 })
  t.strictSame((await pool.query('SELECT max(version)::bigint AS v FROM tally_decoy.schemaversion')).rows, [{ v: 5 }], 'left alone')
})

t.test('a failing migration leaves the schema as it was; the pool stays usable', async t => {
  const { pool } = await freshPool(t)
  const dir = join(tempDir(t), 'migrations')
  mkdirSync(dir)
  writeFileSync(join(dir, '001.do.one.sql'), 'CREATE TABLE one (x int);')
  writeFileSync(join(dir, '002.do.two.sql'), 'CREATE TABLE two (x int); SELECT 1 / 0;')
  await t.rejects(migratePostgres(pool, dir), { code: '22012', appliedMigrations: [{ version: 1 }] })
  t.strictSame(await tablesIn(pool), [], 'not even its record')
  writeFileSync(join(dir, '002.do.two.sql'), 'CREATE TABLE two (x int);')
  t.strictSame(await migratePostgres(pool, dir), { applied: ['1.do.one', '2.do.two'], version: 2 })
})

t.test('a search_path naming no schema that exists is refused, not migrated into public', async t => {
  const { pool } = await freshPool(t)
  await pool.query('SET search_path TO tally_nowhere')
  await t.rejects(migratePostgres(pool), new Error('cannot migrate: no schema of the search_path exists'))
  t.equal(pool.totalCount, 0, 'that connection (with its odd search_path) was closed, not returned')
})

t.test('a connection that breaks while migrating fails the run, not the process', async t => {
  const { pool } = await freshPool(t)
  pool.once('acquire', client => { client.connection.stream.destroy() })
  await t.rejects(migratePostgres(pool), /Connection terminated|not queryable/)
  t.strictSame(await migratePostgres(pool), { applied: ['1.do.schema', '2.do.point-life'], version: 2 }, 'the next run migrates')
})

t.test('a role that owns its schema and nothing else can migrate it', { skip: usingPGlite && 'PGlite has one user' }, async t => {
  const { pool, url } = await freshPool(t)
  const schema = (await pool.query('SELECT current_schema() AS s')).rows[0].s
  const role = `tally_r_${process.pid}`
  await pool.query(`CREATE ROLE ${role} LOGIN; ALTER SCHEMA ${schema} OWNER TO ${role}; REVOKE CREATE ON DATABASE ${(await pool.query('SELECT current_database() AS d')).rows[0].d} FROM PUBLIC`)
  t.teardown(() => pool.query(`ALTER SCHEMA ${schema} OWNER TO current_user; DROP OWNED BY ${role}; DROP ROLE ${role}`))
  const asRole = new URL(url)
  asRole.username = role
  const owner = createPool({ url: asRole.href, size: 1 })
  t.teardown(() => owner.end())
  t.strictSame(await migratePostgres(owner), { applied: ['1.do.schema', '2.do.point-life'], version: 2 })
})
