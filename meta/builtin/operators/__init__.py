"""Backend-neutral shared operators: idempotent warehouse loads and alerts (registered by meta.builtin.operators.plugin)."""
