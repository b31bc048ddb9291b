"""Integrations with web frameworks and ORMs, one module each, each needing its own extra:
``fastapi`` (``typed-queues[fastapi]``), ``django`` (``[django]``), ``sqlalchemy``
(``[sqlalchemy]``). Nothing here is imported by the runtime itself, so a worker deployment
carries none of these frameworks."""
