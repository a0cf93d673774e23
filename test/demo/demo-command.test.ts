import { createServer, type AddressInfo, type Server } from 'node:net'
import { PassThrough } from 'node:stream'
import t from 'tap'
import { DEMO_HELP, demoCommand, demoSettings, missingSdkHint, printout, startDemo } from '../../demo.js'
import type { Teardown } from '../helpers/teardown.js'

/*
 * demo.ts in-process: its flags and variables, what it says when it cannot start, and the printout. The
 * process itself, Ctrl-C included, is demo.test.ts.
 */

function sink (): { stream: PassThrough, text: () => string } {
  const stream = new PassThrough()
  let text = ''
  stream.on('data', (chunk: Buffer) => { text += chunk.toString('utf8') })
  return { stream, text: () => text }
}

async function blocker (t: Teardown): Promise<number> {
  const server: Server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.close() })
  return (server.address() as AddressInfo).port
}

t.test('settings: flags, then MCP_GATEWAY_DEMO_* variables, then the defaults', async (t) => {
  t.same(demoSettings([], {}), { port: 8787, upstreamPort: 8788, logLevel: 'warn' })
  t.same(demoSettings([], { MCP_GATEWAY_DEMO_PORT: '9001', MCP_GATEWAY_DEMO_UPSTREAM_PORT: '', MCP_GATEWAY_PORT: '1' }),
    { port: 9001, upstreamPort: 8788, logLevel: 'warn' }, 'an empty variable is unset; the gateway\'s own are not read')
  t.same(demoSettings(['--port', '0', '--upstream-port', '0', '--log-level', 'info'], { MCP_GATEWAY_DEMO_PORT: '9001' }),
    { port: 0, upstreamPort: 0, logLevel: 'info' })
  t.equal(demoSettings(['-h'], {}), 'help')
  t.equal(demoSettings(['--port', '65536'], {}), '--port (MCP_GATEWAY_DEMO_PORT) must be an integer from 0 to 65535')
  t.equal(demoSettings([], { MCP_GATEWAY_DEMO_UPSTREAM_PORT: '-1' }), '--upstream-port (MCP_GATEWAY_DEMO_UPSTREAM_PORT) must be an integer from 0 to 65535')
  t.match(demoSettings(['--log-level', 'loud'], {}), /^--log-level must be one of fatal, /)
  t.match(demoSettings(['--upstream-rs', 'x'], {}), /Unknown option '--upstream-rs'/)
})

t.test('the command: --help, a bad flag, a port that is taken', async (t) => {
  const help = sink()
  t.equal(await demoCommand(['--help'], {}, help.stream), 0)
  t.equal(help.text(), DEMO_HELP)

  const bad = sink()
  t.equal(await demoCommand(['--port', 'x'], {}, sink().stream, bad.stream), 1)
  t.match(bad.text(), /^mcp-oauth-gateway demo: --port .*\nUsage: mcp-oauth-gateway demo/)

  const taken = await blocker(t)
  for (const flag of ['--port', '--upstream-port']) {
    const err = sink()
    const other = flag === '--port' ? '--upstream-port' : '--port'
    t.equal(await demoCommand([flag, String(taken), other, '0'], {}, sink().stream, err.stream), 1, `${flag} taken`)
    t.equal(err.text(), `mcp-oauth-gateway demo: a port is taken (EADDRINUSE: address already in use 127.0.0.1:${taken}): choose others with --port, --upstream-port\n`)
  }
})

t.test('without the MCP SDK (a production install), the demo says how to get it', async (t) => {
  const missing = Object.assign(new Error("Cannot find package '@modelcontextprotocol/sdk' imported from /app/dist/examples/demo-upstream/mcp-server.js"), { code: 'ERR_MODULE_NOT_FOUND' })
  t.match(missingSdkHint(missing), /^the demo needs the MCP TypeScript SDK.*`npm ci && npm run demo`.*`npm install @modelcontextprotocol\/sdk zod`/)
  t.equal(missingSdkHint(Object.assign(new Error("Cannot find package 'x'"), { code: 'ERR_MODULE_NOT_FOUND' })), undefined)
  t.equal(missingSdkHint(new Error('other')), undefined)
  t.equal(missingSdkHint(undefined), undefined)
})

t.test('the printout: the MCP URL, the credentials, screen 2\'s origin and commands to paste', async (t) => {
  const demo = await startDemo({ port: 0, upstreamPort: 0, logLevel: 'silent' })
  t.teardown(() => demo.close())
  const text = printout(demo)
  t.match(demo.mcpUrl, /^http:\/\/127\.0\.0\.1:\d+\/mcp$/)
  t.match(demo.upstream.origin, /^http:\/\/127\.0\.0\.1:\d+$/)
  t.match(demo.password, /^[\w-]{12}$/, 'a fresh password')
  t.match(text, `MCP URL          ${demo.mcpUrl}\n`)
  t.match(text, `user demo, password ${demo.password}\n`)
  t.match(text, `page, at ${demo.upstream.origin}\n`)
  t.match(text, `claude mcp add --transport http gateway-demo ${demo.mcpUrl}`)
  t.match(text, `npx -y mcp-remote ${demo.mcpUrl}`)
  t.match(text, `URL ${demo.mcpUrl}\n`)
  const prm = await fetch(`${new URL(demo.mcpUrl).origin}/.well-known/oauth-protected-resource/mcp`)
  t.equal(prm.status, 200, 'the gateway answers')
})
