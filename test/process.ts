import { spawn } from 'node:child_process'

// tally's real entry points as child processes, with tap's TypeScript loader (and its coverage
// hooks) passed on. Servers listen on 127.0.0.1 only, and every child is killed after a bound.

export interface Exit { code: number | null, signal: NodeJS.Signals | null, stdout: string, stderr: string }

export interface Child {
  /** Resolves to the base URL once the server logs that it listens. */
  listening: Promise<string>
  exited: Promise<Exit>
  kill: (signal: NodeJS.Signals) => void
}

const entry = (path: string) => new URL(`../src/${path}`, import.meta.url).pathname

export function start (script: string, env: Record<string, string>, limitMs = 60_000, args: string[] = []): Child {
  const child = spawn(process.execPath, [...process.execArgv, entry(script), ...args], {
    env: { ...process.env, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let stdout = ''
  let stderr = ''
  const timer = setTimeout(() => child.kill('SIGKILL'), limitMs)
  const listening = new Promise<string>((resolve, reject) => {
    child.stdout.on('data', chunk => {
      // Only the tail is kept: a server under load logs every request.
      stdout = (stdout + String(chunk)).slice(-65_536)
      const match = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(stdout)
      if (match) resolve(match[1]!)
    })
    child.on('exit', () => reject(new Error(`exited before listening: ${stderr}`)))
  })
  listening.catch(() => {})
  child.stderr.on('data', chunk => { stderr = (stderr + String(chunk)).slice(-65_536) })
  const exited = new Promise<Exit>(resolve => {
    child.on('exit', (code, signal) => { clearTimeout(timer); resolve({ code, signal, stdout, stderr }) })
  })
  return { listening, exited, kill: signal => child.kill(signal) }
}

/** The real server (src/server.ts). */
export const startServer = (env: Record<string, string>, limitMs?: number) => start('server.ts', env, limitMs)

/** An operator command (src/cli/NAME.ts) run to its end, with its command-line arguments. */
export const runCommand = async (name: string, env: Record<string, string>, args: string[] = []) =>
  await start(`cli/${name}.ts`, env, undefined, args).exited
