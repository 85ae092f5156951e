import { readFileSync } from 'node:fs'
import t from 'tap'
import { engine } from '../helper.js'
import { mask, readmeSteps, readmeUrl, replayReadme } from '../readme-session.js'

// README.md is one session (see test/readme-session.ts): every `$ ` command of every fenced block,
// in order, against one fresh `npm start`, on the engine under test. Each must print what the
// README shows; only the times tally stamps (created_at, updated_at, the day of a grant) are
// masked. The sqlite3 examples run on SQLite only, the psql ones on PostgreSQL only.

t.test('every example in the README, replayed as one session, gives the output shown', async t => {
  const outcomes = await replayReadme(t, { sqlite3: 'model' })
  const commands = outcomes.map(o => o.step.command)
  t.ok(outcomes.length >= 60, `${outcomes.length} examples found`)
  for (const kind of ['Idempotency-Key', 'Authorization: Bearer', 'npm run credits:daily', engine === 'sqlite' ? 'sqlite3 ' : 'psql ']) {
    const todo = kind === 'psql ' && !readmeSteps(readFileSync(readmeUrl, 'utf8')).some(step => step.command.startsWith('psql ')) && 'the README has no psql example yet'
    t.ok(commands.some(command => command.includes(kind)), `the ${kind} examples are replayed`, { todo })
  }
  t.notOk(commands.some(command => command.startsWith(engine === 'sqlite' ? 'psql ' : 'sqlite3 ')), 'and not the other engine\'s')
  if (process.env.TALLY_README_WRITE === '1') {
    t.comment('README.md now shows this session\'s outputs: run again without TALLY_README_WRITE to check it')
    return
  }
  for (const { step, actual, stampColumns } of outcomes) t.equal(mask(actual, stampColumns), mask(step.expected, stampColumns), step.command)
})
