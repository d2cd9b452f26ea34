"""What the tests share: servers, databases, Redis processes, API clients."""
