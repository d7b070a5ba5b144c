"""The ``zerocon`` command line: ``zerocon edit``, ``zerocon demo``, ``zerocon direction``.

Entry point: :func:`zerocon.cli.main.main`.
"""
