"""HTTP and WebSocket edges (quart-trio), wire formats, OMA errors and the command line."""
