"""Cross-cutting plumbing every app uses: service errors, API error format, pagination, currencies.

It holds no models and imports no app, so it sits below `rbac` in the dependency direction.
"""
