"""LR0.FM Explorer engine: low-resolution robustness of zero-shot vision-language models.

Implements Pathak et al., "LR0.FM: Low-Res Benchmark and Improving Robustness for
Zero-Shot Classification in Foundation Models" (ICLR 2025).
"""

__version__ = "0.1.0"
