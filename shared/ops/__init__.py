"""``escrowctl``: the operator's tool (``python -m shared.ops``); see docs/operations.md. The
operator layer, above the services: it may import them, they never import it."""
