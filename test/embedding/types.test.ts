import Fastify from 'fastify'
import t from 'tap'
import gateway, { ConfigError, gateway as named, type GatewayPluginOptions } from '../../index.js'

/*
 * The embedding types: `tsc --noEmit` (which covers the tests) fails if any `@ts-expect-error` below
 * stops being an error, i.e. if the options lose their types. At run time the same mistakes are refused
 * by the TypeBox validation, so types and validation say the same thing.
 */

const base = { publicUrl: 'https://host.example', upstreamRs: 'https://api.githubcopilot.com/mcp', username: 'alice', password: 'correct horse battery staple' }

const wrong: Array<[string, () => Promise<unknown>]> = [
  ['upstreamRs missing', async () => {
    // @ts-expect-error upstreamRs is required
    await Fastify().register(gateway, { publicUrl: 'https://host.example' }).ready()
  }],
  ['codeTtl as a string', async () => {
    // @ts-expect-error codeTtl is a number of seconds (at run time '300' would pass: environment variables are strings)
    await Fastify().register(gateway, { ...base, codeTtl: 'five minutes' }).ready()
  }],
  ['disableGetStream as a string', async () => {
    // @ts-expect-error disableGetStream is a boolean
    await Fastify().register(gateway, { ...base, disableGetStream: 'yes' }).ready()
  }],
  ['upstreamScopes as an object', async () => {
    // @ts-expect-error upstreamScopes is a string or a string array
    await Fastify().register(gateway, { ...base, upstreamScopes: { repo: true } }).ready()
  }],
  ['wellKnown outside its union', async () => {
    // @ts-expect-error wellKnown is 'gateway' | 'host'
    await Fastify().register(gateway, { ...base, prefix: '/gw', wellKnown: 'root' }).ready()
  }],
  ['prefix as a number', async () => {
    // @ts-expect-error prefix is a string
    await Fastify().register(gateway, { ...base, prefix: 1 }).ready()
  }]
]

t.test('wrong option types are type errors, and ConfigErrors at registration', async (t) => {
  for (const [name, register] of wrong) await t.rejects(register(), ConfigError, name)
})

t.test('an unknown option (a typo) is a type error; at run time only a warning', async (t) => {
  const warnings: string[] = []
  const app = Fastify({ logger: { level: 'warn', stream: { write: (line: string) => { warnings.push(JSON.parse(line).msg as string) } } } })
  t.teardown(async () => { await app.close() })
  // @ts-expect-error publicURL is not an option (publicUrl is)
  await app.register(gateway, { ...base, publicURL: 'https://typo.example' })
  await app.ready()
  t.ok(warnings.includes('unknown option "publicURL" ignored'))
  t.notOk(warnings.some((w) => w.includes('"clock"') || w.includes('"prefix"')), 'options of the plugin itself are not unknown')
})

t.test('GatewayPluginOptions types a complete set; the named export is the default one', async (t) => {
  const options: GatewayPluginOptions = {
    ...base,
    prefix: '/gw',
    wellKnown: 'gateway',
    upstreamScopes: ['repo', 'read:org'],
    secret: ['a'.repeat(32), 'b'.repeat(32)],
    codeTtl: 120,
    logLevel: 'warn'
  }
  t.equal(named, gateway)
  const app = Fastify()
  t.teardown(async () => { await app.close() })
  await app.register(gateway, options)
  await app.ready()
  t.equal((await app.inject({ method: 'GET', url: '/.well-known/oauth-authorization-server/gw' })).json().issuer, 'https://host.example/gw')
})
