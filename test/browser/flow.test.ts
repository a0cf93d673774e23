import { mkdir, rm } from 'node:fs/promises'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import t from 'tap'
import type { GatewayPluginOptions } from '../../app.js'
import { startDemoUpstream } from '../../examples/demo-upstream/app.js'
import { createPkcePair } from '../../lib/pkce.js'
import { launchTestBrowser } from '../helpers/browser.js'
import { startFakeGithub } from '../helpers/fake-github.js'
import { startLiveGateway } from '../helpers/gateway.js'
import { tempFile } from '../helpers/temp-file.js'
import { hashPassword } from '../../lib/passwords.js'
import type { Teardown } from '../helpers/teardown.js'

/*
 * The two-screen flow in a real browser: Chromium driven by playwright-core, against a
 * gateway and a fake GitHub on real sockets, ending at a real client callback server. The keyboard
 * does everything a person does (autofocus, Tab, Enter); every page is screenshotted into
 * test-artifacts/screenshots/, and must load nothing, log no error, violate no CSP directive and
 * keep its text at WCAG AA contrast.
 *
 * Chromium is not optional: test/helpers/browser.ts finds one on this machine or unpacks the one
 * @sparticuz/chromium ships (Linux x64), and a machine with neither fails this file.
 */

type Asserts = Pick<typeof t, 'same'>

const SCREENSHOTS = fileURLToPath(new URL('../../test-artifacts/screenshots/', import.meta.url))
const CLIENT_NAME = 'Playwright Test Client'
const USERNAME = 'gateway_user'
const PASSWORD = 'gateway_pass'
const FLOW_TTL_S = 600
const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]'])

/**
 * The little of the DOM the functions run in the page use. The project compiles without the DOM lib
 * (server code must not see browser globals), so they reach it as `globalThis as unknown as Dom`;
 * the cast is erased, and a function handed to page.evaluate must not close over anything.
 */
interface DomNode { nodeType: number, textContent: string | null }
interface DomElement {
  id: string
  tagName: string
  value: string
  src: string
  type: string
  childNodes: Iterable<DomNode>
  parentElement: DomElement | null
  getAttribute (name: string): string | null
  setAttribute (name: string, value: string): void
  click (): void
  getClientRects (): { length: number }
}
interface DomStyle {
  color: string
  backgroundColor: string
  borderTopColor: string
  outlineStyle: string
  outlineWidth: string
  outlineColor: string
  fontSize: string
  fontWeight: string
}
interface Dom {
  document: {
    activeElement: DomElement | null
    body: DomElement & { append (child: DomElement): void }
    documentElement: { scrollWidth: number }
    createElement (tag: string): DomElement
    querySelectorAll (selector: string): Iterable<DomElement>
    addEventListener (type: 'securitypolicyviolation', fn: (e: { violatedDirective: string, blockedURI: string }) => void): void
  }
  innerWidth: number
  getComputedStyle (el: DomElement): DomStyle
  __violations?: string[]
}

/** The client's redirect target: records each query it receives and shows a plain page. */
async function startCallback (t: Teardown): Promise<{ url: string, hits: URLSearchParams[] }> {
  const hits: URLSearchParams[] = []
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1')
    if (url.pathname === '/callback') hits.push(url.searchParams)
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
      .end('<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Client</title><link rel="icon" href="data:,"></head><body><p>Client callback</p></body></html>')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/callback`, hits }
}

async function registerClient (origin: string, redirectUri: string): Promise<string> {
  const res = await fetch(`${origin}/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      client_name: CLIENT_NAME,
      redirect_uris: [redirectUri],
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token']
    })
  })
  if (res.status !== 201) throw new Error(`registration failed: ${res.status} ${await res.text()}`)
  return ((await res.json()) as { client_id: string }).client_id
}

/**
 * A page whose every problem is recorded: console errors and warnings (a CSP violation is logged as
 * one), uncaught errors, and any request that is not a top-level document (the pages must load
 * nothing: no stylesheet, font, image, script or favicon).
 */
