"""typed-queues: a typed, code-generated job queue for Python on PostgreSQL.

The library lives in two subpackages: ``typed_queues.runtime`` (the queue, workers, CLI) and
``typed_queues.codegen`` (catalogue -> typed code, an optional extra). This module imports
neither, so that importing the generator never loads the runtime and the other way round.
"""

__all__: list[str] = []
