"""Analysis layer: metrics, tables (and, later, figures) computed from simulation results."""
