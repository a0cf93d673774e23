// The same suite, with the gateway's state in Redis: one person's grants share upstream tokens there too.
process.env.MCP_GATEWAY_TEST_STORE = 'redis'
await import('../routes/upstream-token-sharing.test.js')
