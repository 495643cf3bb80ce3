"""A faithful stand-in for the part of Twilio that confctl uses: REST API, call model, callbacks.

A separate ring: it imports nothing from confctl's domain, service, adapters or entry packages.
"""

from confctl.simulator.app import Simulator, SimulatorConfig, create_simulator

__all__ = ["Simulator", "SimulatorConfig", "create_simulator"]
