#!/usr/bin/env node
/**
 * `npm start` / the `mcp-oauth-gateway` command: configuration from flags and MCP_GATEWAY_* variables,
 * one Fastify server, the gateway plugin, listen; on SIGTERM or SIGINT a bounded, graceful stop.
 * Embedding apps import index.ts instead and never run this.
 */
import Fastify from 'fastify'
import { standaloneGateway } from './app.js'
import { ConfigError, loadConfig } from './lib/config.js'
import { grantsCommand } from './lib/grants-command.js'
import { hashPasswordCommand } from './lib/hash-password-command.js'
import { AccessLogController, genReqId, loggerOptions, pathOf } from './lib/log.js'
import { originOf } from './lib/url.js'
import type { GatewayMetrics } from './plugins/metrics.js'

// After the grace time every connection is destroyed; if closing still has not finished this much later
// (an onClose hook stuck on a dead store), the process gives up and exits 1.
const FORCED_CLOSE_LIMIT_MS = 5000
const IDLE_SWEEP_MS = 100
// Node looks for requests past their timeouts only every connectionsCheckingInterval (30 s by default, which
// would let a 1 s timeout run to 31 s): a quarter of the shorter timeout, at most a second.
const MAX_TIMEOUT_CHECK_MS = 1000

// The subcommands: a password hash for --users-file (lib/hash-password-command.ts), the operator's view of the
// grants in the store (lib/grants-command.ts), and the demo (demo.ts), loaded only when asked for: it needs the MCP
// SDK, a development dependency.
if (process.argv[2] === 'hash-password' && process.argv.length === 3) process.exit(await hashPasswordCommand())
if (process.argv[2] === 'grants') {
  const io = { env: process.env, stdout: process.stdout, stderr: process.stderr }
  process.exit(await grantsCommand(process.argv.slice(3), io))
}
if (process.argv[2] === 'demo') {
  const { demoCommand } = await import('./demo.js')
  process.exit(await demoCommand(process.argv.slice(3), process.env))
}

let config
try {
  config = loadConfig(process.argv.slice(2), process.env)
} catch (err) {
  if (!(err instanceof ConfigError)) throw err
  process.stderr.write(`mcp-oauth-gateway: invalid configuration\n${err.message}\n`)
  process.exit(1)
}
if ('help' in config) {
  process.stdout.write(config.help)
  process.exit(0)
}
const { server, gateway: options, warnings } = config
// Node refuses a headers timeout longer than the request timeout, which bounds the headers anyway.
const headersTimeout = Math.min(server.headersTimeout, server.requestTimeout)

// Bounds on receiving a request (a client trickling its headers or body holds a socket and a parser) and
// on an idle keep-alive connection. Never a socket inactivity timeout (Fastify's connectionTimeout): an
// event stream can rightly stay silent for minutes, and the request timeout ends once a request is in.
const timeouts = {
  requestTimeout: server.requestTimeout,
  keepAliveTimeout: server.keepAliveTimeout,
  http: {
    requestTimeout: server.requestTimeout,
    headersTimeout,
    connectionsCheckingInterval: Math.min(MAX_TIMEOUT_CHECK_MS, Math.ceil(headersTimeout / 4))
  }
}

const app = Fastify({
  // JSON lines for collectors and Docker; pino-pretty only for a person at a terminal (not NODE_ENV).
  // Redaction, path-only request lines and our own request ids: lib/log.ts.
  ...loggerOptions({ level: server.logLevel, pretty: process.stdout.isTTY === true }),
  trustProxy: server.trustProxy,
  // On close, idle keep-alive sockets go at once and no new connection is accepted, while requests in
  // flight finish (`true` would cut them off). Open SSE streams are ended by the proxy's preClose hook;
  // whatever is still open when the grace time runs out is destroyed below.
  forceCloseConnections: 'idle',
  ...timeouts
})
// Past the cap Node closes a new connection as soon as it is accepted, so a flood of idle connections
// cannot take every file descriptor.
app.server.maxConnections = server.maxConnections
for (const warning of warnings) app.log.warn(warning)
// Settings that say where this runs, never a credential (a store URL may hold a password: only its kind).
app.log.debug({
  host: server.host,
  port: server.port,
  trustProxy: server.trustProxy,
  // Origins only: an upstream URL may carry a key in its query.
  publicOrigin: originOf(options.publicUrl),
  upstreamOrigin: originOf(options.upstreamRs),
  store: options.store === 'memory' ? 'memory' : 'redis',
  secretGenerated: options.secretGenerated,
  shutdownGraceMs: server.shutdownGrace * 1000,
  requestTimeoutMs: server.requestTimeout,
  headersTimeoutMs: headersTimeout,
  keepAliveTimeoutMs: server.keepAliveTimeout,
  maxConnections: server.maxConnections,
  metricsListener: server.metricsPort === undefined ? 'none' : `${server.metricsHost}:${server.metricsPort}`
}, 'settings')

