"""A tiny training run that sends itself a signal at a chosen point (run as a subprocess by tests/test_faults.py).

``python tests/fault_run.py SIGNAL:POINT:CALL:CHECKPOINT ...`` imports torch once, then forks one process per
fault (all at once); each arms its fault and trains with ``CONFIG`` to its ``CHECKPOINT``. The parent waits
for them and prints one JSON object ``{"SIGNAL:POINT:CALL:CHECKPOINT": exit code}`` (``-n`` for a process
killed by signal ``n``, 130 after a ``KeyboardInterrupt``, 0 when it finished, 1 on any other error, whose
traceback goes to stderr). ``python tests/fault_run.py cli SIGNAL POINT CALL -- ARGS...`` runs ``unroll
ARGS`` with one fault in the process itself (exit 130 after a ``KeyboardInterrupt``).

SIGNAL: ``SIGINT`` (one Ctrl-C), ``SIGINT2`` (two in a row), ``SIGTERM`` or ``SIGKILL``. POINT and CALL: the
CALL-th (1-based) occurrence of POINT sends it:

- ``draw``: before the diffusion times are drawn (the minibatch indices already are);
- ``forward``: before the DSM loss (the times drawn, the noise not yet);
- ``update``: just after ``optimizer.step()`` (parameters updated, the step not yet counted);
- ``save``: in the middle of writing a checkpoint (half of its bytes are in the temporary file).

Each event is one call in one step, so the fault lands at an exact place: no timing, no sleeps. Forking
after the imports and a warm-up run (one torch thread, so no thread pool is copied half-way) saves each
process the ~1.5 s import and ~1 s of first-run costs.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import traceback

import torch

from unroll.data.gp import GaussianProcess
from unroll.data.kernels import kernel_from_name
from unroll.experiments import checkpoint as checkpoint_module
from unroll.experiments import trainer
from unroll.experiments.models import build_model
from unroll.experiments.trainer import TrainConfig, TrainResult, seeded_model, train

FRAMES, DIM = 6, 2
#: 12 steps, a checkpoint every 4 (at steps 4, 8 and 12)
CONFIG = TrainConfig(steps=12, batch_size=8, warmup=2, seed=3, checkpoint_every=4, progress=False)


def build() -> torch.nn.Module:
    return build_model("dit", FRAMES, DIM, width=16, blocks=1, heads=2)


def training_set() -> torch.Tensor:
    gp = GaussianProcess(kernel_from_name("gamma-exponential", nu=1.0, ell=3.0), FRAMES, torch.eye(DIM))
    return gp.sample(32, generator=torch.Generator().manual_seed(0))


def run(checkpoint: str | os.PathLike | None) -> TrainResult:
    """The run every fault interrupts: same init, data and config each time (float64 default dtype, as in tests)."""
    return train(seeded_model(build, 0), training_set(), CONFIG, checkpoint=checkpoint, model_kind="dit")


def _send(name: str) -> None:
    if name == "SIGINT2":
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)
    else:
        os.kill(os.getpid(), getattr(signal, name))


def arm(name: str, point: str, call: int) -> None:
    """Patch the function behind ``point`` so that its ``call``-th call sends the signal ``name``."""
    calls = [0]

    def due() -> bool:
        calls[0] += 1
        return calls[0] == call

    if point in ("draw", "forward"):
        attribute = {"draw": "sample_diffusion_times", "forward": "dsm_loss"}[point]
        real = getattr(trainer, attribute)

        def before(*args, **kwargs):
            if due():
                _send(name)
            return real(*args, **kwargs)

        setattr(trainer, attribute, before)
    elif point == "update":
        real_step = torch.optim.AdamW.step

        def step_then_signal(self, *args, **kwargs):
            result = real_step(self, *args, **kwargs)
            if due():
                _send(name)
            return result

        torch.optim.AdamW.step = step_then_signal
    elif point == "save":
        real_write = checkpoint_module.atomic_write

        def half_written(path, write):
            if not due():
                return real_write(path, write)

            def interrupted(temporary: str) -> None:
                write(temporary)
                os.truncate(temporary, os.path.getsize(temporary) // 2)
                _send(name)
                write(temporary)  # a deferred Ctrl-C lets the write finish

            return real_write(path, interrupted)

        checkpoint_module.atomic_write = half_written
    else:
        raise ValueError(f"unknown fault point {point!r}")


def _faulty_child(spec: str) -> None:
    """In a forked process: arm the fault of ``spec`` and train; never returns."""
    code = 1
    try:
        name, point, call, checkpoint = spec.split(":", 3)
        arm(name, point, int(call))
        run(checkpoint)
        code = 0
    except KeyboardInterrupt:
        code = 130
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def faults(specs: list[str]) -> dict[str, int]:
    """Fork one process per fault spec, wait for all; ``{spec: exit code}``."""
    children = {}
    for spec in specs:
        pid = os.fork()
        if pid == 0:
            _faulty_child(spec)
        children[spec] = pid
    return {spec: os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for spec, pid in children.items()}


def main(argv: list[str]) -> int:
    torch.set_default_dtype(torch.float64)
    torch.set_num_threads(1)
    if argv[0] != "cli":
        run(None)  # warm-up: the first run's one-off costs (~1 s) are paid once, before the forks
        print(json.dumps(faults(argv)), flush=True)
        return 0
    from unroll.cli import main as unroll_main

    arm(argv[1], argv[2], int(argv[3]))
    try:
        return unroll_main(argv[argv.index("--") + 1:])
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
