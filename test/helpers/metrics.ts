import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import gateway, { type GatewayPluginOptions } from '../../app.js'
import { ManualClock } from '../../lib/clock.js'
import { startFakeGithub, type FakeGithub, type FakeGithubOptions } from './fake-github.js'
import { gatewayOptions } from './gateway.js'
import type { Teardown } from './teardown.js'

export interface MetricsGateway {
  app: FastifyInstance
  github: FakeGithub
  clock: ManualClock
}

export interface BuildOptions {
  /** Gateway options over the test defaults (`metricsPath` among them). */
  gateway?: Partial<GatewayPluginOptions>
  github?: FakeGithubOptions
  /** Fastify server options (a logger stream, a serverFactory). */
  server?: FastifyServerOptions
  /** Under a prefix, as a host app may mount it. */
  prefix?: string
  /** Not ready yet: for tests that listen first, or expect registration to fail. */
  noReady?: boolean
}

/**
 * The gateway with metrics served at /metrics on its own routes (off by default: asked for here, unless a
 * test sets `metricsPath` itself) in front of a fresh fake GitHub, as test/helpers/gateway.ts builds one,
 * with the Fastify server options and the host prefix a test asks for.
 */
export async function buildWithMetrics (t: Teardown, o: BuildOptions = {}): Promise<MetricsGateway> {
  const github = await startFakeGithub(o.github)
  t.teardown(() => github.close())
  const clock = new ManualClock(Date.now())
  const app = Fastify({ logger: false, ...o.server })
  t.teardown(async () => { await app.close() })
  await app.register(gateway, {
    ...gatewayOptions(github, clock, { metricsPath: '/metrics', ...o.gateway }),
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
