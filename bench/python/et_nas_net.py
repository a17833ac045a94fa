"""The ET-NAS network of a basic-block encoding, written in plain PyTorch.

Mirrors zoo/builder/network.cpp for the block family ``0w0-`` (two 3x3
convolutions, no extra connections; see docs/search-space.md), e.g. the
ResNet-like ``020-_16_11-21-21``:

- stem: three 3x3 conv+BN+ReLU, 3 -> C0/2 (stride 2), C0/2 -> C0/2,
  C0/2 -> C0 (stride 2);
- one basic block per macro digit (the digit multiplies the running width, a
  '-' before it makes the block stride 2): conv3x3+BN+ReLU, conv3x3+BN, the
  residual add (through 1x1 conv+BN when width or stride differ), ReLU;
- global average pool, linear layer with bias.

Convolutions have no bias, as in the C++ builder, so that the parameter count
equals `nasoa-zoo info ENCODING --classes N --input S`.
"""
import torch
from torch import nn


class ConvBn(nn.Sequential):
    def __init__(self, cin, cout, kernel, stride):
        super().__init__(nn.Conv2d(cin, cout, kernel, stride, padding=kernel // 2, bias=False),
                         nn.BatchNorm2d(cout))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride, mid):
        super().__init__()
        self.conv1 = ConvBn(cin, mid, 3, stride)
        self.conv2 = ConvBn(mid, cout, 3, 1)
        self.proj = ConvBn(cin, cout, 1, stride) if (cin != cout or stride != 1) else None

    def forward(self, x):
        y = self.conv2(torch.relu(self.conv1(x)))
        return torch.relu(y + (self.proj(x) if self.proj is not None else x))


def parse(encoding):
    """(block, c0, [(multiplier, stride), ...]) of an encoding BLOCK_C0_MACRO."""
    block, c0, macro = encoding.split("_")
    layers, _, connections = block.partition("-")
    if len(layers) != 3 or layers[0] != "0" or layers[2] != "0" or connections:
        raise ValueError(f"{encoding}: only blocks '0w0-' (two 3x3 convs) are written here")
    blocks, stride = [], 1
    for ch in macro:
        if ch == "-":
            stride = 2
            continue
        if ch not in "124":
            raise ValueError(f"{encoding}: bad macro digit {ch!r}")
        blocks.append((int(ch), stride))
        stride = 1
    return int(layers[1]), int(c0), blocks


class ETNasNet(nn.Module):
    def __init__(self, encoding, num_classes):
        super().__init__()
        width_digit, c0, blocks = parse(encoding)
        self.stem = nn.Sequential(
            ConvBn(3, c0 // 2, 3, 2), nn.ReLU(inplace=True),
            ConvBn(c0 // 2, c0 // 2, 3, 1), nn.ReLU(inplace=True),
            ConvBn(c0 // 2, c0, 3, 2), nn.ReLU(inplace=True))
        body, width = [], c0
        for multiplier, stride in blocks:
            out = width * multiplier
            body.append(BasicBlock(width, out, stride, out * 2 ** width_digit // 4))
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
    p = argparse.ArgumentParser(description="parameter count of an ET-NAS basic-block network")
    p.add_argument("encoding", nargs="?", default="020-_16_11-21-21")
    p.add_argument("--classes", type=int, default=10)
    a = p.parse_args()
    print(parameter_count(ETNasNet(a.encoding, a.classes)))
