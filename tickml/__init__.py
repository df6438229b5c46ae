"""The `tickml` command line: demo, serve, stream, feed and simulate."""
