"""The chaos soak: random faults against real worker processes, then a history check.

``python -m tests.chaos --minutes N --seed S`` (or ``nox -s chaos -- ...``) runs it; see
``controller`` for the sequence and ``checker`` for what is verified.
"""
