import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { openDatabase } from '../../src/storage/sqlite/open.js'
import { tempDir } from '../helper.js'
import { runCommand, startServer } from '../process.js'

t.test('npm run db:backup takes a consistent copy while the service writes: it passes db:check and holds every write acknowledged before it began', async t => {
  const dir = tempDir(t)
  const dbPath = join(dir, 'app.db')
  const server = startServer({ DB_PATH: dbPath, DAILY_CREDITS_ENABLED: 'false' })
  t.teardown(() => server.kill('SIGKILL'))
  const url = await server.listening
  // Four clients adding without pause; each add's points are its own number, so a row names its write.
  const acknowledged: number[] = []
  let next = 1
  const load = { writing: true }
  const client = async (): Promise<void> => {
    while (load.writing) {
      const points = next++
      const res = await fetch(`${url}/add`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ payer: `P${points % 7}`, points, timestamp: '2022-01-01T00:00:00Z' })
      })
      if (res.status === 200) acknowledged.push(points)
      await res.arrayBuffer()
    }
  }
  const clients = [client(), client(), client(), client()]
  await new Promise(resolve => setTimeout(resolve, 300))

  const before = [...acknowledged]
  const file = join(dir, 'backup.db')
  const backup = await runCommand('db-backup', { DB_PATH: dbPath }, [file])
  const during = acknowledged.length - before.length
  await new Promise(resolve => setTimeout(resolve, 100))
  load.writing = false
  await Promise.all(clients)
  server.kill('SIGTERM')
  t.equal((await server.exited).code, 0)

  t.equal(backup.code, 0, backup.stderr)
  t.match(backup.stdout, new RegExp(`^${dbPath} backed up to ${file} \\(\\d+ pages\\)\\n$`))
  t.ok(before.length > 0 && during > 0, `the service wrote before (${before.length}) and while (${during}) the backup ran`)
  t.notOk(existsSync(`${file}.partial`), 'no partial file is left')

  const check = await runCommand('db-check', { DB_PATH: file })
  t.equal(check.code, 0, check.stderr)
  t.equal(check.stdout, `${file}: every invariant holds\n`)
  const db = openDatabase(file)
  t.teardown(() => db.close())
  const stored = new Set(db.prepare('SELECT points FROM point_transactions').pluck().all() as number[])
  t.strictSame(before.filter(points => !stored.has(points)), [], 'every write acknowledged before the backup began is in it')
  t.ok(stored.size < acknowledged.length, 'and the writes acknowledged after it are not: it is one moment\'s copy')
})

t.test('db:backup never overwrites a file, and says how it is called', async t => {
  const dir = tempDir(t)
  const dbPath = join(dir, 'app.db')
  openDatabase(dbPath).close()
  const file = join(dir, 'precious.db')
  writeFileSync(file, 'keep me')
  const existing = await runCommand('db-backup', { DB_PATH: dbPath }, [file])
  t.equal(existing.code, 1)
  t.equal(existing.stderr, `tally: Error: ${file} already exists: a backup never overwrites a file; name a new one or remove it first\n`)
  t.equal(readFileSync(file, 'utf8'), 'keep me', 'the file is untouched')

  const bare = await runCommand('db-backup', { DB_PATH: dbPath })
  t.equal(bare.code, 1)
  t.equal(bare.stderr, 'tally: Error: usage: npm run db:backup -- FILE (a file that does not exist yet)\n')
})

t.test('db:backup of a DB_PATH that does not exist, or into a folder that does not, fails and leaves nothing', async t => {
  const dir = tempDir(t)
  const missing = await runCommand('db-backup', { DB_PATH: join(dir, 'nope.db') }, [join(dir, 'copy.db')])
  t.equal(missing.code, 1)
  t.equal(missing.stderr, `tally: Error: ${join(dir, 'nope.db')} does not exist\n`)
  t.notOk(existsSync(join(dir, 'nope.db')), 'no empty database was created')

  const dbPath = join(dir, 'app.db')
  openDatabase(dbPath).close()
  const noFolder = await runCommand('db-backup', { DB_PATH: dbPath }, [join(dir, 'no-such-folder', 'copy.db')])
  t.equal(noFolder.code, 1)
  t.match(noFolder.stderr, /^tally: TypeError: Cannot save backup because the directory does not exist\n$/)
  t.notOk(existsSync(join(dir, 'copy.db')))
})
