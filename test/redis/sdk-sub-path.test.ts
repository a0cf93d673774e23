// The same suite, with the gateway's state in Redis: a sub-path grant survives the trip through the store.
process.env.MCP_GATEWAY_TEST_STORE = 'redis'
await import('../e2e/sdk-sub-path.test.js')
