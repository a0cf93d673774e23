// The gateway as users run it (`node dist/server.js`, its own limits and timeouts) in front of the bench's fake
// upstream MCP server and a GitHub-like authorization server, for the abuse and soak scripts. Traffic goes to
// loopback only; each simulated user or attacker has a source address of its own in 127.0.0.0/8.
import { spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { Agent, request } from 'undici'
import { startAuthorizationServer } from './fake-as.mjs'
import { start } from './ipc.mjs'

const SERVER = fileURLToPath(new URL('../dist/server.js', import.meta.url))
export const REDIRECT_URI = 'http://127.0.0.1:33418/callback'
export const MCP_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18' }
export const TOOL_CALL = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { text: 'hi' } } })

/** `127.<b>.<c>.<d>` for the n-th address of a block: users and attackers never share one. */
export const address = (block, n) => `127.${block}.${((n + 1) >> 8) & 255}.${(n + 1) & 255}`

const agents = new Map()
/**
 * One keep-alive agent per source address, as one machine behind that address would have (streams hold a connection
 * each).
 */
export function agentFor (localAddress) {
  let agent = agents.get(localAddress)
  if (agent === undefined) {
    agent = new Agent({
      localAddress,
      connections: 32,
      keepAliveTimeout: 10_000,
      bodyTimeout: 0,
      headersTimeout: 60_000
    })
    agents.set(localAddress, agent)
  }
  return agent
}

const freePort = async () => {
  const probe = createServer()
  await new Promise((resolve) => probe.listen(0, '127.0.0.1', resolve))
  const { port } = probe.address()
  await new Promise((resolve) => probe.close(resolve))
  return port
}

/**
 * Starts the fake upstream, the authorization server and `node dist/server.js` with `args` (on top of the
 * upstream's settings), `env` and Node's `nodeFlags`. The gateway's log goes to `logFile`; `errorLines()` counts its
 * lines at error or above. `rssKb()` reads the gateway's resident memory from /proc.
 */
export async function startLiveGateway ({ args = [], env = {}, nodeFlags = [], logFile }) {
  const upstreamToken = `gho_${randomBytes(27).toString('base64url')}`
  const upstream = await start(fileURLToPath(new URL('upstream.mjs', import.meta.url)), { env: { UPSTREAM_TOKEN: upstreamToken, UPSTREAM_SESSIONS: 'per-client' } })
  const as = await startAuthorizationServer(upstreamToken)
  const port = await freePort()
  const origin = `http://127.0.0.1:${port}`
  const username = 'load_user'
  const password = randomBytes(12).toString('base64url')
  const { openSync } = await import('node:fs')
  const out = openSync(logFile, 'w')
  const child = spawn(process.execPath, [...nodeFlags, SERVER,
    '--host', '127.0.0.1', '--port', String(port), '--public-url', origin,
    '--upstream-rs', `http://127.0.0.1:${upstream.info.port}/mcp`,
    '--upstream-authorize-endpoint', `${as.origin}/login/oauth/authorize`,
    '--upstream-token-endpoint', `${as.origin}/login/oauth/access_token`,
    '--upstream-scopes', 'repo', '--upstream-client-id', 'load-client', ...args], {
    env: {
      ...process.env,
      MCP_GATEWAY_USERNAME: username,
      MCP_GATEWAY_PASSWORD: password,
      MCP_GATEWAY_UPSTREAM_CLIENT_SECRET: 'load-client-secret',
      MCP_GATEWAY_SECRET: randomBytes(32).toString('base64url'),
      ...env
    },
    stdio: ['ignore', out, out]
  })
  const exited = new Promise((resolve) => child.once('exit', resolve))
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`the gateway exited with ${child.exitCode}; see ${logFile}`)
    const ready = await request(`${origin}/healthz`).then((res) => res.body.text().then(() => res.statusCode === 200), () => false)
    if (ready) break
    if (i > 300) throw new Error('the gateway did not start within 30 s')
    await sleep(100)
  }
  return {
    origin,
    username,
    password,
    upstream,
    pid: child.pid,
    rssKb: () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1]),
    errorLines: () => readFileSync(logFile, 'utf8').split('\n').filter((line) => /"level":(50|60)/.test(line)),
    /** With `--trace-gc` among `nodeFlags`: the heap left after each full collection (mark-compact), MB. */
    liveHeapsMb: () => [...readFileSync(logFile, 'utf8').matchAll(/Mark-Compact [\d.]+ \([\d.]+\) -> ([\d.]+) \(/g)].map((m) => Number(m[1])),
    async stop () {
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
      await exited
      clearTimeout(timer)
      await upstream.stop()
      await as.close()
      await Promise.all([...agents.values()].map((agent) => agent.close()))
      agents.clear()
    }
  }
}

/** One HTTP exchange from `localAddress`; the body read whole. */
export async function send (gateway, localAddress, path, { method = 'GET', headers = {}, body } = {}) {
  const res = await request(new URL(path, gateway.origin), {
    method,
    headers,
    body,
    dispatcher: agentFor(localAddress)
  })
  const text = await res.body.text()
  return { status: res.statusCode, headers: res.headers, text }
}

const form = (fields) => ({ headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields).toString() })

