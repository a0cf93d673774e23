import t from 'tap'
import { parseRedisUrl } from '../../lib/stores/redis-url.js'

// What each accepted store URL hands ioredis (the refused ones are listed in config/store.test.ts).

t.test('redis:// and rediss:// go to ioredis exactly as written', async (t) => {
  for (const url of ['redis://:hunter2@cache.example.com:6380/2', 'rediss://gateway:p%40ss@cache.example.com']) {
    t.same(parseRedisUrl(url), { mode: 'standalone', url })
  }
})

t.test('redis-sentinel://: every Sentinel (port 26379 unless given), the master name, its database and credentials', async (t) => {
  t.same(parseRedisUrl('redis-sentinel://gateway:p%40ss@s1.example.com,s2.example.com:26380,[::1]:26381/3#main'), {
    mode: 'sentinel',
    options: {
      sentinels: [{ host: 's1.example.com', port: 26379 }, { host: 's2.example.com', port: 26380 }, { host: '::1', port: 26381 }],
      name: 'main',
      db: 3,
      username: 'gateway',
      password: 'p@ss'
    }
  })
  t.same(parseRedisUrl('redis-sentinel://:hunter2@s1#main'), { mode: 'sentinel', options: { sentinels: [{ host: 's1', port: 26379 }], name: 'main', db: 0, password: 'hunter2' } },
    'a password alone is the default user\'s')
  t.same(parseRedisUrl('rediss-sentinel://s1/#main'), {
    mode: 'sentinel',
    options: { sentinels: [{ host: 's1', port: 26379 }], name: 'main', db: 0, tls: {}, sentinelTLS: {}, enableTLSForSentinelMode: true }
  }, 'rediss-: TLS to the Sentinels and to the master')
})

t.test('redis-cluster://: startup nodes (port 6379 unless given) and the credentials of every node', async (t) => {
  t.same(parseRedisUrl('redis-cluster://127.0.0.1:7101,127.0.0.1:7102,node3'), {
    mode: 'cluster',
    nodes: [{ host: '127.0.0.1', port: 7101 }, { host: '127.0.0.1', port: 7102 }, { host: 'node3', port: 6379 }],
    redisOptions: {}
  })
  t.same(parseRedisUrl('rediss-cluster://gateway:a%3Ab%2Fc@cfg.example.com:6380/'), {
    mode: 'cluster',
    nodes: [{ host: 'cfg.example.com', port: 6380 }],
    redisOptions: { username: 'gateway', password: 'a:b/c', tls: {} }
  })
})

t.test('anything else is no Redis URL', async (t) => {
  for (const value of ['memory', 'redis-cluster://n1/0', 'redis-sentinel://n1', 'redis-cluster://:@n1', 'redis-sentinel://n1:0#m', 'http://n1']) {
    t.equal(parseRedisUrl(value), undefined, value)
  }
})
