"""queues.yaml -> the typed SDK package (``generated/``). Pure: never touches a database.

Entry points: ``codegen.cli.main`` (the ``queues generate`` command) and
``codegen.generator.generate_files`` (the rendered tree, in memory).
"""
