// The store settings (--store, checked by lib/stores/redis-url.ts; --store-prefix; --token-cache-ttl) and the
// rule that a store password is never shown.
import t from 'tap'
import { ConfigError, loadConfig, parseGatewayOptions } from '../../../lib/config.js'
import {
  RS, SECRET_A, CREDS, PLUGIN, load, configError, STORE_RULE, PREFIX_RULE, TTL_RULE, SECRET_REQUIRED, REDIS
} from '../../helpers/config.js'

t.test('loadConfig: --store takes memory or a Redis URL ' +
  '(one server, Sentinels, a cluster), kept as given', async (t) => {
  const good = [
    'redis://localhost', 'redis://localhost:6379', 'redis://127.0.0.1:6379/0',
    'redis://:hunter2@redis.example.com:6379/0', 'redis://gateway:hunter2@redis.example.com/15',
    'redis://:p%40ss%3Aw%2Fo%3Frd%23@redis.example.com', 'redis://:pass:with:colons@redis.example.com',
    'redis://redis_1.internal/', 'redis://[::1]:6379/2', 'redis://host/2147483647',
    'rediss://default:hunter2@cache.example.com:6380/1', 'REDISS://Cache.Example.com',
    'redis-sentinel://s1.example.com#main',
    'redis-sentinel://:hunter2@s1.example.com:26379,s2.example.com,[::1]:26380/3#main-1',
    'rediss-sentinel://gateway:p%40ss@s1.example.com:26379/#main',
    'redis-cluster://10.0.0.1:7000,10.0.0.2:7000,10.0.0.3',
    'rediss-cluster://gateway:hunter2@clustercfg.cache.example.com:6379/', 'REDIS-CLUSTER://Node1.Example.com'
  ]
  for (const url of good) {
    t.equal(load(['--upstream-rs', RS, '--secret', SECRET_A, '--store', url]).gateway.store, url, url)
  }
  for (const memory of ['memory', 'MEMORY', 'Memory']) {
    t.equal(load(['--upstream-rs', RS, '--store', memory]).gateway.store, 'memory', memory)
  }
  t.equal(load([], {
    MCP_GATEWAY_UPSTREAM_RS: RS,
    MCP_GATEWAY_SECRET: SECRET_A,
    MCP_GATEWAY_STORE: REDIS
  }).gateway.store, REDIS, 'from the environment')
  t.equal(load(['--upstream-rs', RS, '--store', 'memory'], { MCP_GATEWAY_STORE: REDIS }).gateway.store, 'memory',
    'the flag wins')
  t.equal(load([], { MCP_GATEWAY_UPSTREAM_RS: RS, MCP_GATEWAY_STORE: '' }).gateway.store, 'memory',
    'an empty variable is the default')
})

