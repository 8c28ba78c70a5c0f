"""Action trace: what each third-party call sent and received, secrets redacted.

The hub builds one record per attempt (``capture``) and appends it to a bounded buffer
(``buffer``); a flusher drains the buffer into the hot store and the queue.
"""
