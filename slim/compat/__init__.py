"""Small, documented workarounds for third-party library behaviour.

Each module here patches one thing, only where it is needed, and has a test in
``tests/methods/`` that fails when the workaround stops being needed (upstream
fixed) or stops working, so it can be deleted rather than carried forever.
"""
