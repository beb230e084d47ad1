"""Moving a pipeline between backends (``meta migrate``, docs/migrate.md): the shadow copy and its runs
(``shadow``, ``engine``), the comparison of live and shadow runs (``compare``), the switch and its hand-off slot
(``switch``)."""
