// replace(), lock() and pub/sub again on the three-node test cluster (issue 16, Redis as teams run it).
process.env.MCP_GATEWAY_TEST_REDIS = 'cluster'
await import('./store-conditional.test.js')
