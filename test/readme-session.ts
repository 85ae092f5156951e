import { execFile, spawn } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { STATUS_CODES } from 'node:http'
import { join } from 'node:path'
import { promisify } from 'node:util'
import Database from 'better-sqlite3'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { engine as engineUnderTest, freshDatabase, tempDir } from './helper.js'

// README.md is one session. A fresh `npm start` on an empty data/app.db, then every `$ ` command
// of every fenced block, in the order they appear, with state carrying over from one example to
// the next. This replays that session: test/contract/readme.test.ts compares what it prints with
// what the README shows, on SQLite and (test/postgres/contract/readme.test.ts) on PostgreSQL;
// test/integration/sqlite3-cli.ts does the same with the real sqlite3 CLI, and
// `TALLY_README_WRITE=1 npx tap --disable-coverage test/contract/readme.test.ts` writes the
// outputs in (test/postgres/contract/readme.test.ts those of the psql examples).
//
// On PostgreSQL the same session runs on a fresh PostgreSQL database: every `npm start` and
// `npm run` is on it. A step that reads or writes one engine's own database runs only on that
// engine: `sqlite3` and `npm run db:backup` (the SQLite file), `psql` and any command that sets
// DATABASE_URL (PostgreSQL, whose URL is then the session's).

export const readmeUrl = new URL('../README.md', import.meta.url)

export interface Step {
  /** The command, continuation lines joined, without its `$ `. */
  command: string
  /** The lines the README shows after it. */
  expected: string
  /** Where those lines are in README.md (0-based line index) and how many there are. */
  line: number
  lines: number
}

export interface Outcome {
  step: Step
  actual: string
  /** psql -At prints no header: the columns (0-based) holding times tally stamps, to mask. */
  stampColumns?: number[]
}

/** Every `$ ` command in a fenced block, with the output lines shown up to the next one. */
export function readmeSteps (readme: string): Step[] {
  const lines = readme.split('\n')
  const steps: Step[] = []
  let fenced = false
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!
    if (line.startsWith('```')) {
      fenced = !fenced
      continue
    }
    if (!fenced || !line.startsWith('$ ')) continue
    let command = line.slice(2)
    while (command.endsWith('\\')) command = command.slice(0, -1) + lines[++i]!.trim()
    const start = i + 1
    const ends = (next: string) => next.startsWith('$ ') || next === '' || next.startsWith('```')
    while (i + 1 < lines.length && !ends(lines[i + 1]!)) i++
    steps.push({ command, expected: lines.slice(start, i + 1).join('\n'), line: start, lines: i + 1 - start })
  }
  return steps
}

/**
 * A command's words as a POSIX shell splits them, up to a `#` comment: single quotes, and double
 * quotes around one word (`"$DATABASE_URL"`, kept unexpanded).
 */
function words (command: string): string[] {
  const result: string[] = []
  for (const [, single, double, bare] of command.matchAll(/'([^']*)'|"([^"]*)"|(\S+)/g)) {
    if (bare?.startsWith('#')) break
    result.push(single ?? double ?? bare!)
  }
  return result
}

type Engine = 'sqlite' | 'postgres'

/** The engine a step runs on when it is about one engine's own database; undefined: both. */
function onlyOn (program: string | undefined, args: string[], env: Record<string, string>): Engine | undefined {
  if (program === 'sqlite3' || (program === 'npm' && args[0] === 'run' && args[1] === 'db:backup')) return 'sqlite'
  if (program === 'psql' || env.DATABASE_URL !== undefined) return 'postgres'
  return undefined
}

// The times tally stamps differ from run to run; everything else must be as shown.
const stampColumn = /(_at|^last_change)$/
export function mask (text: string, stampColumns: number[] = []): string {
  const lines = text.replace(/"(\w+_at)":"[^"]+"/g, '"$1":"…"')
    .replace(/^daily credits for \d{4}-\d{2}-\d{2}:/gm, 'daily credits for …:')
    // The session's DB_PATH is absolute, in a temp folder; the README's is data/app.db.
    .replace(/^\S*\/data\/app\.db backed up/gm, 'data/app.db backed up')
    .split('\n').map(line => line.trimEnd())
    // psql -At: columns joined by |, the stamps among them named by the replay.
    .map(line => stampColumns.length === 0 ? line : line.split('|').map((cell, c) => stampColumns.includes(c) && cell !== '' ? '…' : cell).join('|'))
  // sqlite3 -header -column: a header line, then dashes marking each column's width.
  if (lines.length >= 2 && /^-+( +-+)*$/.test(lines[1]!)) {
    const columns = [...lines[1]!.matchAll(/-+/g)].map(m => ({ start: m.index, width: m[0].length }))
    const stamps = columns.filter(c => stampColumn.test(lines[0]!.slice(c.start, c.start + c.width).trim()))
    for (let i = 2; i < lines.length; i++) {
      for (const c of stamps) {
        const cell = lines[i]!.slice(c.start, c.start + c.width)
        if (cell.trim() !== '') lines[i] = lines[i]!.slice(0, c.start) + '…'.padEnd(c.width) + lines[i]!.slice(c.start + c.width)
      }
      lines[i] = lines[i]!.trimEnd()
    }
  }
  return lines.join('\n')
}

