"""Golden Stick 0.6's `mf_net_helpers`: the MindFormers-YAML helper as Golden Stick's scripts use it."""
import network_helpers


class MFParallelLlama2Helper(network_helpers.MFParallelLlama2Helper):
    """`network_helpers.MFParallelLlama2Helper` with Golden Stick's two habits: `create_network()` first applies
    the YAML's `context` (mode, device), and the config is also reachable as `mf_config`."""

    @property
    def mf_config(self):
        return self.config

    def create_network(self, load_checkpoint=True):
        self.set_context()
        return super().create_network(load_checkpoint)


# The helper reads `model.arch.type: LlamaForCausalLM` YAMLs too (the same cell tree and parameter names).
MFLlama2Helper = MFParallelLlama2Helper

__all__ = ["MFLlama2Helper", "MFParallelLlama2Helper"]
