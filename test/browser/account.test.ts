import { mkdir } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import type { Page } from 'playwright-core'
import t from 'tap'
import { createPkcePair } from '../../lib/pkce.js'
import { launchTestBrowser } from '../helpers/browser.js'
import { signInThroughBothScreens } from '../helpers/cookie-browser.js'
import { startFakeGithub } from '../helpers/fake-github.js'
import { startLiveGateway } from '../helpers/gateway.js'

/*
 * Issue 19 part 4, shown by: "the account page lists and revokes, keyboard-only, in Chromium". Two clients
 * connected through the gateway (over real HTTP); then, in headless Chromium and with the keyboard alone, the
 * person signs in to /account, revokes the first client (its token is refused at /mcp at once), and signs out.
 * Every page must load nothing else, log no error and violate no CSP directive (as the authorize pages).
 */

// Not flow.test.ts's folder, which that file empties as it starts (the files run in parallel).
const SCREENSHOTS = fileURLToPath(new URL('../../test-artifacts/account-screenshots/', import.meta.url))
const REDIRECT = 'http://127.0.0.1:33418/callback'

interface Dom {
  document: {
    activeElement: {
      id: string
      tagName: string
      textContent: string | null
      getAttribute (name: string): string | null
    } | null
    addEventListener (type: 'securitypolicyviolation', fn: (e: { violatedDirective: string }) => void): void
  }
  __violations?: string[]
}

async function focused (page: Page): Promise<string> {
  return await page.evaluate(() => {
    const el = (globalThis as unknown as Dom).document.activeElement
    if (el === null) return 'none'
    if (el.id !== '') return `#${el.id}`
    const described = el.getAttribute('aria-describedby')
    return `${el.tagName.toLowerCase()}:${(el.textContent ?? '').trim()}${described === null ? '' : `>${described}`}`
  })
}

/** Presses a key and waits for the main frame to load exactly `pathAndQuery`. */
async function pressAndLoad (page: Page, key: string, pathAndQuery: string): Promise<void> {
  const to = (url: URL): boolean => url.pathname + url.search === pathAndQuery
  await Promise.all([page.waitForURL(to, { waitUntil: 'load' }), page.keyboard.press(key)])
}

/** A client registered and connected through both screens as the default account: its access token. */
async function connect (origin: string, name: string): Promise<string> {
  const registered = await fetch(`${origin}/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ client_name: name, redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none' })
  })
  const clientId = ((await registered.json()) as { client_id: string }).client_id
  const { verifier, challenge } = createPkcePair()
  const authorization = new URL(`${origin}/authorize`)
  authorization.search = new URLSearchParams({
    response_type: 'code',
    client_id: clientId,
    redirect_uri: REDIRECT,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    resource: `${origin}/mcp`
  }).toString()
  const redirect = await signInThroughBothScreens(origin, authorization)
  const token = await fetch(`${origin}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code: redirect.searchParams.get('code') ?? '',
      code_verifier: verifier,
      client_id: clientId,
      redirect_uri: REDIRECT
    })
  })
  return ((await token.json()) as { access_token: string }).access_token
}

async function mcpStatus (origin: string, token: string): Promise<number> {
  const res = await fetch(`${origin}/mcp`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: '{}'
  })
  await res.arrayBuffer()
  return res.status
}

t.test('the account page in headless Chromium: sign in, revoke and sign out with the keyboard alone', async (t) => {
  await mkdir(SCREENSHOTS, { recursive: true })
  const github = await startFakeGithub()
  t.teardown(() => github.close())
  const { origin, clock } = await startLiveGateway(t, github, { tokenCacheTtl: 60_000 })
  const editor = await connect(origin, 'Keyboard Editor')
  // The gateway's clock stands still unless moved: the editor is the older grant.
  clock.advance(60_000)
  const chat = await connect(origin, 'Keyboard Chat')
  t.not(await mcpStatus(origin, editor), 401, 'the editor\'s token works, and is cached')

  const found = await launchTestBrowser()
  t.teardown(() => found.close())
  const context = await found.browser.newContext({ viewport: { width: 1024, height: 768 } })
  t.teardown(() => context.close())
  context.setDefaultTimeout(10_000)
  await context.addInitScript(() => {
    const dom = globalThis as unknown as Dom
    const seen: string[] = []
    dom.__violations = seen
    dom.document.addEventListener('securitypolicyviolation', (e) => seen.push(e.violatedDirective))
  })
  const page = await context.newPage()
  const problems: string[] = []
  page.on('console', (msg) => { if (msg.type() === 'error' || msg.type() === 'warning') problems.push(msg.text()) })
  page.on('pageerror', (err) => problems.push(err.message))
  page.on('request', (req) => { if (req.resourceType() !== 'document') problems.push(`subresource ${req.url()}`) })
  const clean = async (where: string): Promise<void> => {
    t.same(problems, [], `${where}: no console error, page error or subresource`)
    t.same(await page.evaluate(() => (globalThis as unknown as Dom).__violations ?? []), [], `${where}: no CSP violation`)
  }

  await page.goto(`${origin}/account`)
  t.equal(await page.title(), 'Your account · MCP gateway')
  await page.waitForFunction(() => (globalThis as unknown as Dom).document.activeElement?.id === 'username')
  await clean('sign-in form')
  await page.keyboard.type('gateway_user')
  await page.keyboard.press('Tab')
  t.equal(await focused(page), '#password')
  await page.keyboard.type('gateway_pass')
  await pressAndLoad(page, 'Enter', '/account')

  const main = page.locator('main')
  t.match(await main.innerText(), 'Signed in as gateway_user')
  t.same(await page.locator('section.client h2').allInnerTexts(), ['Keyboard Editor', 'Keyboard Chat'], 'both clients, oldest first')
  await clean('account page')
  await page.screenshot({ path: `${SCREENSHOTS}account.png`, fullPage: true })

  // From the top of the page: the first Tab reaches the first client's Revoke button, which names its client.
  await page.keyboard.press('Tab')
  t.equal(await focused(page), 'button:Revoke>client-1')
  t.ok(await page.getByRole('button', { name: 'Revoke', description: 'Keyboard Editor' }).isVisible(),
    'its accessible description is the client it revokes')
  await pressAndLoad(page, 'Enter', '/account?done=revoked')
  t.match(await page.locator('[role=status]').innerText(), 'Access revoked.')
  t.same(await page.locator('section.client h2').allInnerTexts(), ['Keyboard Chat'], 'the editor is gone')
  t.equal(await mcpStatus(origin, editor), 401, 'the revoked client\'s token is refused at once')
  t.not(await mcpStatus(origin, chat), 401, 'the other client\'s token still works')
  await clean('after revoking')

  await page.keyboard.press('Tab')
  t.equal(await focused(page), 'button:Revoke>client-1')
  await page.keyboard.press('Tab')
  t.equal(await focused(page), 'button:Sign out')
  await pressAndLoad(page, 'Enter', '/account?done=signed-out')
  t.match(await page.locator('[role=status]').innerText(), 'You are signed out.')
  t.ok(await page.getByLabel('Username').isVisible(), 'the sign-in form again')
  await page.goto(`${origin}/account`)
  t.ok(await page.getByLabel('Username').isVisible(), 'the session is over')
  await clean('signed out')
})
