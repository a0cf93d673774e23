// The same suite, with the gateway's state in Redis (issue: nothing lost on restart, replicas share state).
process.env.MCP_GATEWAY_TEST_STORE = 'redis'
await import('../routes/authorize.test.js')
