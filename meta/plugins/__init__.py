"""The extension points: hookspecs, the plugin manager, and the contracts plugins implement (``Target``,
``Importer``, ``OpType``). Built-in backends and operators register through these exactly like third parties.
"""
