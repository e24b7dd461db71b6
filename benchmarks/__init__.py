"""Measuring lmtk: speed, memory and data loading (not installed with the package).

``tools/benchmark.py`` is the command line (docs/performance.md); :mod:`benchmarks.speed` times animation
and training under the fast paths of :mod:`lmtk.fast_paths`, :mod:`benchmarks.data_loading` the training
data loader; ``gpu_benchmark.sh`` / ``gpu_benchmark.py`` run one GPU session's measurements and
``measure_animation_memory.py`` the Animator's speed and memory against a naive loop.
"""
