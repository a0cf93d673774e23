// The issue 22 replica refresh race again on the three-node test cluster (redis-cluster://, scripts/redis-cluster.mjs).
process.env.MCP_GATEWAY_TEST_REDIS = 'cluster'
await import('./refresh-grace.test.js')
