"""The request's story: a ``Call`` walks an ordered chain of steps, then dispatch, and back.

- ``call``: the ``Call`` (context, request, route and plan, the client's own body).
- ``step``: the ``Step`` base class and its hooks (before, rewrite, per attempt, on
  the reply, on the stream, finish).
- ``chain``: the ``Corridor`` that runs the steps around dispatch, one method per
  operation (chat, streamed chat, embeddings).
- ``dispatch``: tries the plan's deployments, timing every attempt.
- ``tap``: the one wrapper of a stream (usage, step hooks, the end of the call).
- ``observer``: who is told about attempts and finished requests (logs, records).
"""
