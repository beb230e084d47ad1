"""Backend-neutral shared operators: idempotent warehouse loads and alerts (registered by ``plugin``)."""