/**
 * A user at `localAddress` through the whole chain, as an MCP client and a browser do it: registration,
 * /authorize with PKCE, login, consent, the upstream and the callback, the code exchange, then `initialize`.
 * Returns { clientId, tokens, sessionId }.
 */
export async function signIn (gateway, localAddress) {
  const cookies = new Map()
  const step = async (path, options = {}, expected = 200) => {
    const cookie = [...cookies].map(([k, v]) => `${k}=${v}`).join('; ')
    const res = await send(gateway, localAddress, path, { ...options, headers: { ...options.headers, ...(cookie === '' ? {} : { cookie }) } })
    for (const line of [res.headers['set-cookie'] ?? []].flat()) {
      const [pair] = line.split(';', 1)
      cookies.set(pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1))
    }
    if (res.status !== expected) throw new Error(`${path.split('?')[0]} from ${localAddress}: expected ${expected}, got ${res.status} ${res.text.slice(0, 200)}`)
    return res
  }
  const hidden = (html, name) => new RegExp(`name="${name}" value="([^"]*)"`).exec(html)[1]
  const client = JSON.parse((await step('/register', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ client_name: 'load', redirect_uris: [REDIRECT_URI], token_endpoint_auth_method: 'none', grant_types: ['authorization_code', 'refresh_token'] })
  }, 201)).text)
  const verifier = randomBytes(32).toString('base64url')
  const query = new URLSearchParams({
    response_type: 'code',
    client_id: client.client_id,
    redirect_uri: REDIRECT_URI,
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
    state: 's',
    resource: `${gateway.origin}/mcp`
  })
  const authorize = await step(`/authorize?${query}`, {}, 302)
  const login = await step(authorize.headers.location)
  const fields = { flow: hidden(login.text, 'flow'), csrf: hidden(login.text, 'csrf') }
  const signedIn = await step('/login', { method: 'POST', ...form({ ...fields, username: gateway.username, password: gateway.password }) }, 303)
  let next = signedIn.headers.location
  if (next.includes('/consent')) next = (await step('/consent', { method: 'POST', ...form({ ...fields, decision: 'approve' }) }, 303)).headers.location
  const upstream = await request(next)
  await upstream.body.dump()
  const callback = new URL(upstream.headers.location)
  const done = await step(callback.pathname + callback.search, {}, 302)
  const code = new URL(done.headers.location).searchParams.get('code')
  const tokens = JSON.parse((await step('/token', {
    method: 'POST',
    ...form({ grant_type: 'authorization_code', code, code_verifier: verifier, client_id: client.client_id, redirect_uri: REDIRECT_URI })
  })).text)
  const init = await send(gateway, localAddress, '/mcp', {
    method: 'POST',
    headers: { ...MCP_HEADERS, authorization: `Bearer ${tokens.access_token}` },
    body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'load', version: '1' } } })
  })
  if (init.status !== 200) throw new Error(`initialize from ${localAddress}: ${init.status} ${init.text.slice(0, 200)}`)
  return { localAddress, clientId: client.client_id, tokens, sessionId: init.headers['mcp-session-id'] }
}

/** A signed-in user's tool call on its session; the status. */
export async function callTool (gateway, user) {
  const res = await send(gateway, user.localAddress, '/mcp', {
    method: 'POST',
    headers: { ...MCP_HEADERS, authorization: `Bearer ${user.tokens.access_token}`, 'mcp-session-id': user.sessionId },
    body: TOOL_CALL
  })
  return res.status
}

/** A signed-in user's refresh (rotation): the user keeps the new pair; the status. */
export async function refresh (gateway, user) {
  const res = await send(gateway, user.localAddress, '/token', {
    method: 'POST',
    ...form({ grant_type: 'refresh_token', refresh_token: user.tokens.refresh_token, client_id: user.clientId })
  })
  if (res.status === 200) user.tokens = JSON.parse(res.text)
  return res.status
}

/**
 * Opens the user's GET event stream and keeps it open; resolves once its headers are in, with a function that
 * closes it and tells whether it was still open (an idle stream that the gateway cut counts as an error).
 */
export async function openStream (gateway, user, tag = 'load') {
  const controller = new AbortController()
  let ended = false
  const res = await request(new URL(`/mcp?tag=${tag}`, gateway.origin), {
    method: 'GET',
    headers: { accept: 'text/event-stream', 'mcp-protocol-version': '2025-06-18', authorization: `Bearer ${user.tokens.access_token}`, 'mcp-session-id': user.sessionId },
    dispatcher: agentFor(user.localAddress),
    signal: controller.signal
  })
  if (res.statusCode !== 200) {
    await res.body.text()
    throw new Error(`GET stream: ${res.statusCode}`)
  }
  res.body.on('data', () => {})
  res.body.on('end', () => { ended = true })
  res.body.on('error', () => { ended = true })
  return () => {
    const open = !ended
    controller.abort()
    return open
  }
}

/** Runs `task(i)` for i in [0, count) with `concurrency` in flight, until done or `deadline` (ms since epoch). */
export async function pool (count, concurrency, task, deadline = Infinity) {
  let next = 0
  const worker = async () => {
    while (next < count && Date.now() < deadline) await task(next++)
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  return next
}
