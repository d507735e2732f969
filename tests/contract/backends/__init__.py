"""One module per store backend under the contract suite.

Each module defines ``NAME`` and ``open_store(tmp_path, schema, options) -> (store, reopen)``
(``reopen`` closes a store and opens it again, or is None for backends that keep nothing), and
may define ``available() -> str | None``: a reason to skip when the backend's server or driver
is missing. Adding a backend to the suite is adding a module here.
"""
