"""Which priority queue should order the neurons? Measured inside the real settle kernel.

Runs event-driven settling with the blocked tournament queue and with the
indexed binary heap on the same networks and inputs, and prints the median
time per settle and the work done (identical for both queues up to ties).

    python benchmarks/bench_queue.py [--samples 50]

Networks: the Fashion-MNIST benchmark network (784 inputs → 500 symmetric
recurrent tanh, ‖W‖₂ = 0.6; contiguous rows, the SIMD path) on generated
inputs, and a random sparse network (5000 neurons, 1% density; scattered
rows). No data needed.
"""

import argparse
import time

import numpy as np

from eventhorizon.datasets import generated_inputs
from eventhorizon.network import RateNetwork
from eventhorizon.settle import settle
from topology.generators import input_recurrent, random_sparse


def _median_ms(network, inputs, scheduler, eps):
    settle(network, inputs[0], eps=eps, scheduler=scheduler)  # compile outside timing
    times, ops = [], 0
    for x in inputs:
        start = time.perf_counter()
        result = settle(network, x, eps=eps, scheduler=scheduler)
        times.append(time.perf_counter() - start)
        ops += result.stats.synaptic_ops
    return 1e3 * float(np.median(times)), ops / len(inputs)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=50)
    args = parser.parse_args()
    cases = {
        "784→500 recurrent (dense rows)": RateNetwork(input_recurrent(784, 500, 0.6, seed=0), "tanh",
                                                    inputs=range(784)),
        "random sparse 5000, 1% (scatter)": RateNetwork(random_sparse(5000, 0.01, seed=0, weight_scale=0.4),
                                                      "tanh", inputs=range(500)),
    }
    print(f"{'network':<36} {'queue':<11} {'ms/settle':>10} {'MACs/settle':>12}")
    for name, network in cases.items():
        inputs = generated_inputs(args.samples, network.n_inputs, seed=1)
        for scheduler in ("tournament", "heap"):
            ms, ops = _median_ms(network, inputs, scheduler, 1e-3)
            print(f"{name:<36} {scheduler:<11} {ms:>10.3f} {ops:>12.0f}")


if __name__ == "__main__":
    main()