interface WatchedPage {
  page: Page
  problems: string[]
  /** The HTTP status of the last document the main frame loaded. */
  status: () => number | undefined
}

async function watchedPage (context: BrowserContext): Promise<WatchedPage> {
  const page = await context.newPage()
  const problems: string[] = []
  let status: number | undefined
  page.on('console', (msg) => {
    if (msg.type() !== 'error' && msg.type() !== 'warning') return
    // Chromium logs an error status of the document itself; the tests check that status directly.
    const ownStatus = /^Failed to load resource: the server responded with a status of (\d+)/.exec(msg.text())
    if (ownStatus !== null && msg.location().url === page.url() && Number(ownStatus[1]) === status) return
    problems.push(`console ${msg.type()}: ${msg.text()}`)
  })
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`))
  page.on('request', (req) => {
    if (req.resourceType() !== 'document') problems.push(`subresource ${req.resourceType()} ${req.url()}`)
    // Every server of these tests is on this machine: a page that sends the browser anywhere else fails.
    if (!LOOPBACK_HOSTS.has(new URL(req.url()).hostname)) problems.push(`off loopback: ${req.method()} ${req.url()}`)
  })
  page.on('response', (res) => {
    if (res.request().isNavigationRequest() && res.frame() === page.mainFrame()) status = res.status()
  })
  return { page, problems, status: () => status }
}

/** Violations seen by the document itself (the init script runs outside the page's CSP). */
async function cspViolations (page: Page): Promise<string[]> {
  return await page.evaluate(() => (globalThis as unknown as Dom).__violations ?? [])
}

/**
 * WCAG 2.2 AA, as rendered: every visible text at 4.5:1 against what is behind it (3:1 when large),
 * and the borders that show where an input or button is at 3:1 (1.4.11). Returns the failures.
 */
async function contrastFailures (page: Page): Promise<string[]> {
  return await page.evaluate(() => {
    const { document, getComputedStyle } = globalThis as unknown as Dom
    const rgb = (c: string): number[] | undefined => {
      const m = /^rgba?\(([\d.]+),\s*([\d.]+),\s*([\d.]+)(?:,\s*([\d.]+))?\)$/.exec(c)
      return m === null ? undefined : [Number(m[1]), Number(m[2]), Number(m[3]), m[4] === undefined ? 1 : Number(m[4])]
    }
    const luminance = (c: number[]): number => {
      const [r = 0, g = 0, b = 0] = c.slice(0, 3).map((v) => {
        const s = v / 255
        return s <= 0.04045 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4
      })
      return 0.2126 * r + 0.7152 * g + 0.0722 * b
    }
    const ratio = (a: number[], b: number[]): number => {
      const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x) as [number, number]
      return (hi + 0.05) / (lo + 0.05)
    }
    // Every colour here is opaque or fully transparent, so the first opaque background up the tree is what shows.
    const behind = (el: DomElement | null): number[] => {
      for (let e = el; e !== null; e = e.parentElement) {
        const c = rgb(getComputedStyle(e).backgroundColor)
        if (c !== undefined && c[3] !== 0) return c
      }
      return [255, 255, 255, 1]
    }
    const failures: string[] = []
    const describe = (el: DomElement) => `${el.tagName.toLowerCase()}${el.id === '' ? '' : `#${el.id}`}`
    for (const el of document.querySelectorAll('body *')) {
      if (el.getClientRects().length === 0) continue
      const style = getComputedStyle(el)
      const hasText = [...el.childNodes].some((n) => n.nodeType === 3 && (n.textContent ?? '').trim() !== '') ||
        ((el.tagName === 'INPUT') && el.type !== 'hidden' && el.type !== 'checkbox' && el.value !== '')
      const fg = rgb(style.color)
      if (hasText && fg !== undefined) {
        const size = parseFloat(style.fontSize)
        const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700)
        const r = ratio(fg, behind(el))
        if (r < (large ? 3 : 4.5)) failures.push(`text of ${describe(el)}: ${r.toFixed(2)}:1 (${style.color} on ${behind(el).join(',')})`)
      }
      if ((el.tagName === 'INPUT' && el.type !== 'hidden' && el.type !== 'checkbox') || el.tagName === 'BUTTON') {
        const border = rgb(style.borderTopColor)
        const r = border === undefined ? 0 : ratio(border, behind(el.parentElement))
        if (r < 3) failures.push(`border of ${describe(el)}: ${r.toFixed(2)}:1`)
      }
    }
    return failures
  })
}

async function screenshot (page: Page, name: string): Promise<void> {
  await page.screenshot({ path: `${SCREENSHOTS}${name}.png`, fullPage: true })
}

/** The id (or tag and value) of the focused element. */
async function focused (page: Page): Promise<string> {
  return await page.evaluate(() => {
    const el = (globalThis as unknown as Dom).document.activeElement
    if (el === null) return 'none'
    if (el.id !== '') return `#${el.id}`
    const value = el.getAttribute('value')
    return `${el.tagName.toLowerCase()}${value === null ? '' : `[value=${value}]`}`
  })
}

