// The limits suite again with the rate limiter (@fastify/rate-limit) and failure counters on the three-node test
// cluster: the limiter shares the store's cluster client (redisClientOf), and must count there, not step aside.
process.env.MCP_GATEWAY_TEST_STORE = 'redis'
process.env.MCP_GATEWAY_TEST_REDIS = 'cluster'
await import('../routes/sign-in-limits.test.js')
