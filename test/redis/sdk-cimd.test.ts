// The same suite, with the gateway's state in Redis: the cached metadata document and the grant live in the store.
process.env.MCP_GATEWAY_TEST_STORE = 'redis'
await import('../e2e/sdk-cimd.test.js')
