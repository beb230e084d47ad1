"""``python -m meta``: the ``meta`` command, for environments where the console script is not on PATH."""

if __name__ == "__main__":  # importing the module (tools that import every module) runs nothing
    from meta.cli import main

    main()
