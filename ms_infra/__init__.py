"""MindSpore infrastructure shared by the quantization plugin and the networks, depending on neither: atomic
output files, checked checkpoint I/O and tensor-parallel collectives."""
