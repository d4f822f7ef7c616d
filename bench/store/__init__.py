"""The results store (aspect 11, arts 5-1 and 3-6): every run appended to a database so runs can be
compared across meters, meter models and firmware versions. SQLite by default, PostgreSQL for a lab
with several benches; SQLAlchemy underneath."""
