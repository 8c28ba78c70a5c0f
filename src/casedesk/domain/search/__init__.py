"""Search over cases and their conversations: the query language (``query``)."""
