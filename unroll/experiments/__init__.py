"""Experiments: trained score models against the hand-built construction, and the references they are held to.

Training: ``models`` (softmax DiT, temporal U-Net, wrappers), ``relu`` (the generic ReLU
``unroll.Transformer`` as a trainable score model), ``trainer`` (denoising score matching with exact
resume and early stopping), ``checkpoint`` (checkpoint files with a SHA-256 integrity record),
``parameterisation`` (the noise parameterisation s = -N(x, t)/sigma_t), ``run`` (one training and every
measurement of it, as an independent task), ``executor`` (local processes or a Dask cluster for those tasks).

Measurements and references: ``heldout`` (the fixed held-out set and the score error on it),
``linear_response`` (a score network's Jacobian against the exact precision), ``attention`` (attention maps and
their alignment with the temporal kernel), ``probes`` (layer probes), ``plugin`` (the closed-form score with a
maximum-likelihood covariance), ``distribution`` (sampling, covariance error, exact KL for linear scores).

Designs and verdicts: ``compare`` (the comparison of record), ``sweeps`` (error vs H, model size, decay),
``claims`` (paired intervals, verdicts, the log-log fit), ``sample_complexity`` (the error-vs-n design: early
stopping, an infinite-data floor, a verdict on the n^(-1/2) rate), ``video`` (moving-ball clips).
Their figures are in ``unroll.figures.comparison``.
"""

__all__: list[str] = []  # the names live in the sub-modules above
