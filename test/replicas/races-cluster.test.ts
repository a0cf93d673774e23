// The two-replica suite of issue 16 again on the three-node test cluster (redis-cluster://, scripts/redis-cluster.mjs).
process.env.MCP_GATEWAY_TEST_REDIS = 'cluster'
await import('./races.test.js')
