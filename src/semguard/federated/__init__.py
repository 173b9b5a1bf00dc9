"""Federated training of semantic codecs (Flower apps, robust aggregation, client attacks, DP).

The maths (aggregation rules, attacks, partitions) are pure functions over stacked
``[clients, params]`` tensors; the engines (in process, Flower simulation, Flower deployment) only
orchestrate them, so the same client code and the same aggregation run under all three.
"""
