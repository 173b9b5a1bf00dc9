"""Shared test setup: one CPU thread per test process keeps timings predictable on 2 cores."""

import torch

torch.set_num_threads(1)
