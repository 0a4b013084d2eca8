"""The archive database (peewee): open by URL, models, migrations, ingest and queries.

Importing this package costs peewee (~0.1 s); commands that don't touch the archive never do.
"""
