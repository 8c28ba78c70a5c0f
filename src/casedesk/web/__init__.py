"""The web pages: the agents' workbench and the admins' screens, rendered on the server.

Pages call the same activities as the API; they hold no business rule of their own.
"""
