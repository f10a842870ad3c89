"""Helpers of the reliability suite: targets, private servers, fault injection, figures.

The suite itself is the ``test_*.py`` modules beside this package; see
``reliability/README.md``.
"""