// The request id goes back to the client, so a user can quote it and an operator find the log lines.
app.addHook('onRequest', async (req, reply) => { reply.header('x-request-id', req.id) })
// Set by the first SIGTERM/SIGINT (below). A response that leaves while the server closes says
// `Connection: close`, so the client sends its next request on a new connection (to another replica)
// instead of on this one just as the idle sweep closes it under the request.
let stopping = false
app.addHook('onSend', (_req, reply, payload, done) => {
  if (stopping) reply.header('connection', 'close')
  done(null, payload)
})
// Fastify's default 404 body repeats the whole URL, query included: a misdirected upstream callback would
// hand its code back where a proxy logging bodies keeps it. The same answer with the path only.
app.setNotFoundHandler(async (req, reply) => {
  const message = `Route ${req.method}:${pathOf(req.url)} not found`
  return await reply.code(404).send({ message, error: 'Not Found', statusCode: 404 })
})
/*
 * SIGTERM/SIGINT: stop accepting connections, let requests in flight finish for up to the grace time, end
 * open streams, close the store, exit 0. A second signal, or the end of the grace time, destroys what is
 * still open; the exit code stays 0 then, because that cut is the bounded stop this was asked for, not a
 * failure (a non-zero code would read as a crash to orchestrators and alerting). Exit 1 only when closing
 * itself fails or still hangs after every connection was destroyed.
 */
let forced = false
const graceMs = server.shutdownGrace * 1000

function destroyConnections (reason: string): void {
  if (forced) return
  forced = true
  app.server.getConnections((_err, count) => {
    app.log.warn({ reason, connections: count }, 'shutdown: destroying the connections still open')
  })
  app.server.closeAllConnections()
  setTimeout(() => {
    app.log.error('shutdown: still not closed after destroying every connection; giving up')
    process.exit(1)
  }, FORCED_CLOSE_LIMIT_MS).unref()
}

function stop (signal: NodeJS.Signals): void {
  if (stopping) {
    destroyConnections(`second ${signal}`)
    return
  }
  stopping = true
  const started = Date.now()
  app.log.info({ signal, graceMs }, 'shutting down: no new connections, waiting for requests in flight')
  const grace = setTimeout(() => destroyConnections('grace time over'), graceMs)
  // Node closes the connections that are idle when closing starts, not the keep-alive ones whose request
  // finishes later (the call in flight, a stream just ended): close those as they become idle, or they
  // would hold the close until the grace time runs out.
  const sweep = setInterval(() => { app.server.closeIdleConnections() }, IDLE_SWEEP_MS)
  app.close().then(() => {
    clearTimeout(grace)
    clearInterval(sweep)
    app.log.info({ ms: Date.now() - started, forced }, 'shut down')
    process.exit(0)
  }, (err: unknown) => {
    app.log.error({ err }, 'shutdown failed')
    process.exit(1)
  })
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)

/*
 * Metrics on a listener of their own (--metrics-port), so that scraping never needs the gateway's public
 * URL: an address Prometheus reaches and clients do not (loopback by default). It serves the gateway's
 * own registry, handed over by standaloneGateway, and closes with the app.
 */
let gatewayMetrics: GatewayMetrics | undefined
const metricsApp = server.metricsPort === undefined
  ? undefined
  : Fastify({
    loggerInstance: app.log.child({ listener: 'metrics' }),
    // The same one line per request as the gateway's listener, never a query string.
    logController: new AccessLogController(),
    genReqId,
    requestIdHeader: false,
    forceCloseConnections: 'idle',
    ...timeouts
  })
if (metricsApp !== undefined) {
  metricsApp.get('/metrics', { logLevel: 'warn' }, async (_req, reply) => {
    // Handed over while the gateway registers, which app.ready() finishes before this listener opens.
    const metrics = gatewayMetrics as GatewayMetrics
    return await reply
      .header('content-type', metrics.contentType)
      .header('cache-control', 'no-store')
      .send(await metrics.scrape())
  })
  app.addHook('onClose', async () => { await metricsApp.close() })
}

try {
  // Resolved and reported above: registered as is, so no warning is logged twice. Inside the try: a store
  // that cannot be reached at start is a fatal log line like a taken port, not an uncaught rejection.
  await app.register(standaloneGateway, {
    options,
    ...(metricsApp === undefined ? {} : { onMetrics: (metrics: GatewayMetrics) => { gatewayMetrics = metrics } })
  })
  await app.ready()
  // Before the gateway's own port: a metrics port that is taken stops the start before any client is served.
  await metricsApp?.listen({ port: server.metricsPort, host: server.metricsHost })
  await app.listen({ port: server.port, host: server.host })
} catch (err) {
  app.log.fatal({ err }, 'could not start')
  process.exit(1)
}
