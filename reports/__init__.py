"""Reports: facts written as the events happen (``facts``), rebuilt from the event log (``rebuild``),
and read per period, bucket and filter (``queries``).

Imports ``inbox`` and ``routing`` (business hours); the gateway wires the hook and serves the API.
"""