t.test('loadConfig: a bad --store is refused without repeating it', async (t) => {
  const bad = [
    'redis', 'Memory ', ' memory', 'mem', 'http://hunter2@redis.example.com', 'unix:///tmp/hunter2.sock',
    '/tmp/hunter2.sock', 'redis:hunter2', 'redis://', 'redis:///0', 'redis://:hunter2@', 'redis://:hunter2@:6379',
    'redis://:hunter2@/0', 'redis://:hunter2@redis.example.com:0', 'redis://:hunter2@redis.example.com:65536',
    'redis://:hunter2@redis.example.com:port', 'redis://:hunter2@redis.example.com/db',
    'redis://:hunter2@redis.example.com/-1', 'redis://:hunter2@redis.example.com/1.5',
    'redis://:hunter2@redis.example.com/0/1', 'redis://:hunter2@redis.example.com//0',
    'redis://:hunter2@redis.example.com/2147483648', 'redis://:hunter2@redis.example.com?db=1',
    'redis://:hunter2@redis.example.com/0?', 'redis://:hunter2@redis.example.com#x',
    'redis://:hun#hunter2@redis.example.com', 'redis://:hun?hunter2@redis.example.com',
    'redis://:hunter2/x@redis.example.com', 'redis://hunter2@redis.example.com', 'redis://hunter2:@redis.example.com',
    'redis://:@redis.example.com', 'redis://:hunter2%zz@redis.example.com', 'redis://hunter2%zz:pw@redis.example.com',
    'redis://:hunter2@redis example.com', 'redis://:hunter2@redis.example.com\n',
    'redis://:hunter2@red\tis.example.com', 'redis://:hunter2@redis.exämple.com', 'redis://:hunter2@redis.example.com.',
    'redis://:hunter2@red%41is.example.com', 'redis://:hunter2@[::1', 'redis://:hunter2@[hunter2]',
    'redis://:hunter2@red$is.example.com', 'redis-sentinel://:hunter2@redis.example.com',
    'redis-sentinel://:hunter2@redis.example.com#', 'redis-sentinel://:hunter2@redis.example.com#a b',
    'redis-sentinel://:hunter2@redis.example.com/x#main', 'redis-sentinel://:hunter2@redis.example.com/2147483648#main',
    'redis-sentinel://:hunter2@redis.example.com?db=1#main', 'redis-sentinel://:hunter2@redis.example.com#main#x',
    'redis-sentinel://hunter2@redis.example.com#main', 'redis-sentinel://:hun#ter2@redis.example.com#main',
    'redis-sentinel://:hunter2/x@redis.example.com#main', 'redis-sentinel://:hunter2%zz@redis.example.com#main',
    'redis-cluster://', 'redis-cluster://:hunter2@', 'redis-cluster://:hunter2@redis.example.com/0',
    'redis-cluster://:hunter2@redis.example.com#main', 'redis-cluster://:hunter2@redis.example.com,',
    'redis-cluster://:hunter2@redis.example.com,,redis2.example.com', 'redis-cluster://:hunter2@redis.example.com:0',
    'redis-cluster://:hunter2@redis.example.com:65536', 'redis-cluster://:hunter2@redis.example.com:x',
    'redis-cluster://:hunter2@[hunter2]:7000', 'redis-cluster://:hunter2@redis.example.com?x',
    'redis-cluster://hunter2:@redis.example.com', 'redis-cluster://:hunter2@redis.example.com\n',
    'redis-cluster+tls://:hunter2@redis.example.com', 'redis-replica://:hunter2@redis.example.com',
    'rediss-sentinels://:hunter2@redis.example.com#main'
  ]
  for (const value of bad) {
    const error = configError(() => loadConfig(['--upstream-rs', RS, '--secret', SECRET_A, '--store', value], {}))
    t.same(error.problems, [STORE_RULE], JSON.stringify(value))
    t.notMatch(error.message, /hunter2|redis\.example|\/tmp/, 'not repeated')
  }
  const fromEnv = configError(() => loadConfig([], {
    MCP_GATEWAY_UPSTREAM_RS: RS,
    MCP_GATEWAY_SECRET: SECRET_A,
    MCP_GATEWAY_STORE: 'redis://:hunter2@redis.example.com/x'
  }))
  t.same(fromEnv.problems, [STORE_RULE], 'named by flag and variable')
  t.same(configError(() => loadConfig(['--upstream-rs', RS, '--store'], {})).problems,
    ['--store (MCP_GATEWAY_STORE): needs a value'])
  t.same(configError(() => loadConfig(['--upstream-rs', RS, '--store='], {})).problems, [STORE_RULE],
    'an empty flag is no store, and asks for no secret')
})

