import rateLimit from '@fastify/rate-limit'
import Fastify, { type FastifyInstance, type FastifyPluginAsync, type FastifyServerOptions } from 'fastify'
import type { GatewayPluginOptions } from '../../app.js'
import { ManualClock } from '../../lib/clock.js'
import { parseGatewayOptions } from '../../lib/config.js'
import { openStore } from '../../lib/stores/index.js'
import context from '../../plugins/context.js'
import cors from '../../plugins/cors.js'
import metrics, { type MetricsPluginOptions } from '../../plugins/metrics.js'
import authorize from '../../routes/authorize/index.js'
import discovery from '../../routes/discovery/index.js'
import health from '../../routes/health/index.js'
import mcp from '../../routes/mcp/index.js'
import register from '../../routes/register/index.js'
import token from '../../routes/token/index.js'
import { startFakeGithub, type FakeGithub, type FakeGithubOptions } from '../helpers/fake-github.js'
import { gatewayOptions } from '../helpers/gateway.js'

/*
 * app.ts as it will read once it registers the metrics plugin (right after the context, before the
 * routes, so the plugin's request hook covers them all), trimmed to the memory store. Until then the
 * tests of test/metrics build the gateway from here; afterwards `buildGateway` with the metrics options
 * replaces it.
 */
const gatewayWithMetrics: FastifyPluginAsync<GatewayPluginOptions & { metrics: MetricsPluginOptions }> = async (app, opts) => {
  const { clock, metrics: metricsOptions, ...rest } = opts
  const { options } = parseGatewayOptions(rest)
  const store = await openStore(options.store, { keyPrefix: options.storePrefix, clock: clock as ManualClock })
  app.addHook('onClose', async () => { await store.close() })
  await app.register(context, { options, store, clock: clock as ManualClock })
  await app.register(metrics, metricsOptions)
  await app.register(rateLimit, { global: false })
  await app.register(cors)
  await app.register(health)
  await app.register(discovery)
  await app.register(register)
  await app.register(authorize)
  await app.register(token)
  await app.register(mcp)
}

interface Teardown { teardown (fn: () => unknown): void }

export interface MetricsGateway {
  app: FastifyInstance
  github: FakeGithub
  clock: ManualClock
}

export interface BuildOptions {
  gateway?: Partial<GatewayPluginOptions>
  metrics?: MetricsPluginOptions
  github?: FakeGithubOptions
  /** Fastify server options (a logger stream, a serverFactory). */
  server?: FastifyServerOptions
  /** Under a prefix, as a host app may mount it. */
  prefix?: string
  /** Not ready yet: for tests that listen first, or expect registration to fail. */
  noReady?: boolean
}

/** A gateway with metrics in front of a fresh fake GitHub, as test/helpers/gateway.ts builds one. */
export async function buildWithMetrics (t: Teardown, o: BuildOptions = {}): Promise<MetricsGateway> {
  const github = await startFakeGithub(o.github)
  t.teardown(() => github.close())
  const clock = new ManualClock(Date.now())
  const app = Fastify({ logger: false, ...o.server })
  t.teardown(async () => { await app.close() })
  await app.register(gatewayWithMetrics, {
    ...gatewayOptions(github, clock, o.gateway),
    metrics: o.metrics ?? {},
    ...(o.prefix === undefined ? {} : { prefix: o.prefix })
  })
  if (o.noReady !== true) await app.ready()
  return { app, github, clock }
}

/** One sample of a scrape: the value of `name{labels}`, labels in any order; undefined when absent. */
export function sample (text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (match === null || match[1] !== name) continue
    const found = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]))
    const wanted = Object.entries(labels)
    if (wanted.length !== Object.keys(found).length) continue
    if (wanted.every(([k, v]) => found[k] === v)) return Number(match[3])
  }
  return undefined
}
