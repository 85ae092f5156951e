import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { chromium } from 'playwright-core'
import t from 'tap'
import { tempDir } from '../helper.js'
import { startServer } from '../process.js'

// npm run test:browser: the docs page in Debian's headless Chromium, as a person uses it.
const screenshots = new URL('../../screenshots/', import.meta.url).pathname

t.test('the docs page lists every route group, and Try it out on GET /balance answers', async t => {
  const server = startServer({ DB_PATH: join(tempDir(t), 'app.db'), DAILY_CREDITS_ENABLED: 'false' })
  t.teardown(() => server.kill('SIGKILL'))
  const url = await server.listening
  await fetch(`${url}/add`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ payer: 'DANNON', points: 300, timestamp: '2022-10-31T10:00:00Z' }) })

  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: 60_000
  })
  t.teardown(() => browser.close())
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
  const problems: string[] = []
  page.on('pageerror', err => problems.push(err.message))
  page.on('console', message => { if (message.type() === 'error') problems.push(message.text()) })

  await page.goto(`${url}/docs/`, { waitUntil: 'networkidle', timeout: 60_000 })
  await page.waitForSelector('.opblock-tag', { timeout: 30_000 })
  const groups = await page.locator('.opblock-tag').evaluateAll(nodes => nodes.map(n => n.getAttribute('data-tag')))
  t.strictSame(groups.sort(), ['alerts', 'credits', 'points', 'system', 'user points', 'users'].sort(), 'every route group is listed')
  const operations = await page.locator('.opblock-summary-path').count()
  t.ok(operations >= 25, `${operations} operations on the page`)

  const balance = page.locator('.opblock-get').filter({ has: page.locator('.opblock-summary-path[data-path="/balance"]') })
  await balance.locator('.opblock-summary').click()
  t.match(await balance.locator('.opblock-description-wrapper').first().innerText(), /zero balances included/, 'the business rule is described')
  await balance.getByRole('button', { name: 'Try it out' }).click()
  await balance.getByRole('button', { name: 'Execute' }).click()
  const status = balance.locator('.live-responses-table .response .response-col_status').first()
  await status.waitFor({ timeout: 30_000 })
  t.equal((await status.innerText()).trim(), '200', 'Try it out answered 200')
  t.strictSame(JSON.parse(await balance.locator('.live-responses-table .response .microlight').first().innerText()), { DANNON: 300 }, 'with the JSON balance')

  const spend = page.locator('.opblock-post').filter({ has: page.locator('.opblock-summary-path[data-path="/spend"]') })
  await spend.locator('.opblock-summary').click()
  const spendText = await spend.innerText()
  t.match(spendText, /INSUFFICIENT_POINTS/, 'error codes are listed')
  t.match(spendText, /oldest timestamp first/, 'the FIFO rule is described')

  mkdirSync(screenshots, { recursive: true })
  const file = join(screenshots, 'docs.png')
  await page.screenshot({ path: file, fullPage: true })
  t.comment(`screenshot: ${file}`)
  t.strictSame(problems, [], 'no errors in the page (CSP included)')
})
