"""The ET-NAS network of any encoding, written in plain PyTorch.

Mirrors zoo/search_space/network_plan.cpp and zoo/builder/network.cpp for the
whole grammar of docs/search-space.md, e.g. the ResNet-like
``020-_16_11-21-21`` or the zoo's ``024-_32_11-22-1``:

- stem: three 3x3 conv+BN+ReLU, 3 -> C0/2 (stride 2), C0/2 -> C0/2,
  C0/2 -> C0 (stride 2);
- one block per macro digit (the digit multiplies the running width, a '-'
  before it makes the block stride 2). Layer i reads node i-1 and writes node
  i: a convolution of its op (each followed by BN), then its incoming
  connections (by target node; the residual add 0 -> last always last), then
  ReLU. An add whose sides differ in width or resolution projects its source
  through 1x1 conv+BN; a concat puts the source's channels first;
- global average pool, linear layer with bias.

Convolutions have no bias, as in the C++ builder, so that the parameter count
equals `nasoa-zoo info ENCODING --classes N --input S`.
"""
import torch
from torch import nn

OPS = "0123456"  # conv3x3, conv1x1, groups 2, groups 4, depthwise-like, 32 per group, separable


class ConvBn(nn.Module):
    def __init__(self, op, cin, cout, stride, groups):
        super().__init__()
        if op == "6":  # separable: depthwise 3x3 (in -> in), then a dense 1x1, then one BN
            self.conv = nn.Sequential(nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False),
                                      nn.Conv2d(cin, cout, 1, bias=False))
        else:
            kernel = 1 if op == "1" else 3
            self.conv = nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return self.bn(self.conv(x))


def groups_for(op, cin):
    return {"0": 1, "1": 1, "2": 2, "3": 4, "4": cin, "6": cin, "5": cin // min(32, cin)}[op]


class Block(nn.Module):
    def __init__(self, layers, connections, cin, cout, stride):
        super().__init__()
        # The stride goes on the first layer that is not a 1x1 conv (the last if all are).
        strided = next((i + 1 for i, (op, _) in enumerate(layers) if op != "1"), len(layers))
        node_stride = lambda node: stride if node >= strided else 1  # noqa: E731
        ordered = sorted(connections, key=lambda c: c[2]) + [("a", 0, len(layers))]
        widths, self.layers, self.projections, self.plan = [cin], nn.ModuleList(), nn.ModuleList(), []
        for i, (op, width_code) in enumerate(layers, start=1):
            layer_in = widths[-1]
            layer_out = cout if i == len(layers) else (cout << width_code) // 4
            self.layers.append(ConvBn(op, layer_in, layer_out, stride if i == strided else 1,
                                      groups_for(op, layer_in)))
            width, incoming = layer_out, []
            for kind, src, dst in (c for c in ordered if c[2] == i):
                differs = node_stride(src) != node_stride(i)
                projection = None
                if kind == "a" and (differs or widths[src] != width):
                    projection = ConvBn("1", widths[src], width, stride if differs else 1, 1)
                elif kind == "c":
                    if differs:
                        projection = ConvBn("1", widths[src], widths[src], stride, 1)
                    width += widths[src]
                incoming.append((kind, src, len(self.projections)))
                self.projections.append(projection if projection is not None else nn.Identity())
            self.plan.append(incoming)
            widths.append(width)

    def forward(self, x):
        nodes = [x]
        for layer, incoming in zip(self.layers, self.plan):
            y = layer(nodes[-1])
            for kind, src, p in incoming:
                s = self.projections[p](nodes[src])
                y = y + s if kind == "a" else torch.cat([s, y], 1)
            nodes.append(torch.relu(y))
        return nodes[-1]


def parse(encoding):
    """(layers [(op, width code)], connections [(kind, from, to)], c0, macro [(multiplier, stride)])."""
    block, c0, macro = encoding.split("_")
    digits, _, links = block.partition("-")
    if len(digits) % 2 != 1 or any(d not in OPS for d in digits[::2]):
        raise ValueError(f"{encoding}: bad layers {digits!r}")
    layers = [(digits[i], int(digits[i + 1]) if i + 1 < len(digits) else None) for i in range(0, len(digits), 2)]
    connections = [(links[i], int(links[i + 1]), int(links[i + 2])) for i in range(0, len(links), 3)]
    blocks, stride = [], 1
    for ch in macro:
        if ch == "-":
            stride = 2
            continue
        if ch not in "124":
            raise ValueError(f"{encoding}: bad macro digit {ch!r}")
        blocks.append((int(ch), stride))
        stride = 1
    return layers, connections, int(c0), blocks


class ETNasNet(nn.Module):
    def __init__(self, encoding, num_classes):
        super().__init__()
        layers, connections, c0, blocks = parse(encoding)
        self.stem = nn.Sequential(
            ConvBn("0", 3, c0 // 2, 2, 1), nn.ReLU(inplace=True),
            ConvBn("0", c0 // 2, c0 // 2, 1, 1), nn.ReLU(inplace=True),
            ConvBn("0", c0 // 2, c0, 2, 1), nn.ReLU(inplace=True))
        body, width = [], c0
        for multiplier, stride in blocks:
            out = width * multiplier
            body.append(Block(layers, connections, width, out, stride))
            width = out
        self.body = nn.Sequential(*body)
        self.head = nn.Linear(width, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.body(self.stem(x))
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def parameter_count(model):
    return sum(p.numel() for p in model.parameters())


if __name__ == "__main__":
    import argparse
    p = argparse.ArgumentParser(description="parameter count of an ET-NAS network")
    p.add_argument("encoding", nargs="*", default=["020-_16_11-21-21"])
    p.add_argument("--classes", type=int, default=10)
    a = p.parse_args()
    for e in a.encoding:
        print(f"{e}\t{parameter_count(ETNasNet(e, a.classes))}")
