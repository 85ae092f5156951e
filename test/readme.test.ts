import { readFileSync } from 'node:fs'
import t from 'tap'
import { build, call } from './helper.js'

// Every `$ curl` example in README.md, replayed in order against a fresh tally: the output
// shown must be the output given. Only the times tally stamps (created_at, updated_at) are masked.

interface Example { command: string, method: string, url: string, headers: Record<string, string>, body?: string, expected: string }

function parseCurl (command: string): Omit<Example, 'expected' | 'command'> {
  const words = [...command.matchAll(/'([^']*)'|(\S+)/g)].map(m => m[1] ?? m[2]!)
  const example: Omit<Example, 'expected' | 'command'> = { method: 'GET', url: '', headers: {} }
  for (let i = 1; i < words.length; i++) {
    const word = words[i]!
    if (word === '-X') example.method = words[++i]!
    else if (word === '-H') {
      const [name, ...value] = words[++i]!.split(':')
      example.headers[name!.trim().toLowerCase()] = value.join(':').trim()
    } else if (word === '-d') example.body = words[++i]!
    else if (word.startsWith('#')) break
    else if (word.startsWith('localhost:8000')) example.url = word.slice('localhost:8000'.length)
    else throw new Error(`README curl: unknown word ${word}`)
  }
  return example
}

function readmeExamples (readme: string): Example[] {
  const examples: Example[] = []
  for (const block of readme.matchAll(/```sh\n([\s\S]*?)```/g)) {
    const lines = block[1]!.split('\n')
    for (let i = 0; i < lines.length; i++) {
      if (!lines[i]!.startsWith('$ curl ')) continue
      let command = lines[i]!.slice(2)
      while (command.endsWith('\\')) command = command.slice(0, -1) + lines[++i]!.trim()
      const output: string[] = []
      while (i + 1 < lines.length && !lines[i + 1]!.startsWith('$ ') && lines[i + 1] !== '') output.push(lines[++i]!)
      examples.push({ command, ...parseCurl(command), expected: output.join('\n') })
    }
  }
  return examples
}

const mask = (text: string) => text.replace(/"(\w+_at)":"[^"]+"/g, '"$1":"…"')

t.test('every curl example in the README gives the output shown', async t => {
  const examples = readmeExamples(readFileSync(new URL('../README.md', import.meta.url), 'utf8'))
  t.ok(examples.length >= 15, `${examples.length} examples found`)
  const app = await build(t)
  for (const example of examples) {
    const res = await call(app, {
      method: example.method as 'GET',
      url: example.url,
      headers: example.headers,
      ...(example.body !== undefined && { payload: example.body })
    })
    t.equal(mask(JSON.stringify(res.body)), mask(example.expected), example.command)
  }
})