t.test('loadConfig: a persistent store needs a configured secret', async (t) => {
  for (const store of [REDIS, 'rediss://cache.example.com']) {
    t.same(configError(() => loadConfig(['--upstream-rs', RS, '--store', store], {})).problems,
      [SECRET_REQUIRED], store)
    const env = { MCP_GATEWAY_UPSTREAM_RS: RS, MCP_GATEWAY_STORE: store, MCP_GATEWAY_SECRET: '' }
    t.same(configError(() => loadConfig([], env)).problems, [SECRET_REQUIRED], 'an empty secret variable is no secret')
  }
  const both = configError(() =>
    loadConfig(['--upstream-rs', RS, '--store', 'redis://:hunter2@redis.example.com/main'], {}))
  t.same(both.problems, [SECRET_REQUIRED, STORE_RULE], 'a bad URL is still a persistent store: both named at once')
  const short = configError(() => loadConfig(['--upstream-rs', RS, '--store', REDIS, '--secret', 'too-short'], {}))
  t.same(short.problems,
    ['--secret (MCP_GATEWAY_SECRET): must be one or more comma-separated secrets of at least 32 characters each'],
    'a bad secret is named once')

  const { gateway, warnings } = load(['--upstream-rs', RS, '--store', REDIS], { MCP_GATEWAY_SECRET: SECRET_A })
  t.equal(gateway.secretGenerated, false)
  t.same(gateway.secrets, [SECRET_A])
  t.notOk(warnings.some((w) => /secret/.test(w)))

  const memory = load(['--upstream-rs', RS, '--store', 'memory'])
  t.equal(memory.gateway.secretGenerated, true, 'memory still runs with a generated secret')
  t.ok(memory.warnings.some((w) => /^no --secret \(MCP_GATEWAY_SECRET\) set: a random secret was generated/.test(w)))
})

t.test('loadConfig: --store-prefix', async (t) => {
  for (const prefix of ['a', 'mcp-gateway:', 'App.v1_x-y:Z9:', 'p'.repeat(64)]) {
    t.equal(load(['--upstream-rs', RS, '--store-prefix', prefix]).gateway.storePrefix, prefix, prefix)
  }
  t.equal(load([], { MCP_GATEWAY_UPSTREAM_RS: RS, MCP_GATEWAY_STORE_PREFIX: 'env:' }).gateway.storePrefix, 'env:',
    'from the environment')
  t.equal(load(['--upstream-rs', RS, '--store-prefix', 'flag:'],
    { MCP_GATEWAY_STORE_PREFIX: 'env:' }).gateway.storePrefix, 'flag:', 'the flag wins')
  t.equal(load([], { MCP_GATEWAY_UPSTREAM_RS: RS, MCP_GATEWAY_STORE_PREFIX: '' }).gateway.storePrefix, 'mcp-gateway:',
    'an empty variable is the default')
  for (const bad of ['', 'p'.repeat(65), 'a b', 'a/b', 'a*', '{tag}', 'prä', 'a\n', ' a']) {
    t.same(configError(() => loadConfig(['--upstream-rs', RS, `--store-prefix=${bad}`], {})).problems, [PREFIX_RULE],
      JSON.stringify(bad))
  }
  t.same(configError(() => loadConfig(['--upstream-rs', RS, '--store-prefix'], {})).problems,
    ['--store-prefix (MCP_GATEWAY_STORE_PREFIX): needs a value'])
})

t.test('loadConfig: --token-cache-ttl from 0 (no cache) to 60000 ms', async (t) => {
  for (const [input, expected] of [['0', 0], ['1', 1], [' 250 ', 250], ['60000', 60000]] as const) {
    t.equal(load(['--upstream-rs', RS, '--token-cache-ttl', input]).gateway.tokenCacheTtl, expected, input)
  }
  t.equal(load([], { MCP_GATEWAY_UPSTREAM_RS: RS, MCP_GATEWAY_TOKEN_CACHE_TTL: '0' }).gateway.tokenCacheTtl, 0,
    'from the environment')
  t.equal(load(['--upstream-rs', RS, '--token-cache-ttl', '10'],
    { MCP_GATEWAY_TOKEN_CACHE_TTL: '20' }).gateway.tokenCacheTtl, 10, 'the flag wins')
  for (const bad of ['60001', '-1', '1.5', '5s', '1e3', 'true', '']) {
    t.same(configError(() => loadConfig(['--upstream-rs', RS, `--token-cache-ttl=${bad}`], {})).problems,
      [TTL_RULE], bad)
  }
})

