import { readdirSync, readFileSync } from 'node:fs'
import t from 'tap'

// Every file of test/contract/ runs on PostgreSQL too, through its wrapper here in contract/; a
// contract file added without one would quietly run on SQLite alone.

const contract = new URL('../contract/', import.meta.url)
const wrappers = new URL('./contract/', import.meta.url)
const testFiles = (dir: URL) => readdirSync(dir).filter(name => name.endsWith('.test.ts')).sort()

t.test('each contract test file has its PostgreSQL wrapper, and each wrapper a contract file', async t => {
  const files = testFiles(contract)
  t.ok(files.length >= 15, `${files.length} contract files`)
  t.strictSame(testFiles(wrappers), files)
})

t.test('each wrapper chooses PostgreSQL, then loads its own contract file', async t => {
  for (const name of testFiles(wrappers)) {
    const code = readFileSync(new URL(name, wrappers), 'utf8').split('\n').filter(line => line !== '' && !line.startsWith('//'))
    t.strictSame(code, [
      "process.env.TALLY_TEST_ENGINE = 'postgres'",
      `await import('../../contract/${name.replace(/\.ts$/, '.js')}')`
    ], name)
  }
})

t.test('contract files reach the database only through the helpers and the API, never a SQLite handle', async t => {
  for (const name of testFiles(contract)) {
    const text = readFileSync(new URL(name, contract), 'utf8')
    t.notMatch(text, /\bapp\.(db|writes)\b|better-sqlite3|storage\/sqlite\/|\bDB_PATH\b|\bdbPath\b/, `${name}: engine-neutral`)
  }
})
