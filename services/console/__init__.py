"""The web console: agent console and trade pages, a client of the services' public APIs."""
