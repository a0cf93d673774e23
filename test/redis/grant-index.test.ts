// The grant index on Redis: its conditional writes are Redis's scripts there.
process.env.MCP_GATEWAY_TEST_STORE = 'redis'
await import('../lib/grant-index.test.js')
