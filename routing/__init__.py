"""Routing: ordered rules (conditions → actions), assignment to agents, business hours.

Imports ``inbox`` only; the gateway wires ``RoutingHook`` into the inbound pipeline.
"""
