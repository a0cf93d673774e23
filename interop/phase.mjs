// One phase of one client: its own gateway and fakes, a throwaway HOME, the sign-in through the scripted browser,
// then the client connected and checked (once, or every `everyMs` for `durationMs`), and the gateway's figures.
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { signInWithBrowser, waitForOpenedUrl } from './browser.mjs'
import { resetLog } from './spawn.mjs'
import { startStack } from './stack.mjs'

const BIN = fileURLToPath(new URL('bin', import.meta.url))
const OPENER = join(BIN, 'xdg-open')
const CHECK_TIMEOUT_MS = 120_000

/**
 * The client's whole environment: nothing of the caller's (no API key, no proxy, no config) but PATH and the
 * locale. Every proxy variable points at a closed loopback port and only loopback is exempt, so a client that
 * honours them cannot reach the internet; telemetry is off wherever a variable turns it off.
 */
function clientEnv (home, urlFile, extra) {
  const deadProxy = 'http://127.0.0.1:9'
  const noProxy = '127.0.0.1,localhost,::1'
  return {
    PATH: `${BIN}:${process.env.PATH}`,
    HOME: home,
    USER: process.env.USER ?? 'interop',
    LANG: 'C.UTF-8',
    TERM: 'xterm-256color',
    XDG_CONFIG_HOME: join(home, '.config'),
    XDG_DATA_HOME: join(home, '.local', 'share'),
    XDG_STATE_HOME: join(home, '.local', 'state'),
    XDG_CACHE_HOME: join(home, '.cache'),
    // Some clients open no browser without a display; nothing connects to it (Chromium
    // runs headless, from the harness).
    DISPLAY: ':0',
    BROWSER: OPENER,
    INTEROP_URL_FILE: urlFile,
    HTTP_PROXY: deadProxy,
    HTTPS_PROXY: deadProxy,
    ALL_PROXY: deadProxy,
    http_proxy: deadProxy,
    https_proxy: deadProxy,
    all_proxy: deadProxy,
    NO_PROXY: noProxy,
    no_proxy: noProxy,
    DO_NOT_TRACK: '1',
    ...extra
  }
}

