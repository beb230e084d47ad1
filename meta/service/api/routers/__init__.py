"""One module per resource; each router declares its auth dependency on every route (a test walks app.routes)."""
