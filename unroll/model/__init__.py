"""The network: generic ``torch.nn.Module``s that know nothing about Gaussian processes.

- ``transformer``: ``Transformer``, blocks of ReLU (or softmax) attention heads with residual connections over
  tokens ``(..., H, D)``;
- ``banded``: attention restricted to a band ``|i - j| <= w``, in chunks, for long sequences.

Every piece of knowledge of the construction lives in the weights ``unroll.construction`` writes.
"""

__all__: list[str] = []  # the names live in the sub-modules above