export async function runPhase (
  { name, bin, client, browser, phase, dir, callbackPort, tokenSeconds, durationMs, everyMs, say }
) {
  const started = Date.now()
  const home = join(dir, 'home')
  mkdirSync(home, { recursive: true })
  const logFile = join(dir, 'client.log')
  resetLog(logFile)
  const short = tokenSeconds !== undefined
  const stack = await startStack({
    logFile: join(dir, 'gateway.log'),
    ...(short ? { upstreamExpiresIn: tokenSeconds } : {}),
    // A client that identifies itself with a Client ID Metadata Document has it served locally (stack.mjs).
    clientDocument: client.metadataDocument
  })
  const result = {
    phase,
    pass: false,
    signedIn: false,
    tools: undefined,
    called: false,
    checks: 0,
    checksOk: 0,
    problems: [],
    figures: undefined,
    seconds: 0
  }
  const urlFile = join(dir, 'opened-urls')
  let opened = 0
  const ctx = {
    name,
    bin,
    home,
    mcpUrl: stack.mcpUrl,
    serverName: 'gateway',
    callbackPort,
    // A client's own variables may depend on the phase (its callback port, its metadata document's URL).
    spawnOptions: {
      env: clientEnv(home, urlFile, typeof client.env === 'function'
        ? client.env({ callbackPort, clientMetadataUrl: stack.clientDocumentUrl })
        : client.env ?? {}),
      cwd: home,
      logFile
    },
    /** Waits for the client to open the authorization URL, then signs in through it in Chromium. */
    async signIn (running) {
      const url = await waitForOpenedUrl(urlFile, { skip: opened, alive: running.alive, timeoutMs: 90_000 })
      opened++
      say(`${phase}: the client opened ${new URL(url).pathname} on the gateway; signing in`)
      try {
        return await signInWithBrowser(browser, url, stack)
      } catch (err) {
        // The client would wait minutes for a callback that will not come, and hold the run up.
        await running.stop()
        throw err
      }
    },
    /**
     * Waits for a login command to end (60 s at most) and tells whether it ended well: `success` printed, and exit 0
     * unless `anyExitCode` (a command that reports success and then exits with an error of its own).
     */
    async finish (running, success, { anyExitCode = false } = {}) {
      const code = await Promise.race([running.exited, sleep(60_000, 'timeout', { ref: false })])
      if (code === 'timeout') await running.stop()
      if (code === 'timeout' || (code !== 0 && !anyExitCode)) throw new Error(`the login command ended with ${code}: ${tail(running.output())}`)
      if (success !== undefined && !success.test(running.output())) throw new Error(`the login command did not report success: ${tail(running.output())}`)
      return true
    }
  }
  try {
    say(`${phase}: gateway ${stack.origin}${short ? `, tokens of ${tokenSeconds} s` : ''}`)
    await client.configure(ctx)
    await client.login(ctx)
    result.signedIn = await client.tokensStored(ctx)
    if (!result.signedIn) throw new Error('the login command ended well but stored no tokens')
    say(`${phase}: signed in`)
    const session = await client.connect(ctx)
    try {
      const deadline = Date.now() + (durationMs ?? 0)
      for (;;) {
        result.checks++
        const at = Math.round((Date.now() - started) / 1000)
        try {
          const { tools, called } = await withTimeout(session.check(), CHECK_TIMEOUT_MS, 'the check')
          if (tools !== undefined && !tools.includes('echo')) throw new Error(`the tools listed lack echo: ${tools.join(', ')}`)
          result.tools = tools
          result.called = called
          result.checksOk++
          say(`${phase}: ${at} s: connected${tools === undefined ? '' : `, ${tools.length} tools listed`}${called === true ? ', echo called' : ''}`)
        } catch (err) {
          result.problems.push(`check at ${at} s: ${message(err)}`)
          say(`${phase}: ${at} s: NOT connected: ${message(err)}`)
        }
        if (everyMs === undefined || Date.now() + everyMs > deadline) break
        await sleep(everyMs)
      }
    } finally {
      await session.close()
    }
  } catch (err) {
    result.problems.push(message(err))
    say(`${phase}: ${message(err)}`)
  } finally {
    result.figures = await stack.figures().catch((err) => { result.problems.push(`figures: ${message(err)}`) })
    await stack.stop()
  }
  if (result.figures !== undefined && result.figures.revocations > 0) {
    result.problems.push(`${result.figures.revocations} grant(s) revoked: ${result.figures.revocationReasons.join(', ')}`)
  }
  const cimdProblem = client.metadataDocument === undefined
    ? undefined
    : notCimd(result.figures, stack.clientDocumentUrl)
  if (cimdProblem !== undefined) result.problems.push(cimdProblem)
  if (result.figures !== undefined) {
    result.figures.identifiedBy = identifiedBy(result.figures.clientIds)
    say(`${phase}: the client identified itself by ${result.figures.identifiedBy}` +
      (client.metadataDocument === undefined ? '' : `; its document fetched ${result.figures.documentFetches} time(s)`))
  }
  result.seconds = (Date.now() - started) / 1000
  result.pass = result.signedIn &&
    result.checks > 0 &&
    result.checksOk === result.checks &&
    result.figures?.revocations === 0 &&
    cimdProblem === undefined
  return result
}

/** `CIMD`, `DCR`, both, or `-` (no code or token issued), from the client ids the gateway issued to. */
function identifiedBy (clientIds = []) {
  const ways = [...new Set(clientIds.map((id) => /^https:\/\//.test(id) ? 'CIMD' : 'DCR'))].sort()
  return ways.length === 0 ? '-' : ways.join('+')
}

/**
 * Why a client with a metadata document did not sign in through it, or undefined: the gateway must have fetched
 * the document, issued codes and tokens to its URL only, and seen no registration (a silent fall-back to DCR).
 */
function notCimd (figures, documentUrl) {
  if (figures === undefined) return 'not signed in through its metadata document: no figures'
  const others = figures.clientIds.filter((id) => id !== documentUrl)
  if (figures.registrations > 0 || others.length > 0) {
    return `not signed in through its metadata document ${documentUrl}: ` +
      `${figures.registrations} registration(s), issued to ${others.join(', ')}`
  }
  if (figures.documentFetches === 0 || figures.clientIds.length === 0) {
    return `not signed in through its metadata document ${documentUrl}: ` +
      `fetched ${figures.documentFetches} time(s), issued to ${figures.clientIds.length} client(s)`
  }
  return undefined
}

const message = (err) => err instanceof Error ? err.message : String(err)
// The last lines a command printed, without terminal escapes, for a one-line report.
const tail = (text) => text.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').trim().split('\n').slice(-3).join(' | ').slice(-400) // eslint-disable-line no-control-regex

async function withTimeout (promise, ms, what) {
  let timer
  const timeout = new Promise((resolve, reject) => { timer = setTimeout(() => reject(new Error(`${what} took more than ${ms / 1000} s`)), ms) })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}