/** What shows the keyboard focus: the focused element's outline, and its contrast with the card. */
async function focusRing (page: Page): Promise<{ style: string, width: number, color: string }> {
  return await page.evaluate(() => {
    const { document, getComputedStyle } = globalThis as unknown as Dom
    const style = getComputedStyle(document.activeElement as DomElement)
    return { style: style.outlineStyle, width: parseFloat(style.outlineWidth), color: style.outlineColor }
  })
}

/**
 * Waits until the element with this id has the focus. Chromium applies `autofocus` at a rendering
 * update that can come after the load event: typing before it would lose keystrokes.
 */
async function focusLandsOn (page: Page, id: string): Promise<void> {
  await page.waitForFunction(
    (id) => (globalThis as unknown as Dom).document.activeElement?.id === id,
    id,
    { timeout: 5000 }
  )
}

/** Presses a key and waits for the main frame to load a URL that `to` accepts. */
async function pressAndLoad (page: Page, key: string, to: (url: URL) => boolean): Promise<void> {
  await Promise.all([page.waitForURL(to, { waitUntil: 'load' }), page.keyboard.press(key)])
}

/** Types the credentials the way a person does: the focus starts in the username, Tab to the password. */
async function typeCredentials (page: Page, password = PASSWORD): Promise<void> {
  await focusLandsOn(page, 'username')
  await page.keyboard.type(USERNAME)
  await page.keyboard.press('Tab')
  await page.keyboard.type(password)
}

const isPath = (path: string) => (url: URL) => url.pathname === path
/** The page a form POST answered with: the form's action, which has no query (the GET pages have ?flow=). */
const posted = (path: string) => (url: URL) => url.pathname === path && url.search === ''

async function pageIsClean (t: Asserts, w: WatchedPage, where: string): Promise<void> {
  t.same(w.problems, [], `${where}: no console error, page error or subresource`)
  t.same(await cspViolations(w.page), [], `${where}: no CSP violation`)
  t.same(await contrastFailures(w.page), [], `${where}: AA contrast`)
}

