// The same suite, with the gateway's state and rate-limit counters in Redis: limits must hold across replicas.
process.env.MCP_GATEWAY_TEST_STORE = 'redis'
await import('../routes/bad-input.test.js')
