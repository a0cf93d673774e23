// The grant index on the three-node test cluster: each index is one key, so one slot.
process.env.MCP_GATEWAY_TEST_STORE = 'redis'
process.env.MCP_GATEWAY_TEST_REDIS = 'cluster'
await import('../lib/grant-index.test.js')
