"""A user's model with a residual connection, from training to bit-exact RTL, through flow.compile.

The model is ``fc_out(h + relu(fc_res(h)))`` with ``h = relu(fc_in(x))``: the residual add joins
two branches of unequal latency, so flow forks ``h``, balances the short branch with a FIFO,
and adds the two in lockstep. The script trains it on scikit-learn's breast-cancer (or wine)
data, compiles it, emits SystemVerilog, simulates the whole test split in Verilator with random
gaps and backpressure, and checks flow's promises: 0 mismatches, hardware accuracy equal to the
exact reference's, and measured II and latency equal to the cycle model's.

    python examples/residual_mlp.py                      # breast cancer, fully parallel
    python examples/residual_mlp.py --dataset wine --par 4 --out hw/gen/residual_wine
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.model_selection import train_test_split
from torch import nn

import flow

LOADERS = {"breast_cancer": load_breast_cancer, "wine": load_wine}


class ResidualMLP(nn.Module):
    """x -> relu(fc_in) -> h + relu(fc_res(h)) -> fc_out."""

    def __init__(self, in_features: int, hidden: int, classes: int) -> None:
        super().__init__()
        self.fc_in = nn.Linear(in_features, hidden)
        self.fc_res = nn.Linear(hidden, hidden)
        self.fc_out = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.fc_in(x))
        return self.fc_out(h + torch.relu(self.fc_res(h)))


def load(dataset: str, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A stratified 75/25 split, standardized with the training split's statistics."""
    bunch = LOADERS[dataset]()
    x_train, x_test, y_train, y_test = train_test_split(bunch.data, bunch.target, test_size=0.25,
                                                        random_state=seed, stratify=bunch.target)
    mean, std = x_train.mean(axis=0), x_train.std(axis=0) + 1e-8
    as_x = lambda a: torch.tensor((a - mean) / std, dtype=torch.float32)  # noqa: E731
    return as_x(x_train), torch.tensor(y_train), as_x(x_test), torch.tensor(y_test)


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int, seed: int) -> None:
    torch.manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(epochs):
        for batch in torch.randperm(len(x)).split(32):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
            optimizer.step()
    model.eval()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=sorted(LOADERS), default="breast_cancer")
    parser.add_argument("--hidden", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--par", default="full",
                        help="elements per beat of the hidden stream ('full' or a divisor of --hidden)")
    parser.add_argument("--vectors", type=int, default=None, help="simulate only the first N test vectors")
    parser.add_argument("--out", type=Path, default=Path("hw/gen/residual_mlp"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    x_train, y_train, x_test, y_test = load(args.dataset, args.seed)
    torch.manual_seed(args.seed)
    model = ResidualMLP(x_train.shape[1], args.hidden, int(y_train.max()) + 1)
    train(model, x_train, y_train, args.epochs, args.seed)
    with torch.no_grad():
        float_accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()

    par = args.par if args.par == "full" else int(args.par)
    design = flow.compile(model, x_test[:2], quant={"data_in_frac_width": 4, "data_out_frac_width": 4},
                          parallelism={"fc_in": {"out_par": par}, "fc_res": {"out_par": par}}, name="residual_mlp")
    codes = design.quantize_inputs(x_test)
    reference_accuracy = (design.reference(codes).argmax(1) == y_test).float().mean().item()
    print(f"{args.dataset}: {len(x_test)} test vectors; float accuracy {float_accuracy:.4f}, "
          f"exact reference {reference_accuracy:.4f}")
    print("stages: " + ", ".join(f"{type(s).__name__.removesuffix('Stage').lower()} {s.name}"
                                 for s in design.graph.stages))

    design.emit(args.out, x_test, y_test, source="examples/residual_mlp.py")
    sim = design.simulate(args.out, vectors=args.vectors, log=print)
    checks = {
        "0 mismatches": sim["mismatches"] == 0 and sim["out_beats"] == sim["expected_out_beats"],
        "hardware accuracy equals the reference's": sim["hardware_accuracy"] == sim["reference_accuracy"],
        "II equals the model's": sim["initiation_interval"] == sim["initiation_interval_max"]
        == design.initiation_interval,
        "latency equals the model's": sim["latency_cycles"] == design.latency,
    }
    print(f"model: II {design.initiation_interval}, latency {design.latency}; measured: II "
          f"{sim['initiation_interval']}..{sim['initiation_interval_max']}, latency {sim['latency_cycles']}")
    for check, held in checks.items():
        print(f"  {'PASS' if held else 'FAIL'}  {check}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
