"""Trained score models against the hand-built construction (issue 5).

Sub-modules: ``models`` (softmax DiT, temporal U-Net, wrappers), ``relu`` (the generic ReLU
``unroll.Transformer`` as a trainable score model), ``trainer`` (denoising score matching with exact
resume and early stopping), ``checkpoint`` (checkpoint files with a SHA-256 integrity record),
``attention`` (attention maps and their alignment with the temporal kernel),
``parameterisation`` (the noise parameterisation s = -N(x, t)/sigma_t), ``heldout`` (the fixed held-out set and
the score error on it), ``compare`` (the comparison of record), ``sweeps`` (error vs H, model size, decay),
``claims`` (paired intervals, verdicts, the log-log fit), ``sample_complexity`` (the error-vs-n design: early
stopping, an infinite-data floor, a verdict on the n^(-1/2) rate), ``distribution`` (sampling, covariance error,
exact KL for linear scores), ``video`` (moving-ball clips), ``figures``.
"""
