// The same suite, with the gateway's state in Redis (issue 15: bounds hold across replicas, through Lua scripts).
process.env.MCP_GATEWAY_TEST_STORE = 'redis'
await import('../routes/store-bounds.test.js')
