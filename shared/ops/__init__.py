"""``escrowctl``: the operator's tool (``python -m shared.ops``); see docs/operations.md."""
