// The gateway under test: the real plugin (the built dist/app.js, in-memory store) on its own Fastify
// server, in front of the bench upstream. A fake upstream authorization server (GitHub-like: the
// authorize endpoint redirects straight back, the token endpoint answers a never-expiring token)
// runs in this process too; it is used only while the driver goes through the login flow.
import Fastify from 'fastify'
import { createServer } from 'node:http'
import { pathToFileURL } from 'node:url'
import { startAuthorizationServer } from './fake-as.mjs'
import { ready, serve } from './ipc.mjs'

// GATEWAY_APP: another build of app.js (bench/ablate.mjs runs patched copies); default the real dist/.
const appUrl = process.env.GATEWAY_APP === undefined ? new URL('../dist/app.js', import.meta.url) : pathToFileURL(process.env.GATEWAY_APP)
const { default: gateway } = await import(appUrl.href)

const upstreamOrigin = process.env.UPSTREAM_ORIGIN
const upstreamToken = process.env.UPSTREAM_TOKEN

const { origin: asOrigin } = await startAuthorizationServer(upstreamToken)

// A free port first, so the public URL (issuer, resource) is the address the driver really uses.
const probe = createServer()
await new Promise((resolve) => probe.listen(0, '127.0.0.1', resolve))
const port = probe.address().port
await new Promise((resolve) => probe.close(resolve))
const publicUrl = `http://127.0.0.1:${port}`

// As users run it: the logging `npm start` (server.ts) configures, at its default level, written to /dev/null.
// GATEWAY_LOG=off: no logger at all, to measure what logging costs.
const { loggerOptions } = await import(new URL('lib/log.js', appUrl).href)
const { default: pino } = await import('pino')
const logging = loggerOptions({ level: 'info', pretty: false })
const logger = process.env.GATEWAY_LOG === 'off'
  ? false
  : { ...logging.logger, stream: pino.destination({ dest: '/dev/null', sync: true }) }

const app = Fastify({ ...logging, logger, forceCloseConnections: true })
await app.register(gateway, {
  publicUrl,
  upstreamRs: `${upstreamOrigin}/mcp`,
  upstreamClientId: 'bench-client-id',
  upstreamClientSecret: 'bench-client-secret',
  upstreamAuthorizeEndpoint: `${asOrigin}/login/oauth/authorize`,
  upstreamTokenEndpoint: `${asOrigin}/login/oauth/access_token`,
  upstreamScopes: ['repo'],
  username: 'bench_user',
  password: 'bench_pass',
  secret: 'bench-secret-that-is-at-least-32-characters-long',
  // One grant holds the run's 1,000 idle streams next to its load: above both default caps (32 and 2,048).
  maxStreamsPerGrant: 4096,
  maxStreams: 4096,
  // GATEWAY_STORE=redis://…: the same gateway with its state in Redis (a key prefix of its own).
  ...(process.env.GATEWAY_STORE === undefined ? {} : { store: process.env.GATEWAY_STORE, storePrefix: `bench:${process.pid}:` })
})
await app.listen({ port, host: '127.0.0.1', backlog: 4096 })
ready({ port, publicUrl, username: 'bench_user', password: 'bench_pass' })
serve({})
