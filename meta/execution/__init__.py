"""One attempt of one task, the same on every backend: processes and timeouts, output capture, python callables,
SQL and its connections, secret resolution and redaction.
"""
