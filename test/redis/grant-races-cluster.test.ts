// The same grant races, with the grants on the three-node test cluster (issue 16, Redis as teams run it).
process.env.MCP_GATEWAY_TEST_STORE = 'redis'
process.env.MCP_GATEWAY_TEST_REDIS = 'cluster'
await import('../lib/grant-races.test.js')
