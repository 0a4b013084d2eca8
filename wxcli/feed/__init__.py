"""The feed: every stored message pushed to the systems that act on it (webhooks, Redis Streams).

Each sink reads the archive from its own cursor (a row id committed only after the sink
acknowledged a batch), so a sink that is down builds a backlog in the database, never in
memory, and never slows receiving; it catches up in order when it is back.
"""
