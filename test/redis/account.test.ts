// The account page with its sessions, grants and index in Redis.
process.env.MCP_GATEWAY_TEST_STORE = 'redis'
await import('../routes/account.test.js')
