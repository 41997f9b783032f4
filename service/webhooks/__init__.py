"""Webhooks: signed POSTs of document and model events to each API client's callback URL.

``events`` stages an event in the transaction that causes it and queues it
after the commit; ``delivery`` is the rq job that signs (``signing``), checks
the destination (``guard``), POSTs and records each attempt; ``registration``
sets, rotates and removes a client's webhook.
"""