/** What `sqlite3 -header -column` prints: every column padded to its widest value, two spaces apart. */
function columnTable (names: string[], rows: unknown[][]): string {
  if (rows.length === 0) return ''
  const text = (value: unknown) => value === null ? '' : String(value)
  const widths = names.map((name, c) => Math.max([...name].length, ...rows.map(row => [...text(row[c])].length)))
  const line = (cells: string[]) => cells.map((cell, c) => cell + ' '.repeat(widths[c]! - [...cell].length)).join('  ').trimEnd()
  return [line(names), line(widths.map(w => '-'.repeat(w))), ...rows.map(row => line(row.map(text)))].join('\n')
}

interface Teardown { teardown: (fn: () => unknown) => void }

export interface SessionOptions {
  /** `cli`: run the real sqlite3; `model`: better-sqlite3, printed the way sqlite3 prints. */
  sqlite3: 'cli' | 'model'
  /** The engine the session runs on; the engine under test (test/helper.ts) unless given. */
  engine?: Engine
}

/**
 * Replays README.md's session on a fresh database and answers what each command printed; the
 * steps of the other engine only are left out.
 */
export async function replayReadme (t: Teardown, options: SessionOptions, readme = readFileSync(readmeUrl, 'utf8')): Promise<Outcome[]> {
  const engine = options.engine ?? engineUnderTest
  const dir = tempDir(t)
  mkdirSync(join(dir, 'data'))
  const dbPath = join(dir, 'data', 'app.db')
  // Every instance and command of the session is on this database, whatever the step says.
  const database = engine === 'sqlite' ? { DB_PATH: dbPath } : await freshDatabase(t)
  // The instances of `npm start` running, by port.
  const servers = new Map<string, FastifyInstance>()
  t.teardown(async () => { for (const app of servers.values()) await app.close() })
  const start = async (env: Record<string, string>) => {
    const { PORT: port = '8000', ...rest } = env
    await servers.get(port)?.close()
    servers.delete(port)
    // A second instance at the same time runs here without the midnight job: croner's job names
    // are per process. A real second process's start-up catch-up finds today's grant done and
    // grants nothing, so this changes no output.
    const alongside = servers.size > 0 ? { DAILY_CREDITS_ENABLED: 'false' } : {}
    const app = buildApp(loadConfig({ ...rest, ...alongside, ...database }), { logger: false })
    servers.set(port, app)
    await app.ready()
  }
  await start({})

  /** Runs one step and answers what it printed; undefined when it is the other engine's. */
  const run = async (step: Step): Promise<Outcome | undefined> => {
    const all = words(step.command)
    const env: Record<string, string> = {}
    while (/^[A-Z_]+=/.test(all[0] ?? '')) {
      const [name, ...value] = all.shift()!.split('=')
      env[name!] = value.join('=')
    }
    if (all.at(-1) === '&') all.pop()
    const [program, ...args] = all
    const only = onlyOn(program, args, env)
    if (only !== undefined && only !== engine) return undefined
    const printed = (actual: string): Outcome => ({ step, actual })
    if (program === 'curl') return printed(await curl(servers, args))
    if (program === 'npm' && args.length === 1 && args[0] === 'start') {
      await start(env)
      return printed('')
    }
    if (program === 'npm' && args[0] === 'run') return printed(await npmRun(args.slice(1), { ...env, ...database }, dir))
    if (program === 'sqlite3') return printed(await sqlite3(args, dbPath, options.sqlite3))
    if (program === 'psql') return { step, ...await psql(args, servers) }
    throw new Error(`README: no way to replay \`${step.command}\`; teach test/readme-session.ts`)
  }

  const outcomes: Outcome[] = []
  for (const step of readmeSteps(readme)) {
    const outcome = await run(step)
    if (outcome !== undefined) outcomes.push(outcome)
  }
  if (process.env.TALLY_README_WRITE === '1') writeFileSync(readmeUrl, withOutputs(readme, outcomes))
  return outcomes
}

/** README.md with each command's output replaced by what the session printed. */
function withOutputs (readme: string, outcomes: Outcome[]): string {
  const lines = readme.split('\n')
  for (const { step, actual } of [...outcomes].reverse()) {
    lines.splice(step.line, step.lines, ...(actual === '' ? [] : actual.split('\n').map(line => line.trimEnd())))
  }
  return lines.join('\n')
}

