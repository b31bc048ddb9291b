"""queues.yaml -> the typed SDK package (``generated/``). Pure: never touches a database.

Entry points: ``typed_queues.codegen.cli.main`` (the ``queues generate`` command) and
``typed_queues.codegen.generator.generate_files`` (the rendered tree, in memory).
"""
