"""The held-out-LLM protocol (method.md section 3): what each party may see
(``views``), the one-program protocol and its sharded sweep, and host-side
statistics and summaries. Imports ``core`` and ``estimators``.
"""
