// The same races, with the grants in Redis (issue 16 item 1: the reported failures were on Redis).
process.env.MCP_GATEWAY_TEST_STORE = 'redis'
await import('../lib/grant-races.test.js')
