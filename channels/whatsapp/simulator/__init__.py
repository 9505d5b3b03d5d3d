"""A stand-in for Meta's WhatsApp platform that speaks the Cloud API, so the adapter is exercised for real.

It serves the Graph endpoints (``/graph/{version}/{phone_number_id}/messages``, media), delivers signed
webhooks with retries, enforces WhatsApp's own rules (24 h window, templates, throughput) and plays the
contacts' phones in a web page (``/simulator/``), a CLI and a load generator.
"""

from channels.whatsapp.simulator.app import create_simulator_app
from channels.whatsapp.simulator.model import Business, StaticDirectory, Template
from channels.whatsapp.simulator.platform import Simulator, SimulatorSettings

__all__ = [
    "Business",
    "Simulator",
    "SimulatorSettings",
    "StaticDirectory",
    "Template",
    "create_simulator_app",
]
