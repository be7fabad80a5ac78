"""The engine: the ONLY package that imports SpiffWorkflow.

Web, worker, scheduler and CLI call ``certflow.engine.facade.Engine`` and get plain DTOs back.
"""
