"""CompAlgo: the lifecycle every compression algorithm follows (the Golden Stick contract)."""
import abc


class CompAlgo(abc.ABC):
    """`apply()` prepares (and for PTQ calibrates) a network in place; `convert()` makes it deployable."""

    def __init__(self, config):
        self.config = config

    @abc.abstractmethod
    def apply(self, network, network_helper=None, datasets=None):
        """Transform `network` in place and return it."""

    @abc.abstractmethod
    def convert(self, network):
        """Replace the algorithm's temporary cells with deployable ones; returns `network`."""

    @staticmethod
    def is_converted(network):
        """True once no temporary (calibrating) cell remains in `network`."""
        return not any(hasattr(cell, "quantized") and hasattr(cell, "float_cell")
                       for _, cell in network.cells_and_names())
