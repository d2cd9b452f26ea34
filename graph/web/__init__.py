"""The HTTP layer: the /graphql endpoint, request parsing, results, HTTP caching, the dashboard."""
