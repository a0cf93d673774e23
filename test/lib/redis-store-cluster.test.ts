// The Redis store's suite again on the three-node test cluster: every script keeps its keys in one slot.
process.env.MCP_GATEWAY_TEST_REDIS = 'cluster'
await import('./redis-store.test.js')
