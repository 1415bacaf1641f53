"""multus-webhook: admission webhook, controller and node agent that make Multus safe to use."""

__version__ = "0.1.0"
