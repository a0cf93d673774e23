// The scripted browser: a client opens its authorization URL through bin/xdg-open (as $BROWSER or as xdg-open),
// which appends it to a file; this reads it from there and drives Chromium through the gateway's login
// and consent screens and the fake GitHub, until the client's own loopback callback has answered.
import { existsSync, readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'

/**
 * The Chromium the browser tests drive, found the same way (test/helpers/browser.ts: $CHROMIUM_PATH, Debian's, an
 * installed one, or the one npm ci brings), with its close(). That helper is TypeScript: the loader tap uses is
 * registered for it, transpiling only (npm run typecheck checks it).
 */
export async function launchBrowser () {
  process.env.TS_NODE_TRANSPILE_ONLY = '1'
  await import('@tapjs/typescript/import')
  const { launchTestBrowser } = await import('../test/helpers/browser.ts')
  return await launchTestBrowser()
}

/**
 * The first URL the client opened in `urlFile` after `skip` lines, within `timeoutMs`; `alive()` false stops the wait.
 */
export async function waitForOpenedUrl (urlFile, { skip = 0, timeoutMs = 60_000, alive = () => true } = {}) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const lines = existsSync(urlFile) ? readFileSync(urlFile, 'utf8').split('\n').filter((line) => line !== '') : []
    if (lines.length > skip) return lines[skip]
    if (!alive()) throw new Error('the client exited without opening a browser')
    if (Date.now() > deadline) throw new Error(`the client opened no browser within ${timeoutMs / 1000} s`)
    await sleep(200)
  }
}

/**
 * A person signing in, in a fresh browser profile: the gateway's login page, its consent page, the upstream's
 * authorize page (the fake approves at once), then the client's callback. Returns the callback page's text.
 */
export async function signInWithBrowser (browser, authorizeUrl, { username, password }) {
  const redirectUri = new URL(new URL(authorizeUrl).searchParams.get('redirect_uri') ?? 'about:blank')
  const atCallback = (url) => url.origin === redirectUri.origin && url.pathname === redirectUri.pathname
  const context = await browser.newContext()
  try {
    const page = await context.newPage()
    page.setDefaultTimeout(30_000)
    await page.goto(authorizeUrl)
    if (!new URL(page.url()).pathname.endsWith('/login')) throw new Error(`expected the gateway's login page, got ${page.url()}`)
    await page.getByLabel('Username').fill(username)
    await page.getByLabel('Password').fill(password)
    await Promise.all([page.waitForURL((url) => !url.pathname.endsWith('/login') || url.search === '', { waitUntil: 'commit' }), page.getByRole('button', { name: 'Sign in' }).click()])
    if (new URL(page.url()).pathname.endsWith('/consent')) {
      await Promise.all([page.waitForURL(atCallback, { waitUntil: 'commit' }), page.getByRole('button', { name: 'Approve' }).click()])
    } else {
      await page.waitForURL(atCallback, { waitUntil: 'commit' })
    }
    await page.waitForLoadState('load').catch(() => {})
    return (await page.locator('body').innerText().catch(() => '')).trim()
  } finally {
    await context.close()
  }
}
