"""The edge of the service layer: everything that speaks HTTP to SignalWire."""
