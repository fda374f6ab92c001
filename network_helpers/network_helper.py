"""NetworkHelper: what a quantization algorithm may ask of a network, kept apart from the algorithm.

Architecture knowledge lives here as data (`decoder_layer_paths`, `smooth_groups`), so `mindspore_ptq`
never names a Llama layer itself.
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

    @abc.abstractmethod
    def decoder_layers(self, network):
        """[(name, cell)] of the decoder layers, in execution order."""

    @abc.abstractmethod
    def first_layer_inputs(self, network, input_ids):
        """(hidden, *extras) that the first decoder layer receives for `input_ids` in a full forward."""

    @abc.abstractmethod
    def smooth_groups(self):
        """[(preceding cell path, [linear paths])] relative to a decoder layer: whose output feeds which linears.

        The preceding cell's output channels can absorb an activation smoothing factor exactly.
        """