t.test('parseGatewayOptions: store, storePrefix and tokenCacheTtl', async (t) => {
  const defaults = parseGatewayOptions(PLUGIN).options
  t.same([defaults.store, defaults.storePrefix, defaults.tokenCacheTtl], ['memory', 'mcp-gateway:', 5000])
  const { options, warnings } = parseGatewayOptions({
    ...PLUGIN,
    username: 'a',
    password: 'b',
    secret: SECRET_A,
    store: 'rediss://:hunter2@cache.example.com:6380/3',
    storePrefix: 'tenant-a:',
    tokenCacheTtl: 0
  })
  t.same([options.store, options.storePrefix, options.tokenCacheTtl],
    ['rediss://:hunter2@cache.example.com:6380/3', 'tenant-a:', 0])
  t.same(warnings, [])
  t.equal(parseGatewayOptions({ ...PLUGIN, tokenCacheTtl: '750' }).options.tokenCacheTtl, 750, 'a numeric string')

  t.same(configError(() => parseGatewayOptions({ ...PLUGIN, store: REDIS })).problems,
    ['secret: is required with a persistent store (tokens must survive restarts and work on every replica)'],
    'named as options, not flags')
  const error = configError(() => parseGatewayOptions({
    ...PLUGIN,
    secret: SECRET_A,
    store: 'redis://:hunter2@redis.example.com?tls=1',
    storePrefix: 'a b',
    tokenCacheTtl: 60001
  }))
  t.same(error.problems, [
    STORE_RULE.replace('--store (MCP_GATEWAY_STORE)', 'store'),
    'storePrefix: must be 1 to 64 characters of A-Z, a-z, 0-9, :, _, . and -',
    'tokenCacheTtl: must be an integer from 0 to 60000 (milliseconds)'
  ])
  t.notMatch(error.message, /hunter2|redis\.example/)
  for (const bad of [42, {}, [REDIS], true, '']) {
    const problems = configError(() => parseGatewayOptions({ ...PLUGIN, store: bad })).problems
    t.same(problems, [error.problems[0] as string], JSON.stringify(bad))
  }
  for (const bad of [-1, 1.5, 'x', null]) {
    t.same(configError(() => parseGatewayOptions({ ...PLUGIN, tokenCacheTtl: bad })).problems,
      ['tokenCacheTtl: must be an integer from 0 to 60000 (milliseconds)'], String(bad))
  }
  for (const bad of [['a:'], {}, '']) {
    t.same(configError(() => parseGatewayOptions({ ...PLUGIN, storePrefix: bad })).problems,
      ['storePrefix: must be 1 to 64 characters of A-Z, a-z, 0-9, :, _, . and -'], JSON.stringify(bad))
  }
})

t.test('a store password never appears in an error, a warning or the help', async (t) => {
  const texts: string[] = []
  const collect = (fn: () => unknown) => {
    try {
      const result = fn() as { warnings?: string[], help?: string }
      texts.push(...(result.warnings ?? []), result.help ?? '')
    } catch (error) {
      texts.push(String(error), ...(error instanceof ConfigError ? error.problems : []))
    }
  }
  const urls = [REDIS, 'redis://user:hunter2@redis.example.com:6379/0', 'redis://:hunter2@redis.example.com:6379/0?x',
    'redis://:hunter2#@redis.example.com']
  for (const url of urls) {
    collect(() => loadConfig(['--upstream-rs', RS, '--store', url], {}))
    collect(() => loadConfig(['--upstream-rs', RS, '--store', url, '--secret', SECRET_A], {}))
    collect(() => loadConfig(['--upstream-rs', RS, '--host', '0.0.0.0', '--public-url', 'http://gw.example.com',
      '--store', url, '--secret', SECRET_A], CREDS))
    collect(() => loadConfig([], { MCP_GATEWAY_UPSTREAM_RS: RS, MCP_GATEWAY_STORE: url }))
    collect(() => loadConfig(['--upstream-rs', RS, `--stores=${url}`, url], {}))
    collect(() => loadConfig(['--store', url, '--help'], {}))
    collect(() => parseGatewayOptions({ ...PLUGIN, store: url }))
    collect(() => parseGatewayOptions({ ...PLUGIN, store: url, secret: SECRET_A, stores: url }))
  }
  t.ok(texts.length > 30, `${texts.length} texts checked`)
  t.ok(texts.some((text) => text.includes('--store')), 'the store is named')
  for (const text of texts) t.notMatch(text, /hunter2|redis\.example/)
})
