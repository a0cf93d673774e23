#!/usr/bin/env node
/**
 * `npm start` / the `mcp-oauth-gateway` command: configuration from flags and MCP_GATEWAY_* variables,
 * one Fastify server, the gateway plugin, listen. Embedding apps import index.ts instead and never run this.
 */
import Fastify from 'fastify'
import gateway from './app.js'
import { ConfigError, loadConfig } from './lib/config.js'

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

const app = Fastify({
  logger: {
    level: server.logLevel,
    // Pretty for a person at a terminal, JSON for everything else (collectors, Docker).
    ...(process.stdout.isTTY ? { transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss', ignore: 'pid,hostname' } } } : {}),
    // Query strings carry authorization codes (/upstream/callback?code=…): log paths only.
    serializers: { req: (req) => ({ method: req.method, url: req.url.split('?', 1)[0], remoteAddress: req.ip }) },
    redact: ['req.headers.authorization', 'req.headers.cookie', 'res.headers["set-cookie"]']
  },
  trustProxy: server.trustProxy,
  // Open SSE streams must not hold shutdown forever.
  forceCloseConnections: true
})
for (const warning of warnings) app.log.warn(warning)

const { secrets, secretGenerated: _generated, ...rest } = options
await app.register(gateway, { ...rest, secret: secrets })

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    app.log.info({ signal }, 'shutting down')
    app.close().then(() => process.exit(0), () => process.exit(1))
  })
}

try {
  await app.listen({ port: server.port, host: server.host })
} catch (err) {
  app.log.fatal({ err }, 'could not start')
  process.exit(1)
}
