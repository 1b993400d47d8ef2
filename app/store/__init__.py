"""The SQL store: the single source of truth (SQLAlchemy 2 async, SQLite or PostgreSQL)."""
