"""The simulation core: SimPy model, signals, energy accounting. Imports only simpy, numpy and the stdlib."""
