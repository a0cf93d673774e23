// One gateway for one client: `node dist/server.js` at info level, in front of the fake MCP server and the fake
// GitHub (fakes.mjs), all on 127.0.0.1. Its JSON log goes to a file the figures are counted from.
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { openSync, readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { start } from '../bench/ipc.mjs'
import { CA_FILE, serveClientDocument } from './client-document.mjs'

const SERVER = fileURLToPath(new URL('../dist/server.js', import.meta.url))
const FAKES = fileURLToPath(new URL('fakes.mjs', import.meta.url))
// The fakes are TypeScript: the loader tap itself uses, resolved from here so the working directory does not matter.
const TS_LOADER = import.meta.resolve('@tapjs/typescript/import')

export async function freePort () {
  const probe = createServer()
  await new Promise((resolve) => probe.listen(0, '127.0.0.1', resolve))
  const { port } = probe.address()
  await new Promise((resolve) => probe.close(resolve))
  return port
}

/**
 * Starts the fakes and the gateway. `upstreamExpiresIn` (seconds, 0 = never) is the life of the fake GitHub's
 * tokens; the gateway runs with its defaults. `clientDocument` (`{ path, fields }`, a client's own): its Client ID
 * Metadata Document is served on loopback (client-document.mjs), at `clientDocumentUrl`, and the gateway may
 * fetch it: `--cimd-allow-private` and the test CA in NODE_EXTRA_CA_CERTS, for that client's stacks only.
 */
export async function startStack ({ logFile, upstreamExpiresIn = 0, clientDocument }) {
  // Transpiled only (`npm run typecheck` checks them): type-checking them here takes seconds of a shared CPU.
  const fakes = await start(FAKES, {
    execArgv: ['--import', TS_LOADER],
    env: { INTEROP_UPSTREAM_EXPIRES_IN: String(upstreamExpiresIn), TS_NODE_TRANSPILE_ONLY: '1' },
    timeoutMs: 120_000
  })
  const port = await freePort()
  const origin = `http://127.0.0.1:${port}`
  const username = 'interop_user'
  const password = randomBytes(12).toString('base64url')
  const up = fakes.info
  const out = openSync(logFile, 'w')
  // Nothing of the caller's MCP_GATEWAY_* configuration leaks in: these flags and
  // variables are the whole configuration.
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('MCP_GATEWAY_')))
  const document = clientDocument === undefined ? undefined : await serveClientDocument(clientDocument)
  const child = spawn(process.execPath, [SERVER,
    '--host', '127.0.0.1', '--port', String(port), '--public-url', origin, '--log-level', 'info',
    '--upstream-rs', up.mcpUrl,
    '--upstream-authorize-endpoint', up.authorizeEndpoint,
    '--upstream-token-endpoint', up.tokenEndpoint,
    '--upstream-scopes', 'repo,read:org', '--upstream-client-id', up.clientId,
    ...(document === undefined ? [] : ['--cimd-allow-private'])], {
    env: {
      ...env,
      ...(document === undefined ? {} : { NODE_EXTRA_CA_CERTS: CA_FILE }),
      MCP_GATEWAY_USERNAME: username,
      MCP_GATEWAY_PASSWORD: password,
      MCP_GATEWAY_UPSTREAM_CLIENT_SECRET: up.clientSecret,
      MCP_GATEWAY_SECRET: randomBytes(32).toString('base64url')
    },
    stdio: ['ignore', out, out]
  })
  const exited = new Promise((resolve) => child.once('exit', resolve))
  for (let i = 0; ; i++) {
    let failure
    if (child.exitCode !== null) failure = `the gateway exited with ${child.exitCode}; see ${logFile}`
    else if (await fetch(`${origin}/healthz`).then((res) => res.ok, () => false)) break
    else if (i > 300) failure = `the gateway did not start within 30 s; see ${logFile}`
    if (failure !== undefined) {
      await document?.close()
      throw new Error(failure)
    }
    await sleep(100)
  }
  return {
    origin,
    mcpUrl: `${origin}/mcp`,
    clientDocumentUrl: document?.url,
    username,
    password,
    /** The gateway's OAuth events so far, from its log, and what reached the fake GitHub and MCP server. */
    async figures () {
      const events = readFileSync(logFile, 'utf8').split('\n').filter((line) => line.includes('"event":"')).map((line) => {
        try { return JSON.parse(line) } catch { return {} }
      })
      const count = (name, grantType) =>
        events.filter((e) => e.event === name && (grantType === undefined || e.grantType === grantType)).length
      return {
        registrations: count('client_registered'),
        // The client ids codes and tokens were issued to: a URL is a CIMD client's, anything else a registered one's.
        clientIds: [...new Set(events.filter((e) => e.event === 'code_issued' || e.event === 'tokens_issued').map((e) => e.clientId))],
        documentFetches: document?.fetches() ?? 0,
        signIns: count('tokens_issued', 'authorization_code'),
        refreshes: count('tokens_issued', 'refresh_token'),
        revocations: count('grant_revoked'),
        revocationReasons: events.filter((e) => e.event === 'grant_revoked').map((e) => e.reason),
        reuseDetected: count('refresh_reuse_detected'),
        errorLines: readFileSync(logFile, 'utf8').split('\n').filter((line) => /"level":(50|60)/.test(line)).length,
        ...await fakes.call('stats')
      }
    },
    async stop () {
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
      await exited
      clearTimeout(timer)
      await fakes.call('close').catch(() => {})
      await fakes.stop()
      await document?.close()
    }
  }
}
