// `npm run conformance`: the official MCP conformance suite (@modelcontextprotocol/conformance, pinned in
// package.json) run as an authorization-server test against the gateway from dist/, in front of the project's fake
// GitHub and fake MCP server (interop/stack.mjs), all on 127.0.0.1. Prints every scenario's checks, then each
// WARNING and FAILURE in full; exits 1 on a failure or a warning (the gateway is meant to pass with none).
//
//   node interop/conformance.mjs [--out DIR]
//
// The suite's `authorization` command runs two scenarios:
// - authorization-server-metadata-endpoint: the RFC 8414 document (status, content type, issuer, endpoints,
//   response_types_supported, S256), and whether it says client_id_metadata_document_supported: true (a WARNING if
//   not);
// - authorization-code-grant: a whole authorization code grant with PKCE for a client registered beforehand. The
//   suite prints the authorization URL for a person to open and waits for the redirect on its own loopback
//   callback; here a scripted browser (plain HTTP, keeping cookies) signs in on the gateway's login page, approves
//   on its consent page, passes the fake GitHub (which approves at once) and so lands on that callback.
// The client is registered by DCR (public, token_endpoint_auth_method none), as an MCP client would.
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { freePort, startStack } from './stack.mjs'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const require = createRequire(import.meta.url)
const SUITE_DIR = resolve(require.resolve('@modelcontextprotocol/conformance/package.json'), '..')
const SUITE = { version: JSON.parse(readFileSync(join(SUITE_DIR, 'package.json'), 'utf8')).version, bin: join(SUITE_DIR, 'dist/index.js') }
const NODE20_SHIM = fileURLToPath(new URL('conformance-node20.mjs', import.meta.url))
const SUITE_TIMEOUT_MS = 180_000

const { values: opts } = parseArgs({ options: { out: { type: 'string' } } })
const outDir = resolve(opts.out ?? join(ROOT, 'test-artifacts', 'conformance', new Date().toISOString().replaceAll(':', '-')))
mkdirSync(outDir, { recursive: true })

/** A browser over plain HTTP: follows nothing by itself, keeps the cookies each origin sets. */
function cookieBrowser () {
  const jars = new Map()
  return async function send (url, { method = 'GET', form } = {}) {
    const { origin } = new URL(url)
    const jar = jars.get(origin) ?? new Map()
    jars.set(origin, jar)
    const headers = {}
    if (jar.size > 0) headers.cookie = [...jar].map(([name, value]) => `${name}=${value}`).join('; ')
    if (form !== undefined) headers['content-type'] = 'application/x-www-form-urlencoded'
    const body = form === undefined ? undefined : new URLSearchParams(form)
    const res = await fetch(url, { method, headers, body, redirect: 'manual' })
    for (const line of res.headers.getSetCookie()) {
      const [pair = ''] = line.split(';')
      const eq = pair.indexOf('=')
      if (eq <= 0) continue
      const name = pair.slice(0, eq).trim()
      if (/;\s*max-age=0\b/i.test(line)) jar.delete(name)
      else jar.set(name, pair.slice(eq + 1).trim())
    }
    const location = res.headers.get('location')
    const text = await res.text()
    return { status: res.status, location: location === null ? undefined : new URL(location, url).href, body: text }
  }
}

const hidden = (html, name) => new RegExp(`name="${name}" value="([^"]*)"`).exec(html)?.[1]
const formAction = (html, base) => {
  const action = /<form method="post" action="([^"]*)"/.exec(html)?.[1]
  return action === undefined ? undefined : new URL(action.replaceAll('&amp;', '&'), base).href
}

/**
 * A person from the authorization URL to the client's redirect URI: redirects are followed, the login form is
 * filled in, the consent form approved. Returns the URL the client's callback was reached at.
 */
async function signIn (authorizationUrl, { username, password }) {
  const redirectUri = new URL(new URL(authorizationUrl).searchParams.get('redirect_uri'))
  const send = cookieBrowser()
  let url = authorizationUrl
  let res = await send(url)
  const steps = []
  const answered = new Set()
  for (let hop = 0; hop < 20; hop++) {
    steps.push(`${res.status} ${url}`)
    if (res.status >= 300 && res.status < 400 && res.location !== undefined) {
      url = res.location
      const target = new URL(url)
      if (target.origin === redirectUri.origin && target.pathname === redirectUri.pathname) {
        // The suite's callback server starts as it prints the URL: give it a moment if it is not listening yet.
        for (let attempt = 0; ; attempt++) {
          try {
            await send(url)
            return url
          } catch (err) {
            if (attempt >= 20) throw err
            await sleep(250)
          }
        }
      }
      res = await send(url)
      continue
    }
    const flow = hidden(res.body, 'flow')
    const csrf = hidden(res.body, 'csrf')
    const action = formAction(res.body, url)
    if (res.status !== 200 || flow === undefined || csrf === undefined || action === undefined) break
    // Each screen is answered once: shown again, it said no (a wrong password, say).
    const screen = res.body.includes('name="password"') ? 'login' : res.body.includes('name="decision"') ? 'consent' : undefined
    if (screen === undefined || answered.has(screen)) break
    answered.add(screen)
    const form = screen === 'login' ? { flow, csrf, username, password } : { flow, csrf, decision: 'approve' }
    res = await send(action, { method: 'POST', form })
    url = action
  }
  const page = res.body.replace(/<(style|script)[^]*?<\/\1>/g, ' ').replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim()
  throw new Error(`the sign-in did not reach ${redirectUri.href}: ${steps.join(' -> ')} -> ${res.status} ${url}: ${page.slice(0, 300)}`)
}

