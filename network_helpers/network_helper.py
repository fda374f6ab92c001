"""NetworkHelper: what a quantization algorithm may ask of a network, kept apart from the algorithm.

Architecture knowledge lives in `layouts` as data, so `mindspore_ptq` never names a Llama layer itself.
"""
import abc


class NetworkHelper(abc.ABC):
    """The contract between a network family and `mindspore_ptq` (the Golden Stick NetworkHelper role)."""

    @abc.abstractmethod
    def create_network(self):
        """Build the network and load `load_checkpoint` if the config names one."""

    @abc.abstractmethod
    def get_spec(self, name):
        """A model/runtime spec by name (batch_size, seq_length, ...); KeyError lists the valid names."""

    @abc.abstractmethod
    def create_tokenizer(self):
        """The tokenizer described by the config."""

    @abc.abstractmethod
    def generate(self, network, input_ids, max_new_tokens=None, **kwargs):
        """Generate from padded or ragged prompts; returns prompt + new token arrays."""

    @property
    @abc.abstractmethod
    def layout(self):
        """Architecture data for the algorithm (see `network_helpers.layouts`)."""
