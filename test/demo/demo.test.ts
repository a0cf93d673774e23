import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { connect } from 'node:net'
import { fileURLToPath } from 'node:url'
import { auth } from '@modelcontextprotocol/sdk/client/auth.js'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import t from 'tap'
import { hiddenField } from '../helpers/gateway.js'
import { HttpBrowser, pathOf, waitFor } from '../helpers/process.js'
import { MemoryProvider } from '../helpers/sdk-provider.js'

/*
 * Issue 20: `npm run demo`'s entry point (server.ts demo) as a process on free ports, driven through the
 * whole chain: the MCP SDK client discovers the gateway and registers, a browser signs in on the gateway's
 * screen 1 and approves on the demo upstream's screen 2, the SDK redeems the code and calls tools through
 * the gateway; then SIGINT stops it with exit code 0 and nothing left listening.
 */

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url))
const REDIRECT_URL = 'http://127.0.0.1:33431/callback'
t.setTimeout(120_000)

/** Whether something accepts connections on this port of 127.0.0.1. */
async function listening (port: number): Promise<boolean> {
  const socket = connect(port, '127.0.0.1')
  try {
    await once(socket, 'connect')
    return true
  } catch {
    return false
  } finally {
    socket.destroy()
  }
}

const field = (output: string, label: RegExp): string => {
  const match = label.exec(output)
  if (match?.[1] === undefined) throw new Error(`${String(label)} not in the printout: ${output}`)
  return match[1]
}

t.test('npm run demo: both screens, a tool call through the gateway, and Ctrl-C', async (t) => {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('MCP_GATEWAY_')))
  const started = Date.now()
  const child = spawn(process.execPath, [...process.execArgv, 'server.ts', 'demo', '--port', '0', '--upstream-port', '0'],
    { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString('utf8') })
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString('utf8') })
  const exited = once(child, 'exit') as Promise<[number | null, string | null]>
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  await waitFor(`the demo's printout (output: ${output})`, async () => {
    if (child.exitCode !== null) throw new Error(`the demo exited with ${child.exitCode}: ${output}`)
    return output.includes('Ctrl-C stops both servers.')
  }, 60_000, 50)
  t.comment(`the demo printed its URLs ${Date.now() - started} ms after the spawn (TypeScript loader included)`)

  const mcpUrl = field(output, /MCP URL +(http:\/\/127\.0\.0\.1:\d+\/mcp)\n/)
  const password = field(output, /user demo, password (\S+)\n/)
  const upstreamOrigin = field(output, /page, at (http:\/\/127\.0\.0\.1:\d+)\n/)
  const gatewayOrigin = new URL(mcpUrl).origin
  t.match(output, `claude mcp add --transport http gateway-demo ${mcpUrl}`, 'a Claude Code command')
  t.match(output, `npx -y mcp-remote ${mcpUrl}`, 'an mcp-remote command')
  t.match(output, 'npx @modelcontextprotocol/inspector', 'and the MCP Inspector')

  // The SDK client: discovery (RFC 9728, RFC 8414), registration (RFC 7591), a PKCE authorization request.
  const provider = new MemoryProvider(REDIRECT_URL, 'Demo test client')
  t.equal(await auth(provider, { serverUrl: mcpUrl }), 'REDIRECT')
  const authorizationUrl = provider.authorizationUrls[0] as URL
  t.equal(authorizationUrl.origin, gatewayOrigin, 'the client is sent to the gateway')

  // Screen 1: the gateway's sign-in and consent.
  const browser = new HttpBrowser()
  const authorize = await browser.get(authorizationUrl.href)
  t.equal(authorize.status, 302)
  const login = await browser.get(`${gatewayOrigin}${pathOf(authorize.headers.location as string)}`)
  t.equal(login.status, 200)
  const form = { flow: hiddenField(login.body, 'flow'), csrf: hiddenField(login.body, 'csrf') }
  const signedIn = await browser.postForm(`${gatewayOrigin}/login`, { ...form, username: 'demo', password })
  t.equal(signedIn.status, 303, 'the printed credentials sign in')
  let next = signedIn.headers.location as string
  if (next.startsWith('/consent')) {
    const consent = await browser.postForm(`${gatewayOrigin}/consent`, { ...form, decision: 'approve' })
    t.equal(consent.status, 303)
    next = consent.headers.location as string
  }

  // Screen 2: the demo upstream's own page, found by discovery, for the client the gateway registered there.
  const upstreamAuthorize = new URL(next)
  t.equal(upstreamAuthorize.origin, upstreamOrigin, 'then to the demo upstream')
  t.equal(upstreamAuthorize.searchParams.get('code_challenge_method'), 'S256')
  const page = await browser.get(upstreamAuthorize.href)
  t.equal(page.status, 200)
  t.match(page.body, '<h1>Authorize the gateway?</h1>')
  t.match(page.body, '<strong>MCP OAuth Gateway</strong>', 'naming the client the gateway registered as')
  const approved = await browser.postForm(`${upstreamOrigin}/authorize`, {
    request: hiddenField(page.body, 'request'),
    csrf: hiddenField(page.body, 'csrf'),
    decision: 'approve'
  })
  t.equal(approved.status, 303)
  const callback = new URL(approved.headers.location as string)
  t.equal(callback.origin + callback.pathname, `${gatewayOrigin}/upstream/callback`, 'back to the gateway')
  t.equal(callback.searchParams.get('iss'), upstreamOrigin, 'RFC 9207 iss')
  const done = await browser.get(callback.href)
  t.equal(done.status, 302)
  const landed = new URL(done.headers.location as string)
  t.equal(landed.origin + landed.pathname, REDIRECT_URL, 'and on to the client')
  const code = landed.searchParams.get('code') as string

  t.equal(await auth(provider, { serverUrl: mcpUrl, authorizationCode: code }), 'AUTHORIZED')
  t.match(provider.saved, { access_token: /^gwa_/, refresh_token: String }, 'gateway tokens, not the upstream\'s')

  const client = new Client({ name: 'demo-test', version: '1.0.0' })
  await client.connect(new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: provider }))
  t.same((await client.listTools()).tools.map((tool) => tool.name).sort(), ['count', 'echo', 'time'])
  t.same((await client.callTool({ name: 'echo', arguments: { text: 'through both screens' } })).content,
    [{ type: 'text', text: 'through both screens' }])
  const progress: number[] = []
  const counted = await client.callTool({ name: 'count', arguments: { to: 3 } }, undefined,
    { onprogress: (p) => { progress.push(p.progress) } })
  t.same(counted.content, [{ type: 'text', text: 'Counted to 3' }])
  t.same(progress, [1, 2, 3], 'the counter streams its progress through the gateway')
  const time = (await client.callTool({ name: 'time', arguments: {} })).content as Array<{ text: string }>
  t.ok(Math.abs(Date.parse(time[0]?.text ?? '') - Date.now()) < 60_000, 'the time tool tells the time')
  await client.close()

  const ports = [Number(new URL(gatewayOrigin).port), Number(new URL(upstreamOrigin).port)]
  child.kill('SIGINT')
  const [exitCode, signal] = await exited
  t.equal(exitCode, 0, `SIGINT: exit code 0 (output: ${output.slice(-2000)})`)
  t.equal(signal, null)
  t.match(output, 'SIGINT: stopping the demo')
  t.same(await Promise.all(ports.map(listening)), [false, false], 'nothing left listening')
  t.notMatch(output, /"level":[56]0/, 'no error logged')
})