async function curl (servers: Map<string, FastifyInstance>, args: string[]): Promise<string> {
  let method = 'GET'
  let url = ''
  let port = ''
  let body: string | undefined
  let withStatus = false
  const headers: Record<string, string> = {}
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!
    if (arg === '-X') method = args[++i]!
    else if (arg === '-H') {
      const [name, ...value] = args[++i]!.split(':')
      headers[name!.trim().toLowerCase()] = value.join(':').trim()
    } else if (arg === '-d') body = args[++i]!
    else if (arg === '-i') withStatus = true
    else if (/^localhost:\d+\//.test(arg)) {
      port = arg.slice('localhost:'.length, arg.indexOf('/'))
      url = arg.slice(arg.indexOf('/'))
    } else throw new Error(`README curl: unknown word ${arg}`)
  }
  const app = servers.get(port)
  if (app === undefined) throw new Error(`README curl: nothing listens on port ${port}`)
  const res = await app.inject({ method: method as 'GET', url, headers, ...(body !== undefined && { payload: body }) })
  if (!withStatus) return res.body
  // `curl -i`, trimmed to the status line, the replay header and the body.
  const replayed = res.headers['idempotent-replayed']
  return [
    `HTTP/1.1 ${res.statusCode} ${STATUS_CODES[res.statusCode]}`,
    ...(replayed === undefined ? [] : [`idempotent-replayed: ${String(replayed)}`]),
    res.body
  ].join('\n')
}

/**
 * `npm run NAME [-- args]`: the operator command src/cli/NAME.ts (a colon becomes a dash), as a
 * child, in the session's own folder (`cwd`), so a relative path (db:backup's FILE) lands there.
 */
async function npmRun (args: string[], env: Record<string, string>, cwd: string): Promise<string> {
  const [script, ...rest] = args
  const entry = new URL(`../src/cli/${script!.replace(':', '-')}.ts`, import.meta.url).pathname
  if (!existsSync(entry)) throw new Error(`README: npm run ${script} is not an operator command in src/cli/`)
  const child = spawn(process.execPath, [...process.execArgv, entry, ...(rest[0] === '--' ? rest.slice(1) : rest)], {
    env: { ...process.env, ...env },
    cwd,
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  child.stdout.on('data', chunk => { output += String(chunk) })
  child.stderr.on('data', chunk => { output += String(chunk) })
  await new Promise(resolve => child.on('close', resolve))
  return output.trimEnd()
}

async function sqlite3 (args: string[], dbPath: string, how: 'cli' | 'model'): Promise<string> {
  const [header, column, file, sql, ...rest] = args
  if (header !== '-header' || column !== '-column' || file !== 'data/app.db' || sql === undefined || rest.length > 0) {
    throw new Error(`README: replays only sqlite3 -header -column data/app.db 'SQL', not ${args.join(' ')}`)
  }
  if (how === 'cli') {
    const { stdout } = await promisify(execFile)('sqlite3', ['-readonly', '-header', '-column', dbPath, sql], { timeout: 10_000 })
    return stdout.split('\n').map(line => line.trimEnd()).join('\n').trimEnd()
  }
  const db = new Database(dbPath, { readonly: true, fileMustExist: true })
  try {
    const statement = db.prepare(sql)
    return columnTable(statement.columns().map(c => c.name), statement.raw().all() as unknown[][])
  } finally {
    db.close()
  }
}

// Every value as PostgreSQL's text output writes it, as psql prints it: no parsing at all.
const asText = { getTypeParser: () => (text: string) => text }

/**
 * `psql -At "$DATABASE_URL" -c 'SQL'` read through the pool of the session's first instance:
 * rows of columns joined by `|`, NULL as nothing, as psql's unaligned, tuples-only output is.
 */
async function psql (args: string[], servers: Map<string, FastifyInstance>): Promise<{ actual: string, stampColumns: number[] }> {
  let sql: string | undefined
  let flags = ''
  let url: string | undefined
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!
    if (arg === '-c') sql = args[++i]
    else if (/^-[At]+$/.test(arg)) flags += arg.slice(1)
    else if (url === undefined && (arg === '$DATABASE_URL' || /^postgres(ql)?:\/\//.test(arg))) url = arg
    else throw new Error(`README psql: unknown word ${arg}`)
  }
  if (sql === undefined || url === undefined || !flags.includes('A') || !flags.includes('t')) {
    throw new Error(`README: replays only psql -At "$DATABASE_URL" -c 'SQL', not psql ${args.join(' ')}`)
  }
  const [app] = servers.values()
  if (app === undefined) throw new Error('README psql: no instance is running')
  const result = await app.pg.query({ text: sql, rowMode: 'array', types: asText })
  const rows = (result.rows as Array<Array<string | null>>).map(row => row.map(cell => cell ?? '').join('|'))
  const stampColumns = result.fields.flatMap((field, c) => stampColumn.test(field.name) ? [c] : [])
  return { actual: rows.join('\n'), stampColumns }
}
