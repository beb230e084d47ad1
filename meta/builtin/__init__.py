"""meta's own plugins, registered like third-party ones: the embedded ``local`` backend and the shared operators
(warehouse loads, alerts).
"""
