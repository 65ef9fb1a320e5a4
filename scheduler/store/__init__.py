"""The store: every SQL statement of the publishing path, one module per concern, each function ``fn(session, ...)``.

:mod:`.executor` runs them off the event loop, typed.
"""
