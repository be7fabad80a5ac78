"""The Celery side: the app, its tasks and the beat schedule. Thin glue over the facade."""
