"""mindspore-ptq: post-training quantization for LLMs on MindSpore."""
from setuptools import find_packages, setup

setup(
    name="mindspore-ptq",
    version="0.1.0",
    description="Post-training quantization (A16W8, SmoothQuant A8W8, KV-cache int8) for Llama-family "
                "networks on MindSpore, in the style of a Golden Stick algorithm plugin.",
    packages=find_packages(include=["mindspore_ptq*", "network_helpers*", "ms_infra*"]),
    python_requires=">=3.9,<3.12",
    install_requires=[
        "mindspore>=2.7.2,<2.11",
        "numpy<2",
        "pyyaml",
        "gguf>=0.10",
        "tqdm",
        "matplotlib",
        "transformers>=4.45",  # the SmolLM2 tokenizer (its GGUF converter, used without torch)
    ],
    package_data={"mindspore_ptq.kernels": ["*.cpp", "*.h"]},  # built on first use (mindspore_ptq.kernels.build)
    entry_points={"console_scripts": ["mindspore-ptq=mindspore_ptq.app.cli:console_main"]},
    extras_require={
        # MindFormers: its YAML reader, tokenizers, EmF1Metric and parallel linears; optional (none serves
        # MindSpore 2.10). Pinned stacks: .ci/stacks/.
        "mindformers": ["mindformers>=1.6,<2"],
        # torch (with transformers' models) is a test oracle only, never a runtime dependency.
        "test": ["pytest", "torch==2.13.0", "accelerate"],
    },
)
