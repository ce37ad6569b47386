"""The baselines' networks, written by hand the way a PyTorch user would write them.

Each class has exactly the parameters of the netspec spec of the same name (tests/test_bench_models.py
checks the counts, the output shapes and, with the weights copied across, the outputs), so the
benchmarks compare the same network built two ways.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LeNet5(nn.Module):
    """specs/lenet5.yaml: tanh and average pooling, 32x32 grey images."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x):
        x = F.avg_pool2d(torch.tanh(self.conv1(x)), 2)
        x = F.avg_pool2d(torch.tanh(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        x = torch.tanh(self.fc1(x))
        x = torch.tanh(self.fc2(x))
        return self.fc3(x)


class DigitsCNN(nn.Module):
    """specs/digits_cnn.yaml: three conv-bn-relu layers, two poolings, a two-layer head."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1),
            nn.BatchNorm2d(32),
            nn.ReLU(inplace=True),
            nn.Conv2d(32, 32, 3, padding=1),
            nn.BatchNorm2d(32),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.BatchNorm2d(64),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(0.3),
            nn.Linear(64 * 2 * 2, 128),
            nn.ReLU(inplace=True),
            nn.Dropout(0.3),
            nn.Linear(128, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


class LSTMClassifier(nn.Module):
    """specs/lstm_classifier.yaml: a 2-layer bidirectional LSTM averaged over time, then an MLP head."""

    def __init__(self, features: int = 6, hidden: int = 64, num_classes: int = 4):
        super().__init__()
        self.lstm = nn.LSTM(features, hidden, num_layers=2, batch_first=True, dropout=0.2, bidirectional=True)
        self.dropout = nn.Dropout(0.2)
        self.head = nn.Linear(2 * hidden, 32)
        self.logits = nn.Linear(32, num_classes)

    def forward(self, x):  # x: (B, T, F)
        out, _ = self.lstm(x)
        x = self.dropout(out.mean(dim=1))
        return self.logits(F.relu(self.head(x)))


class DigitsLSTM(nn.Module):
    """specs/digits_lstm.yaml: an LSTM over the 8 rows of a digit, classifying from its last state."""

    def __init__(self, features: int = 8, hidden: int = 64, num_classes: int = 10):
        super().__init__()
        self.lstm = nn.LSTM(features, hidden, batch_first=True)
        self.logits = nn.Linear(hidden, num_classes)

    def forward(self, x):  # x: (B, T, F)
        _, (h, _) = self.lstm(x)
        return self.logits(h[-1])


class BasicBlock(nn.Module):
    """torchvision's ResNet BasicBlock."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet18(nn.Module):
    """specs/resnet18.yaml, torchvision-style: a 7x7 stem, four stages of two BasicBlocks."""

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = self._make_layer(64, 2)
        self.layer2 = self._make_layer(128, 2, stride=2)
        self.layer3 = self._make_layer(256, 2, stride=2)
        self.layer4 = self._make_layer(512, 2, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512, num_classes)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )
        layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class VGG16(nn.Module):
    """specs/vgg16.yaml, torchvision's VGG-16 (configuration D, no batch norm)."""

    cfg = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for v in self.cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(channels, v, 3, padding=1), nn.ReLU(inplace=True)]
                channels = v
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096),
            nn.ReLU(True),
            nn.Dropout(0.5),
            nn.Linear(4096, 4096),
            nn.ReLU(True),
            nn.Dropout(0.5),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


MODELS = {
    "lenet5": LeNet5,
    "digits_cnn": DigitsCNN,
    "lstm_classifier": LSTMClassifier,
    "digits_lstm": DigitsLSTM,
    "resnet18": ResNet18,
    "vgg16": VGG16,
}


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def copy_weights(src: nn.Module, dst: nn.Module) -> None:
    """Copy src's parameters and buffers into dst, matched by order (both register their tensors in
    the order the network runs them); every pair must have the same shape."""
    a, b = list(src.state_dict().values()), dst.state_dict()
    if len(a) != len(b):
        raise ValueError(f"{len(a)} tensors in the source, {len(b)} in the destination")
    for (key, t), s in zip(b.items(), a, strict=True):
        if t.shape != s.shape:
            raise ValueError(f"{key}: shape {tuple(t.shape)} in the destination, {tuple(s.shape)} in the source")
    dst.load_state_dict(dict(zip(b, a, strict=True)))
