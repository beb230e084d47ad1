"""Turning what people write into pipelines: YAML with positions, the authoring form, dynamic generation, the
Python DSL, JSON Schema, the loader, and the YAML writer.
"""
