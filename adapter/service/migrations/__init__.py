"""Alembic migrations of the service's state (SQLite and PostgreSQL alike); run by ``imr-adapter db upgrade``
and, unless ``service.auto_migrate`` is off, when the service or the worker starts."""
