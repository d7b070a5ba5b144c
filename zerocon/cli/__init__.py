"""The ``zerocon`` command line: ``zerocon edit``, ``zerocon demo``, ``zerocon direction``.

Entry point: ``zerocon.cli.main.main``.
"""
