"""The dashboard ``meta serve`` shows at ``/``: what it reads from the store (``views``), the pages and their
static files (``pages``). The pages hold no data; every figure on them comes from the team-scoped API."""
