/**
 * `npm run demo` / `mcp-oauth-gateway demo`: the whole chain on this machine, without a GitHub app. A demo
 * upstream (examples/demo-upstream: an MCP server behind an OAuth 2.1 authorization server of its own) and
 * the gateway in front of it, configured by discovery and dynamic registration only, both on 127.0.0.1,
 * both stopped by Ctrl-C.
 */
import { randomBytes } from 'node:crypto'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { parseArgs } from 'node:util'
import Fastify from 'fastify'
import gateway from './app.js'
import { loggerOptions } from './lib/log.js'
import type { DemoUpstream } from './examples/demo-upstream/app.js'

const HOST = '127.0.0.1'
export const DEFAULT_DEMO_PORT = 8787
export const DEFAULT_DEMO_UPSTREAM_PORT = 8788
const USERNAME = 'demo'
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

export const DEMO_HELP = `Usage: mcp-oauth-gateway demo [--port <n>] [--upstream-port <n>] [--log-level <level>]

Starts a demo MCP server with its own OAuth 2.1 authorization server, and the gateway in front of it, on
127.0.0.1 only. Ctrl-C stops both.

  --port <n>            The gateway's port (MCP_GATEWAY_DEMO_PORT), default ${DEFAULT_DEMO_PORT}; 0 picks a free one
  --upstream-port <n>   The demo upstream's port (MCP_GATEWAY_DEMO_UPSTREAM_PORT), default ${DEFAULT_DEMO_UPSTREAM_PORT}
  --log-level <level>   ${LOG_LEVELS.join(', ')}; default warn (info shows every request and sign-in)
`

export interface DemoSettings { port: number, upstreamPort: number, logLevel: string }

/** The demo's flags, then its variables, then the defaults; a string is the problem to print. */
export function demoSettings (argv: string[], env: Record<string, string | undefined>): DemoSettings | 'help' | string {
  let values
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        port: { type: 'string' },
        'upstream-port': { type: 'string' },
        'log-level': { type: 'string' },
        help: { type: 'boolean', short: 'h' }
      }
    }))
  } catch (err) {
    return (err as Error).message
  }
  if (values.help === true) return 'help'
  const port = (flag: string | undefined, variable: string, fallback: number): number | undefined => {
    const text = flag ?? (env[variable] === '' ? undefined : env[variable])
    if (text === undefined) return fallback
    return /^\d{1,5}$/.test(text) && Number(text) <= 65535 ? Number(text) : undefined
  }
  const gatewayPort = port(values.port, 'MCP_GATEWAY_DEMO_PORT', DEFAULT_DEMO_PORT)
  const upstreamPort = port(values['upstream-port'], 'MCP_GATEWAY_DEMO_UPSTREAM_PORT', DEFAULT_DEMO_UPSTREAM_PORT)
  const logLevel = values['log-level'] ?? 'warn'
  if (gatewayPort === undefined) return '--port (MCP_GATEWAY_DEMO_PORT) must be an integer from 0 to 65535'
  if (upstreamPort === undefined) {
    return '--upstream-port (MCP_GATEWAY_DEMO_UPSTREAM_PORT) must be an integer from 0 to 65535'
  }
  if (!LOG_LEVELS.includes(logLevel)) return `--log-level must be one of ${LOG_LEVELS.join(', ')}`
  return { port: gatewayPort, upstreamPort, logLevel }
}

/**
 * What to say when the demo upstream cannot be loaded because the MCP SDK is missing: it is a development
 * dependency, which a production install (`npm ci --omit=dev`, the Docker image) leaves out.
 */
export function missingSdkHint (err: unknown): string | undefined {
  const e = err as NodeJS.ErrnoException
  if (e?.code !== 'ERR_MODULE_NOT_FOUND' || !/@modelcontextprotocol\/sdk|'zod'/.test(e.message)) return undefined
  return 'the demo needs the MCP TypeScript SDK, a development dependency of mcp-oauth-gateway that this install ' +
    'left out. In a clone of the repository: `npm ci && npm run demo`; next to an installed package: ' +
    '`npm install @modelcontextprotocol/sdk zod`, then `npx mcp-oauth-gateway demo`.'
}

