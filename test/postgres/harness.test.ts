import pg from 'pg'
import t, { type Test } from 'tap'
import { freshPostgres, usingPGlite } from '../postgres.js'

// The harness itself: each test's schema is its own, empty, and the one its URL reaches.

async function connect (t: Test, url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  t.teardown(() => client.end())
  return client
}

const tablesOf = async (client: pg.Client, schema: string) =>
  (await client.query('SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name', [schema])).rows.map(r => r.table_name)

let earlier: string | undefined

t.test('a fresh schema is empty, and the URL puts what it creates there', async t => {
  const { url, poolSize } = await freshPostgres(t)
  t.equal(poolSize, usingPGlite ? 1 : 4)
  const client = await connect(t, url)
  const schema = (await client.query('SELECT current_schema() AS s')).rows[0].s
  t.match(schema, /^tally_s\d+$/)
  t.strictSame(await tablesOf(client, schema), [], 'nothing in it yet')
  await client.query('CREATE TABLE made_here (x int)')
  await client.query('INSERT INTO made_here VALUES (1)')
  t.strictSame(await tablesOf(client, schema), ['made_here'])
  t.strictSame(await tablesOf(client, 'public'), [], 'not in public')
  earlier = schema
})

t.test('the next test gets another schema, and the last one is gone', async t => {
  const { url } = await freshPostgres(t)
  const client = await connect(t, url)
  const schema = (await client.query('SELECT current_schema() AS s')).rows[0].s
  t.not(schema, earlier)
  t.strictSame((await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [earlier])).rows, [], 'dropped at the end of its test')
  t.strictSame((await client.query("SELECT to_regclass('made_here') AS r")).rows, [{ r: null }])
})

t.test('two schemas at once, as a test comparing two apps holds them: each URL reaches its own', async t => {
  const [a, b] = await Promise.all([freshPostgres(t), freshPostgres(t)])
  const first = await connect(t, a.url)
  const second = await connect(t, b.url)
  await first.query('CREATE TABLE mine (x int)')
  await first.query('INSERT INTO mine VALUES (1)')
  await second.query('CREATE TABLE mine (x int)')
  t.strictSame((await first.query('SELECT x FROM mine')).rows, [{ x: 1 }])
  t.strictSame((await second.query('SELECT x FROM mine')).rows, [], 'the other schema\'s table, empty')
  t.not((await first.query('SELECT current_schema() AS s')).rows[0].s, (await second.query('SELECT current_schema() AS s')).rows[0].s)
})

t.test('with a server, the file has a database of its own', { skip: usingPGlite && 'PGlite has one database' }, async t => {
  const { url } = await freshPostgres(t)
  const client = await connect(t, url)
  t.match((await client.query('SELECT current_database() AS d')).rows[0].d, new RegExp(`^tally_t_${process.pid}_[0-9a-f]{8}$`))
})

t.test('with a server, the database sorts text by a locale, not bytewise', { skip: usingPGlite && 'PGlite has one database' }, async t => {
  const { url } = await freshPostgres(t)
  const client = await connect(t, url)
  const sorted = (await client.query("SELECT x FROM (VALUES ('b'), ('B'), ('a')) AS v (x) ORDER BY x")).rows.map(r => r.x)
  t.strictSame(sorted, ['a', 'b', 'B'], 'so that a query relying on bytewise order fails here')
})
