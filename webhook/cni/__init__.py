"""Pure CNI configuration parsing (no aiohttp, no kubernetes client)."""