export interface RunningDemo {
  mcpUrl: string
  upstream: DemoUpstream
  username: string
  password: string
  close: () => Promise<void>
}

/** Starts the demo upstream, then the gateway in front of it; throws (with both stopped) when either cannot start. */
export async function startDemo (settings: DemoSettings, pretty = false): Promise<RunningDemo> {
  const { startDemoUpstream } = await import('./examples/demo-upstream/app.js')
  // The gateway's listener first, so that its URL, which is its issuer, is known before it is configured.
  const server = createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(settings.port, HOST, () => { server.off('error', reject); resolve() })
  })
  const origin = `http://${HOST}:${(server.address() as AddressInfo).port}`
  const app = Fastify({
    ...loggerOptions({ level: settings.logLevel, pretty }),
    serverFactory: (handler) => server.on('request', handler)
  })
  const closeGateway = async () => {
    server.closeAllConnections()
    await app.close()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
  let upstream: DemoUpstream
  try {
    const logger = app.log.child({ server: 'demo-upstream' })
    upstream = await startDemoUpstream({ port: settings.upstreamPort, logger })
  } catch (err) {
    await closeGateway()
    throw err
  }
  // A fresh password each run, printed: the demo listens on loopback only, but needs no published default.
  const password = randomBytes(9).toString('base64url')
  try {
    await app.register(gateway, {
      publicUrl: origin,
      // Only the upstream's MCP URL: its authorization server is discovered (RFC 9728, RFC 8414), and the
      // gateway registers itself there (RFC 7591).
      upstreamRs: upstream.mcpUrl,
      username: USERNAME,
      password,
      secret: randomBytes(32).toString('base64url'),
      store: 'memory'
    })
    await app.ready()
  } catch (err) {
    await closeGateway()
    await upstream.close()
    throw err
  }
  return {
    mcpUrl: `${origin}/mcp`,
    upstream,
    username: USERNAME,
    password,
    close: async () => {
      await closeGateway()
      await upstream.close()
    }
  }
}

export function printout (demo: RunningDemo): string {
  const url = demo.mcpUrl
  return `
mcp-oauth-gateway demo: the gateway in front of an MCP server with its own OAuth, on this machine only.

  MCP URL          ${url}
  Screen 1         the gateway's sign-in: user ${demo.username}, password ${demo.password}
  Screen 2         the demo upstream's own "Authorize the gateway?" page, at ${demo.upstream.origin}
  Tools            echo, time, count (reports progress)

Connect a client (each opens a browser for the two screens):
  MCP Inspector    npx @modelcontextprotocol/inspector     then Transport "Streamable HTTP", URL ${url}
  Claude Code      claude mcp add --transport http gateway-demo ${url}     then /mcp in a session
  mcp-remote       npx -y mcp-remote ${url}

Ctrl-C stops both servers.
`
}

/** The `demo` subcommand: runs until SIGINT or SIGTERM, then stops both servers; the exit code. */
export async function demoCommand (
  argv: string[],
  env: Record<string, string | undefined>,
  out: NodeJS.WritableStream = process.stdout,
  err: NodeJS.WritableStream = process.stderr
): Promise<number> {
  const settings = demoSettings(argv, env)
  if (settings === 'help') {
    out.write(DEMO_HELP)
    return 0
  }
  if (typeof settings === 'string') {
    err.write(`mcp-oauth-gateway demo: ${settings}\n${DEMO_HELP}`)
    return 1
  }
  let demo: RunningDemo
  try {
    demo = await startDemo(settings, (out as NodeJS.WriteStream).isTTY === true)
  } catch (caught) {
    const code = (caught as NodeJS.ErrnoException).code
    const reason = missingSdkHint(caught) ?? (code === 'EADDRINUSE'
      ? `a port is taken (${(caught as Error).message.replace(/^listen /, '')}): choose others with --port, --upstream-port`
      : `could not start: ${(caught as Error).message}`)
    err.write(`mcp-oauth-gateway demo: ${reason}\n`)
    return 1
  }
  out.write(printout(demo))
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', resolve)
    process.once('SIGTERM', resolve)
  })
  out.write(`\n${signal}: stopping the demo\n`)
  await demo.close()
  return 0
}
