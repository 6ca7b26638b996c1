"""The domain floor every service's aggregates stand on: the aggregate base, domain errors
and the acting party. It imports nothing but ``shared.contracts`` (and pydantic), so a
domain model loads no web framework, driver or broker; the adapters map its errors to
HTTP answers or dead letters."""
