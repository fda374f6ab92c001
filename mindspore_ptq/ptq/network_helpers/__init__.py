"""Golden Stick 0.6's `mindspore_gs.ptq.network_helpers`: the NetworkHelper contract (helpers: mf_net_helpers)."""
from network_helpers.network_helper import NetworkHelper

__all__ = ["NetworkHelper"]