t.test('the authorize pages in headless Chromium', async (t) => {
  // Only this run's screenshots: a renamed or dropped one must not linger as if it were current.
  await rm(SCREENSHOTS, { recursive: true, force: true })
  await mkdir(SCREENSHOTS, { recursive: true })
  const github = await startFakeGithub()
  t.teardown(() => github.close())
  const upstreamHost = new URL(github.origin).host
  // Fail, never skip: with no browser at all this throws, saying how to get one.
  const found = await launchTestBrowser()
  t.teardown(() => found.close())
  const browser: Browser = found.browser
  t.comment(`Chromium ${browser.version()} (${found.source}: ${found.what})`)

  /** A fresh browser profile (its own cookies) that records the CSP violations its documents see. */
  async function newContext (
    t: Teardown,
    p: { width?: number, height?: number, dark?: boolean } = {}
  ): Promise<BrowserContext> {
    const context = await browser.newContext({
      viewport: { width: p.width ?? 1024, height: p.height ?? 768 },
      colorScheme: p.dark === true ? 'dark' : 'light',
      reducedMotion: 'reduce'
    })
    t.teardown(() => context.close())
    // A step that hangs fails in seconds, with Playwright's log of what it waited for.
    context.setDefaultTimeout(10_000)
    await context.addInitScript(() => {
      const dom = globalThis as unknown as Dom
      const seen: string[] = []
      dom.__violations = seen
      dom.document.addEventListener('securitypolicyviolation', (e) => seen.push(`${e.violatedDirective} ${e.blockedURI}`))
    })
    return context
  }

  /**
   * What each subtest starts from: its own gateway (its own clock and login rate limit), a client
   * registered with a callback server of its own, and a fresh browser profile at /authorize, which
   * has redirected to the login page.
   */
  async function start (
    t: Teardown,
    p: { state: string, width?: number, height?: number, dark?: boolean, gateway?: Partial<GatewayPluginOptions> }
  ) {
    const { origin, clock } = await startLiveGateway(t, github, { flowTtl: FLOW_TTL_S, ...p.gateway })
    const callback = await startCallback(t)
    const clientId = await registerClient(origin, callback.url)
    const context = await newContext(t, p)
    const w = await watchedPage(context)
    const { verifier, challenge } = createPkcePair()
    const query = new URLSearchParams({
      response_type: 'code',
      client_id: clientId,
      redirect_uri: callback.url,
      code_challenge: challenge,
      code_challenge_method: 'S256',
      state: p.state,
      resource: `${origin}/mcp`
    })
    await w.page.goto(`${origin}/authorize?${query.toString()}`)
    const callbackPort = new URL(callback.url).port
    const atCallback = (url: URL) => url.port === callbackPort && url.pathname === '/callback'
    return { origin, clock, callback, clientId, context, w, page: w.page, verifier, atCallback }
  }

  t.test('sign in and approve with the keyboard, land on the client with a code', async (t) => {
    const state = 'browser-state-1'
    const { origin, callback, clientId, w, page, verifier, atCallback } = await start(t, { state })

    t.equal(new URL(page.url()).pathname, '/login', '/authorize redirected to the login page')
    t.equal(w.status(), 200)
    t.equal(await page.title(), 'Sign in · MCP gateway')
    t.ok(await page.getByRole('heading', { level: 1, name: 'Sign in to the MCP gateway' }).isVisible())
    t.match(await page.locator('main').innerText(), CLIENT_NAME, 'the client is named')
    t.ok(await page.locator('.host', { hasText: new URL(callback.url).host }).isVisible(), 'and its redirect host')
    t.ok(await page.getByLabel('Username').isVisible(), 'the username field has a label')
    t.ok(await page.getByLabel('Password').isVisible(), 'the password field has a label')
    await focusLandsOn(page, 'username')
    t.equal(await focused(page), '#username', 'the username field has the focus on load')
    t.notMatch(await page.content(), new RegExp(`${PASSWORD}|${github.clientSecret}`), 'no credential on the page')
    await pageIsClean(t, w, 'login page')
    await screenshot(page, '01-login')

    await page.keyboard.type(USERNAME)
    await page.keyboard.press('Tab')
    t.equal(await focused(page), '#password', 'Tab goes from username to password')
    const ring = await focusRing(page)
    t.equal(ring.style, 'solid', 'keyboard focus is visible')
    t.ok(ring.width >= 2, 'and at least 2px wide')
    await page.keyboard.type(PASSWORD)
    await page.keyboard.press('Tab')
    t.equal(await focused(page), 'button', 'then to Sign in')
    await page.keyboard.press('Shift+Tab')
    // Enter in the password field: the form's implicit submission.
    await pressAndLoad(page, 'Enter', isPath('/consent'))

    t.equal(w.status(), 200, 'the consent page follows')
    t.equal(await page.title(), `Allow ${CLIENT_NAME}? · MCP gateway`)
    const text = await page.locator('main').innerText()
    t.ok(await page.getByRole('heading', { level: 1, name: `${CLIENT_NAME} wants to use ${upstreamHost} through this gateway` }).isVisible(),
      'the heading names the client and the upstream')
    t.match(text, `Signed in to the gateway as ${USERNAME}`)
    t.ok(await page.locator('.host', { hasText: new URL(callback.url).host }).isVisible(), 'the redirect host, prominent')
    t.match(text, callback.url, 'and the full redirect URI')
    t.match(text, 'can only receive the result on this computer', 'the localhost-only warning')
    t.ok(await page.getByRole('heading', { level: 2, name: `${upstreamHost} access it will request` }).isVisible())
    t.same(await page.locator('main ul li').allInnerTexts(), ['repo', 'read:org'], 'the upstream scopes')
    t.notMatch(text, PASSWORD, 'no credential on the page')
    t.notMatch(await page.content(), github.clientSecret, 'not the upstream client secret either')
    await pageIsClean(t, w, 'consent page')
    await screenshot(page, '02-consent')

    // Focus order: the checkbox, then Deny, then Approve.
    await page.keyboard.press('Tab')
    t.equal(await focused(page), '#remember')
    await page.keyboard.press('Tab')
    t.equal(await focused(page), 'button[value=deny]')
    await page.keyboard.press('Tab')
    t.equal(await focused(page), 'button[value=approve]')
    t.equal((await focusRing(page)).style, 'solid', 'the focused button shows it')
    await screenshot(page, '03-consent-approve-focused')
    const upstreamVisits = github.requests.length
    await pressAndLoad(page, 'Enter', atCallback)

    const landed = new URL(page.url())
    t.match(landed.searchParams.get('code'), /^\S{20,}$/, 'a code')
    t.equal(landed.searchParams.get('state'), state, 'the client state, echoed')
    t.equal(landed.searchParams.get('iss'), origin, 'RFC 9207 iss')
    t.equal(landed.searchParams.get('error'), null)
    t.equal(callback.hits.length, 1, 'the client server received exactly one callback')
    t.equal(callback.hits[0]?.get('code'), landed.searchParams.get('code'))
    t.ok(github.requests.slice(upstreamVisits).some((r) => r.path.startsWith('/login/oauth/authorize')), 'the browser passed through the upstream')
    t.same(w.problems, [], 'no problem on the way')

    // The code is real: the client redeems it with its verifier.
    const token = await fetch(`${origin}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams({ grant_type: 'authorization_code', code: landed.searchParams.get('code') ?? '', code_verifier: verifier, client_id: clientId, redirect_uri: callback.url })
    })
    t.equal(token.status, 200, 'the code is exchanged for tokens')
    t.match(await token.json(), { token_type: /^bearer$/i, access_token: /^gwa_/ })
  })

  t.test('issue 19: a person of the users file signs in with the keyboard; the consent page names them', async (t) => {
    const usersFile = tempFile(t, `alice:${await hashPassword('alice-in-chromium')}\n`)
    const { w, page } = await start(t, { state: 'browser-users-file', gateway: { usersFile } })
    await focusLandsOn(page, 'username')
    await page.keyboard.type('alice')
    await page.keyboard.press('Tab')
    await page.keyboard.type(PASSWORD)
    await pressAndLoad(page, 'Enter', posted('/login'))
    t.equal(w.status(), 401, 'the one account\'s password is not alice\'s')
    t.match(await page.locator('[role=alert]').innerText(), 'Wrong username or password.')
    await focusLandsOn(page, 'password')
    await page.keyboard.type('alice-in-chromium')
    await pressAndLoad(page, 'Enter', isPath('/consent'))
    t.equal(w.status(), 200)
    t.match(await page.locator('main').innerText(), 'Signed in to the gateway as alice')
    t.match(await page.locator('main').innerText(), 'The client chose its name itself when it registered')
    await pageIsClean(t, w, 'consent page, users file')
  })

  t.test('the pages fit a 375px phone screen', async (t) => {
    const { w, page } = await start(t, { state: 'narrow', width: 375, height: 740 })
    const fits = async () => await page.evaluate(() => {
      const dom = globalThis as unknown as Dom
      return dom.document.documentElement.scrollWidth <= dom.innerWidth
    })
    t.ok(await fits(), 'login: no horizontal scrolling')
    await pageIsClean(t, w, 'narrow login page')
    await screenshot(page, '04-login-375px')
    await typeCredentials(page)
    await pressAndLoad(page, 'Enter', isPath('/consent'))
    t.ok(await fits(), 'consent: no horizontal scrolling')
    const approve = await page.getByRole('button', { name: 'Approve' }).boundingBox()
    t.ok(approve !== null && approve.height >= 44, 'a touch-sized Approve button')
    await pageIsClean(t, w, 'narrow consent page')
    await screenshot(page, '05-consent-375px')
  })

  t.test('the dark colour scheme', async (t) => {
    const { w, page } = await start(t, { state: 'dark', dark: true })
    await typeCredentials(page, 'not-the-password')
    await pressAndLoad(page, 'Enter', posted('/login'))
    t.equal(w.status(), 401)
    await pageIsClean(t, w, 'dark login error')
    await screenshot(page, '06-login-wrong-password-dark')
    await focusLandsOn(page, 'password')
    await page.keyboard.type(PASSWORD)
    await pressAndLoad(page, 'Enter', isPath('/consent'))
    const bg = await page.evaluate(() => {
      const { document, getComputedStyle } = globalThis as unknown as Dom
      return getComputedStyle(document.body).backgroundColor
    })
    t.not(bg, 'rgb(243, 244, 246)', 'the dark palette applies')
    await pageIsClean(t, w, 'dark consent page')
    await screenshot(page, '07-consent-dark')
  })

  t.test('a wrong password shows the login page again, with the error', async (t) => {
    const { w, page } = await start(t, { state: 'wrong-password' })
    await typeCredentials(page, 'not-the-password')
    await pressAndLoad(page, 'Enter', posted('/login'))
    t.equal(w.status(), 401)
    t.equal((await page.getByRole('alert').innerText()).trim(), 'Wrong username or password.')
    t.equal(await page.getByLabel('Username').inputValue(), USERNAME, 'the username is kept')
    t.equal(await page.getByLabel('Password').inputValue(), '', 'the password is not')
    t.equal(await page.getByLabel('Password').getAttribute('aria-invalid'), 'true')
    await focusLandsOn(page, 'password')
    t.equal(await focused(page), '#password', 'the focus is where the user has to type')
    t.notMatch(await page.content(), 'not-the-password', 'the wrong password is not echoed')
    await pageIsClean(t, w, 'login error')
    await screenshot(page, '08-login-wrong-password')

    // And it still works from there.
    await page.keyboard.type(PASSWORD)
    await pressAndLoad(page, 'Enter', isPath('/consent'))
    t.equal(w.status(), 200, 'the right password then signs in')
  })

  t.test('an expired sign-in gets a page that says what to do', async (t) => {
    const { w, page, clock } = await start(t, { state: 'expired' })
    await typeCredentials(page)
    clock.advance((FLOW_TTL_S + 1) * 1000)
    await pressAndLoad(page, 'Enter', posted('/login'))
    t.equal(w.status(), 400)
    t.equal(await page.title(), 'This sign-in has expired · MCP gateway')
    t.ok(await page.getByRole('heading', { level: 1, name: 'This sign-in has expired' }).isVisible())
    t.match(await page.locator('main').innerText(), 'Start again from your MCP client')
    t.equal(await page.locator('form, input, button').count(), 0, 'nothing to submit')
    await pageIsClean(t, w, 'expired page')
    await screenshot(page, '09-error-expired')
  })

  t.test('a sign-in opened in another browser is refused', async (t) => {
    const { page } = await start(t, { state: 'foreign' })
    const other = await watchedPage(await newContext(t))
    await other.page.goto(page.url())
    t.equal(other.status(), 403)
    t.ok(await other.page.getByRole('heading', { level: 1, name: 'Wrong browser' }).isVisible())
    t.match(await other.page.locator('main').innerText(), 'Start again from your MCP client, in this browser')
    await pageIsClean(t, other, 'wrong-browser page')
    await screenshot(other.page, '10-error-wrong-browser')
  })

  t.test('a form with a bad CSRF token is refused', async (t) => {
    const { w, page } = await start(t, { state: 'csrf' })
    await page.locator('input[name=csrf]').evaluate((el) => { (el as unknown as DomElement).value = 'forged' })
    await typeCredentials(page)
    await pressAndLoad(page, 'Enter', posted('/login'))
    t.equal(w.status(), 403)
    t.ok(await page.getByRole('heading', { level: 1, name: 'Request refused' }).isVisible())
    t.match(await page.locator('main').innerText(), 'Start again from your MCP client')
    await pageIsClean(t, w, 'CSRF page')
    await screenshot(page, '11-error-csrf')
  })

  t.test('Deny on the consent page goes back to the client with access_denied', async (t) => {
    const { origin, w, page, atCallback } = await start(t, { state: 'deny-here' })
    await typeCredentials(page)
    await pressAndLoad(page, 'Enter', isPath('/consent'))
    await page.keyboard.press('Tab')
    await page.keyboard.press('Tab')
    t.equal(await focused(page), 'button[value=deny]')
    const before = github.requests.length
    await pressAndLoad(page, 'Enter', atCallback)
    const landed = new URL(page.url())
    t.equal(landed.searchParams.get('error'), 'access_denied')
    t.equal(landed.searchParams.get('state'), 'deny-here')
    t.equal(landed.searchParams.get('iss'), origin)
    t.equal(landed.searchParams.get('code'), null)
    t.equal(github.requests.length, before, 'the upstream was never asked')
    t.same(w.problems, [], 'no problem on the way')
  })

  t.test('access denied at the upstream ends at the client with access_denied', async (t) => {
    github.decision = 'deny'
    t.teardown(() => { github.decision = 'approve' })
    const { origin, w, page, atCallback } = await start(t, { state: 'upstream-denied' })
    await typeCredentials(page)
    await pressAndLoad(page, 'Enter', isPath('/consent'))
    await page.getByRole('button', { name: 'Approve' }).focus()
    await pressAndLoad(page, 'Enter', atCallback)
    const landed = new URL(page.url())
    t.equal(landed.searchParams.get('error'), 'access_denied')
    t.match(landed.searchParams.get('error_description'), /upstream/)
    t.equal(landed.searchParams.get('state'), 'upstream-denied')
    t.equal(landed.searchParams.get('iss'), origin)
    t.equal(landed.searchParams.get('code'), null)
    t.same(w.problems, [], 'no problem on the way')
  })

  t.test('an unreachable upstream gets a page that says what to do', async (t) => {
    // Discovery instead of configured endpoints, against a port where nothing listens.
    const { w, page, callback } = await start(t, {
      state: 'upstream-down',
      gateway: { upstreamRs: 'http://127.0.0.1:9/mcp', upstreamAuthorizeEndpoint: undefined, upstreamTokenEndpoint: undefined, upstreamTimeout: 1000 }
    })
    t.equal(w.status(), 200, 'the login page shows without the upstream')
    await typeCredentials(page)
    await pressAndLoad(page, 'Enter', posted('/login'))
    t.equal(w.status(), 502)
    t.ok(await page.getByRole('heading', { level: 1, name: 'The upstream service is unavailable' }).isVisible())
    t.match(await page.locator('main').innerText(), 'Try again in a minute')
    await pageIsClean(t, w, 'upstream-down page')
    await screenshot(page, '12-error-upstream-down')
    t.equal(callback.hits.length, 0, 'the client heard nothing')
  })

  t.test('issue 20: the demo upstream\'s own screen 2, with the keyboard, never leaving this machine', async (t) => {
    // The gateway as `npm run demo` configures it: the upstream's MCP URL only, so it discovers the
    // upstream's authorization server and registers itself there.
    const upstream = await startDemoUpstream()
    t.teardown(() => upstream.close())
    const { w, page, atCallback, callback } = await start(t, {
      state: 'demo-upstream',
      gateway: {
        upstreamRs: upstream.mcpUrl,
        upstreamAuthorizeEndpoint: undefined,
        upstreamTokenEndpoint: undefined,
        upstreamClientId: undefined,
        upstreamClientSecret: undefined,
        upstreamScopes: undefined
      }
    })
    await typeCredentials(page)
    await pressAndLoad(page, 'Enter', isPath('/consent'))
    t.same(await page.locator('main ul li').allInnerTexts(), ['tools'], 'screen 1 lists the scope the upstream published')
    await page.getByRole('button', { name: 'Approve' }).focus()
    const upstreamPort = new URL(upstream.origin).port
    await pressAndLoad(page, 'Enter', (url) => url.port === upstreamPort && url.pathname === '/authorize')

    t.equal(w.status(), 200, 'screen 2: the demo upstream\'s own page')
    t.equal(await page.title(), 'Authorize the gateway? · Demo upstream')
    t.ok(await page.getByRole('heading', { level: 1, name: 'Authorize the gateway?' }).isVisible())
    t.match(await page.locator('main').innerText(), 'MCP OAuth Gateway asks to use this demo MCP server\'s tools',
      'naming the client the gateway registered as')
    await pageIsClean(t, w, 'demo upstream page')
    await screenshot(page, '13-demo-upstream-authorize')

    // No autofocus on a consent button: Tab reaches Deny, then Approve.
    await page.keyboard.press('Tab')
    t.equal(await focused(page), 'button[value=deny]')
    await page.keyboard.press('Tab')
    t.equal(await focused(page), 'button[value=approve]')
    const ring = await focusRing(page)
    t.equal(ring.style, 'solid', 'keyboard focus is visible')
    t.ok(ring.width >= 2, 'and at least 2px wide')
    await screenshot(page, '14-demo-upstream-approve-focused')
    await pressAndLoad(page, 'Enter', atCallback)

    const landed = new URL(page.url())
    t.match(landed.searchParams.get('code'), /^\S{20,}$/, 'through the gateway\'s callback to the client, with a code')
    t.equal(landed.searchParams.get('state'), 'demo-upstream')
    t.equal(callback.hits.length, 1)
    t.same(w.problems, [], 'no problem on the way, and no request off this machine')
  })

  t.test('the watchers do catch a CSP violation and poor contrast', async (t) => {
    // Guards the guards: an inline handler and an external image on a gateway page are blocked and reported.
    const { w, page } = await start(t, { state: 'self-check' })
    await page.evaluate(() => {
      const { document } = globalThis as unknown as Dom
      const div = document.createElement('div')
      div.setAttribute('onclick', 'void 0')
      div.click()
      const img = document.createElement('img')
      img.src = 'http://127.0.0.1:9/x.png'
      document.body.append(img)
    })
    await page.waitForFunction(() => ((globalThis as unknown as Dom).__violations ?? []).length >= 2)
    t.ok(w.problems.some((p) => /Content Security Policy/i.test(p)), 'the console shows the violation')
    t.ok((await cspViolations(page)).length >= 2, 'and so do securitypolicyviolation events')
    // An attribute style is blocked by style-src (no 'unsafe-hashes'); Playwright's CSSOM access is not.
    await page.locator('label[for=username]').evaluate((el) => {
      (el as unknown as { style: { color: string } }).style.color = '#aaaaaa'
    })
    t.match(await contrastFailures(page), [/^text of label: 2\.\d+:1/], 'light grey on white fails AA')
    // A navigation off this machine, answered by the test itself so that nothing leaves it, is reported.
    await page.route('http://offsite.example/**', async (route) => { await route.fulfill({ contentType: 'text/html', body: '<!doctype html><title>x</title>' }) })
    await page.goto('http://offsite.example/')
    t.ok(w.problems.includes('off loopback: GET http://offsite.example/'), 'a request off loopback is a problem')
  })
})