/** Dynamic client registration at the gateway: a public client with the suite's loopback callback. */
async function registerClient (origin, redirectUri) {
  const res = await fetch(`${origin}/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      client_name: `MCP conformance suite ${SUITE.version}`,
      redirect_uris: [redirectUri],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none'
    })
  })
  const body = await res.json().catch(() => ({}))
  if (res.status !== 201 || typeof body.client_id !== 'string') throw new Error(`registration: ${res.status} ${JSON.stringify(body)}`)
  return body.client_id
}

/** Runs the suite's `authorization` command; when it prints the authorization URL, signs in through it. */
async function runSuite ({ origin, resource, clientId, port, credentials }) {
  const args = ['--import', NODE20_SHIM, SUITE.bin, 'authorization',
    '--url', origin, '--client-id', clientId, '--resource', resource, '--port', String(port), '--output-dir', outDir]
  console.log(`$ node ${args.map((a) => a.startsWith(ROOT) ? a.slice(ROOT.length) : a).join(' ')}`)
  const child = spawn(process.execPath, args, { cwd: outDir, stdio: ['ignore', 'pipe', 'pipe'] })
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal)))
  let signedIn = null
  const onLine = (line) => {
    console.log(`  | ${line}`)
    if (signedIn === null && /^https?:\/\/\S+[?&]response_type=code(&|$)/.test(line)) {
      signedIn = signIn(line, credentials).then(
        (callback) => console.log(`conformance: signed in; the suite's callback got ${new URL(callback).search.replace(/code=[^&]+/, 'code=…')}`),
        (err) => {
          // Otherwise the suite waits 5 minutes for a callback that will not come.
          console.log(`conformance: SIGN-IN FAILED: ${err.message}`)
          child.kill('SIGTERM')
        })
    }
  }
  createInterface({ input: child.stdout }).on('line', onLine)
  createInterface({ input: child.stderr }).on('line', onLine)
  const timer = setTimeout(() => { console.log('conformance: the suite did not finish in time'); child.kill('SIGKILL') }, SUITE_TIMEOUT_MS)
  const code = await exited
  clearTimeout(timer)
  await signedIn
  return code
}

/**
 * The checks each scenario saved (`<out>/authorization-server-<scenario>-<time>/checks.json`), in run order. A
 * scenario that started but saved nothing (the suite was stopped) counts as one failed check.
 */
function savedResults () {
  const PREFIX = 'authorization-server-'
  return readdirSync(outDir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && entry.name.startsWith(PREFIX))
    .map((entry) => {
      const time = /-(\d{4}-\d\d-\d\dT[\d-]+Z)$/.exec(entry.name)?.[1] ?? ''
      const scenario = entry.name.slice(PREFIX.length, entry.name.length - time.length - 1)
      const file = join(outDir, entry.name, 'checks.json')
      const checks = existsSync(file)
        ? JSON.parse(readFileSync(file, 'utf8'))
        : [{ id: scenario, status: 'FAILURE', description: 'Scenario finished', errorMessage: 'the scenario saved no checks' }]
      return { scenario, time, checks }
    })
    .sort((a, b) => a.time.localeCompare(b.time))
}

const stack = await startStack({ logFile: join(outDir, 'gateway.log') })
let exitCode = 1
try {
  console.log(`conformance: @modelcontextprotocol/conformance ${SUITE.version} against the gateway at ${stack.origin}; results in ${outDir}`)
  const port = await freePort()
  const clientId = await registerClient(stack.origin, `http://127.0.0.1:${port}/callback`)
  const code = await runSuite({
    origin: stack.origin,
    resource: stack.mcpUrl,
    clientId,
    port,
    credentials: { username: stack.username, password: stack.password }
  })
  const results = savedResults()
  const count = (status) => results.reduce((n, r) => n + r.checks.filter((c) => c.status === status).length, 0)
  console.log('\nconformance: results')
  for (const { scenario, checks } of results) {
    console.log(`  ${scenario}`)
    for (const c of checks) console.log(`    ${c.status.padEnd(7)} ${c.id}: ${c.description}`)
  }
  const notable = results.flatMap(({ scenario, checks }) => checks
    .filter((c) => c.status === 'WARNING' || c.status === 'FAILURE' || c.status === 'SKIPPED')
    .map((c) => `${c.status}: ${scenario} / ${c.id}: ${c.errorMessage ?? c.description}`))
  if (notable.length > 0) console.log('')
  for (const line of notable) console.log(line)
  const failures = count('FAILURE') + count('SKIPPED') + count('WARNING')
  const ok = code === 0 && failures === 0 && results.length > 0
  if (code !== 0) console.log(`conformance: the suite exited with ${code}`)
  console.log(`\nconformance: ${results.length} scenarios; ${count('SUCCESS')} passed, ${count('FAILURE')} failed, ${count('WARNING')} warnings, ${count('SKIPPED')} skipped`)
  exitCode = ok ? 0 : 1
} finally {
  await stack.stop()
  await sleep(0)
}
process.exitCode = exitCode
