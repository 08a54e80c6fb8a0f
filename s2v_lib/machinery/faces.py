"""Parametric cartoon faces for SynthTalk: identity + expression + mouth + blink + pose -> landmarks -> pixels.

The face is first built as the usual 68 landmarks (jaw 0-16, brows 17-26, nose 27-35,
eyes 36-47, mouth 48-67; dlib/iBUG order) plus a few outline points (skull, hairline), in
*face units*: x to the right, y down, origin between the eyes, 1.0 = the image side.
Pixels are then drawn from exactly those points, so the saved ground truth and the
picture agree by construction. Drawing happens ``supersample`` times larger and is
box-filtered down, which anti-aliases every edge.

Head pose is a small-angle projection: each point has a depth (nose tip in front, outline
behind), yaw and pitch move points by ``depth * sin(angle)``, roll rotates the image plane.
"""
from __future__ import annotations

from dataclasses import dataclass, asdict

import numpy as np
from PIL import Image, ImageDraw

#: Expression channels, each in about [-1, 1]; emotions are vectors in this space.
EXPRESSION_CHANNELS = ("brow_raise", "brow_furrow", "brow_tilt", "eye_open", "mouth_corner",
                       "mouth_stretch", "nose_wrinkle", "upper_lip_raise", "flush")

#: Face attributes that describe an identity numerically (used as regression targets).
FACE_ATTRIBUTES = ("face_w", "face_h", "jaw", "nose_len", "nose_w", "brow_thick", "lip_thick",
                   "eye_size", "mouth_w", "hair_gray", "skin_tone", "beard")

EYE_LINE_Y = 0.44  # where the eyes sit in the image, as a fraction of its height
MAX_MOUTH_GAP = 0.085  # inner-lip gap at full opening, in face units


@dataclass
class FaceIdentity:
    """Everything about a face that does not change within a clip (lengths in face units)."""

    face_w: float = 0.33      # half-width at the cheeks
    face_h: float = 0.35      # eye line to chin
    jaw: float = 0.78         # 1 = square jaw, lower = narrow chin
    nose_len: float = 0.13
    nose_w: float = 0.045
    brow_thick: float = 0.014
    lip_thick: float = 0.018
    eye_size: float = 0.05    # half-width of an eye
    eye_gap: float = 0.125    # eye centre to face centre
    mouth_w: float = 0.092    # half-width of the mouth
    skin_tone: float = 0.5    # 0 dark .. 1 light
    skin_rgb: tuple[int, int, int] = (224, 180, 150)
    hair_rgb: tuple[int, int, int] = (70, 50, 35)
    hair_gray: float = 0.0
    hair_style: int = 0       # 0 short, 1 long, 2 receding
    iris_rgb: tuple[int, int, int] = (80, 60, 40)
    lip_rgb: tuple[int, int, int] = (180, 90, 90)
    beard: float = 0.0        # 0 none .. 1 full
    glasses: bool = False
    age: float = 0.3

    def attributes(self) -> dict[str, float]:
        d = asdict(self)
        return {k: float(d[k]) for k in FACE_ATTRIBUTES}


@dataclass
class FaceState:
    """Everything that changes from frame to frame."""

    expression: np.ndarray  # (len(EXPRESSION_CHANNELS),)
    mouth_open: float = 0.0  # 0 closed .. 1 wide open
    mouth_width: float = 0.5  # 0 narrow .. 1 spread
    mouth_round: float = 0.0  # 0 .. 1 rounded/protruded
    blink: float = 0.0  # 0 open .. 1 closed
    yaw: float = 0.0  # degrees
    pitch: float = 0.0
    roll: float = 0.0
    gaze: tuple[float, float] = (0.0, 0.0)


def _expr(state: FaceState) -> dict[str, float]:
    return dict(zip(EXPRESSION_CHANNELS, map(float, state.expression)))


def face_points(ident: FaceIdentity, state: FaceState) -> dict[str, np.ndarray]:
    """Landmarks and outline points in face units, before pose.

    Returns a dict of (N, 3) arrays (x, y, depth): ``landmarks`` (68), ``skull`` (outline over
    the top of the head), ``hairline``; and scalars for the renderer.
    """
    e = _expr(state)
    lm = np.zeros((68, 3))
    # jaw 0-16: an ellipse under the eye line, narrowed towards the chin by `jaw`
    gap = MAX_MOUTH_GAP * float(np.clip(state.mouth_open, 0, 1.2))
    a = np.pi * np.arange(17) / 16
    s = np.sin(a)
    lm[:17, 0] = -ident.face_w * np.cos(a) * (1 - (1 - ident.jaw) * s ** 3)
    lm[:17, 1] = -0.02 + (ident.face_h + 0.02) * s + 0.65 * gap * s ** 6
    lm[:17, 2] = 0.15 * s ** 4
    # brows 17-21 (image left) and 22-26
    brow_y = -0.055 - 0.042 * e["brow_raise"]
    for side, idx in ((-1, range(17, 22)), (1, range(22, 27))):
        t = np.linspace(0, 1, 5)  # outer -> inner for the left brow
        if side == 1:
            t = t[::-1]
        cx = side * ident.eye_gap
        xs = cx + side * ident.eye_size * (1.3 - 2.5 * t)
        arch = -0.012 * np.sin(np.pi * (0.15 + 0.7 * t))
        inner = t ** 2
        ys = brow_y + arch + inner * (0.03 * e["brow_furrow"] - 0.04 * e["brow_tilt"]) \
            + (1 - t) * 0.012 * e["brow_tilt"]
        xs = xs - side * inner * 0.022 * e["brow_furrow"]
        lm[list(idx), 0] = xs
        lm[list(idx), 1] = ys
        lm[list(idx), 2] = 0.25
    # nose 27-35
    lm[27:31, 0] = 0.0
    lm[27:31, 1] = np.linspace(0.0, ident.nose_len, 4)
    lm[27:31, 2] = np.linspace(0.3, 0.5, 4)
    nose_base = ident.nose_len + 0.012 - 0.012 * e["nose_wrinkle"]
    lm[31:36, 0] = np.linspace(-ident.nose_w, ident.nose_w, 5) * (1 + 0.18 * e["nose_wrinkle"])
    lm[31:36, 1] = nose_base - np.array([0.0, 0.006, 0.01, 0.006, 0.0])
    lm[31:36, 2] = 0.35
    # eyes 36-41 (image left: outer, upper-outer, upper-inner, inner, lower-inner, lower-outer), 42-47
    openness = 1 + 0.6 * e["eye_open"]
    up = ident.eye_size * 0.5 * openness
    lo = ident.eye_size * 0.32 * (1 + 0.25 * min(e["eye_open"], 0) + 0.1 * max(e["eye_open"], 0))
    blink = float(np.clip(state.blink, 0, 1))
    up_y = -up + (up + lo * 0.85) * blink
    for side, idx in ((-1, [36, 37, 38, 39, 40, 41]), (1, [45, 44, 43, 42, 47, 46])):
        cx = side * ident.eye_gap
        ew = ident.eye_size
        # order: outer, upper-outer, upper-inner, inner, lower-inner, lower-outer
        xs = cx + side * ew * np.array([1.0, 0.38, -0.38, -1.0, -0.38, 0.38])
        ys = np.array([0.0, up_y, up_y, 0.0, lo, lo])
        lm[idx, 0] = xs
        lm[idx, 1] = ys
        lm[idx, 2] = 0.2
    # mouth 48-67
    my = ident.nose_len + 0.075
    hw = ident.mouth_w * (1 + 0.25 * (state.mouth_width - 0.5) - 0.28 * state.mouth_round
                          + 0.24 * e["mouth_stretch"] + 0.16 * max(e["mouth_corner"], 0))
    lift = 0.026 * e["upper_lip_raise"]
    corner_y = my - 0.042 * e["mouth_corner"] + 0.25 * gap
    ui = my - 0.3 * gap - lift * 0.5
    li = my + 0.7 * gap
    lip_up = ident.lip_thick * (1 + 0.35 * state.mouth_round)
    lip_lo = ident.lip_thick * 1.25 * (1 + 0.35 * state.mouth_round)
    uo = ui - lip_up - lift * 0.5
    lo_ = li + lip_lo
    # the middle of each lip sags relative to the corners when they rise (a smile's curve)
    sag = 0.3 * (my - corner_y)
    outer = [(-hw, corner_y), (-0.6 * hw, uo + 0.004 + sag * 0.3), (-0.22 * hw, uo - 0.003 + sag),
             (0.0, uo + 0.002 + sag), (0.22 * hw, uo - 0.003 + sag), (0.6 * hw, uo + 0.004 + sag * 0.3),
             (hw, corner_y), (0.6 * hw, lo_ - 0.004 + sag * 0.6), (0.22 * hw, lo_ + sag),
             (0.0, lo_ + 0.002 + sag), (-0.22 * hw, lo_ + sag), (-0.6 * hw, lo_ - 0.004 + sag * 0.6)]
    hi = hw * 0.84
    inner = [(-hi, corner_y), (-0.35 * hi, ui + sag * 0.8), (0.0, ui + sag), (0.35 * hi, ui + sag * 0.8),
             (hi, corner_y), (0.35 * hi, li + sag * 0.8), (0.0, li + sag), (-0.35 * hi, li + sag * 0.8)]
    lm[48:60, :2] = outer
    lm[60:68, :2] = inner
    lm[48:68, 2] = 0.28 + 0.05 * state.mouth_round
    # skull over the top, from the right end of the jaw (16) back to its left end (0)
    b = np.linspace(0, np.pi, 15)
    skull_h = ident.face_w * 1.12
    skull = np.stack([ident.face_w * np.cos(b) * 1.01, -0.02 - skull_h * np.sin(b), np.zeros_like(b)], 1)
    recede = 0.03 if ident.hair_style == 2 else 0.0
    hair_top = -0.02 - skull_h * (0.55 - recede * 4)
    hairline = np.stack([ident.face_w * np.cos(b[::-1]) * 0.98,
                         hair_top + (skull_h * 0.35) * (1 - np.sin(b[::-1])) ** 1.5, np.zeros_like(b)], 1)
    return dict(landmarks=lm, skull=skull, hairline=hairline, gap=gap)


def project(points: np.ndarray, state: FaceState) -> np.ndarray:
    """(N, 3) face-unit points -> (N, 2) image fractions, after yaw, pitch and roll."""
    yaw, pitch, roll = np.radians([state.yaw, state.pitch, state.roll])
    x = points[:, 0] * np.cos(yaw) + points[:, 2] * np.sin(yaw)
    y = points[:, 1] * np.cos(pitch) + points[:, 2] * np.sin(pitch)
    c, s = np.cos(roll), np.sin(roll)
    xr, yr = c * x - s * y, s * x + c * y
    return np.stack([0.5 + xr, EYE_LINE_Y + yr], 1)


def _mix(a, b, t):
    return tuple(int(round(x * (1 - t) + y * t)) for x, y in zip(a, b))


class FaceRenderer:
    """Draws faces at ``resolution`` pixels; one renderer per size (it caches the background)."""

    def __init__(self, resolution: int = 64, supersample: int = 4):
        self.resolution = resolution
        self.ss = supersample
        self.size = resolution * supersample
        grad = np.linspace(0, 1, self.size)[:, None, None]
        top, bottom = np.array([112, 124, 140]), np.array([72, 82, 98])
        bg = (top * (1 - grad) + bottom * grad).repeat(self.size, 1).astype(np.uint8)
        self._background = Image.fromarray(bg, "RGB")

    def render(self, ident: FaceIdentity, state: FaceState) -> tuple[np.ndarray, np.ndarray]:
        """Return (image (R, R, 3) uint8, landmarks (68, 2) float32 in output pixels)."""
        pts = face_points(ident, state)
        S = self.size
        lm = project(pts["landmarks"], state) * S
        skull = project(pts["skull"], state) * S
        hairline = project(pts["hairline"], state) * S
        e = _expr(state)
        img = self._background.copy()
        d = ImageDraw.Draw(img)
        P = lambda arr: [tuple(p) for p in arr.tolist()]  # noqa: E731
        skin = _mix(ident.skin_rgb, (205, 70, 60), 0.25 * max(e["flush"], 0))
        shade = _mix(skin, (40, 20, 20), 0.25)
        hair = _mix(ident.hair_rgb, (200, 200, 200), ident.hair_gray)
        unit = S / 64.0  # line widths scale with the canvas
        center = project(np.array([[0.0, 0.0, 0.0]]), state)[0] * S

        # long hair behind the head
        if ident.hair_style == 1:
            top = center + (skull - center) * 1.08
            back = np.concatenate([top, [lm[0] + [-0.05 * S, 0.30 * S], lm[16] + [0.05 * S, 0.30 * S]]])
            d.polygon(P(back), fill=_mix(hair, (0, 0, 0), 0.2))
        # neck and ears
        nw = ident.face_w * 0.62 * S
        chin = lm[8]
        d.polygon([(chin[0] - nw, chin[1] - 0.12 * S), (chin[0] + nw, chin[1] - 0.12 * S),
                   (chin[0] + nw * 1.15, S), (chin[0] - nw * 1.15, S)], fill=shade)
        er = 0.035 * S
        for k, sgn in ((1, -1), (15, 1)):
            ex, ey = lm[k]
            d.ellipse([ex - er * 0.9 + sgn * er * 0.3, ey - er * 1.6, ex + er * 0.9 + sgn * er * 0.3, ey + er * 0.9],
                      fill=shade)
        # head
        d.polygon(P(np.concatenate([lm[:17], skull])), fill=skin)
        # hair cap: the skull outline down to the hairline
        if ident.hair_style != 2 or ident.hair_gray < 0.99:
            cap = np.concatenate([center + (skull - center) * 1.04, hairline])
            d.polygon(P(cap), fill=hair)
        # beard
        if ident.beard > 0.05:
            bc = _mix(skin, hair, 0.35 + 0.6 * ident.beard)
            top_y = (lm[33][1] + lm[51][1]) / 2
            beard = np.concatenate([lm[3:14], [[lm[13][0], top_y], [lm[3][0], top_y]]])
            d.polygon(P(beard), fill=bc)
        # wrinkles (age) and nose wrinkle
        lw = max(1, int(round(0.6 * unit)))
        if ident.age > 0.55:
            for k, yy in enumerate((-0.13, -0.16)):
                a = project(np.array([[-0.1, yy, 0.1], [0.0, yy - 0.008, 0.1], [0.1, yy, 0.1]]), state) * S
                d.line(P(a), fill=shade, width=lw)
        if e["nose_wrinkle"] > 0.2:
            for sgn in (-1, 1):
                a = project(np.array([[sgn * 0.02, 0.03, 0.32], [sgn * 0.04, 0.06, 0.3]]), state) * S
                d.line(P(a), fill=shade, width=max(1, int(round(unit * e["nose_wrinkle"]))))
        # eyes: sclera, iris clipped to the opening, lid line; a closed eye is a lid line only
        for idx in ([36, 37, 38, 39, 40, 41], [42, 43, 44, 45, 46, 47]):
            eye = lm[idx]
            opening = (eye[4][1] + eye[5][1]) / 2 - (eye[1][1] + eye[2][1]) / 2
            cx, cy = eye[:, 0].mean(), (eye[1][1] + eye[4][1]) / 2
            if opening > 0.9 * unit:
                d.polygon(P(eye), fill=(240, 238, 232))
                r = ident.eye_size * 0.5 * S
                gx, gy = state.gaze
                ix, iy = cx + gx * r * 0.5, cy + gy * r * 0.3
                top = max(iy - r, (eye[1][1] + eye[2][1]) / 2)
                bot = min(iy + r, (eye[4][1] + eye[5][1]) / 2)
                if bot > top:
                    d.ellipse([ix - r, top, ix + r, bot], fill=ident.iris_rgb)
                    pr = r * 0.45
                    d.ellipse([ix - pr, max(top, iy - pr), ix + pr, min(bot, iy + pr)], fill=(15, 12, 12))
                d.line(P(eye[[0, 1, 2, 3]]), fill=(35, 25, 25), width=max(1, int(round(1.1 * unit))))
            else:
                d.line(P(eye[[0, 5, 4, 3]]), fill=(35, 25, 25), width=max(1, int(round(1.1 * unit))))
        # brows
        bw = max(1, int(round(ident.brow_thick * S)))
        brow_rgb = _mix(hair, (20, 15, 10), 0.3)
        d.line(P(lm[17:22]), fill=brow_rgb, width=bw, joint="curve")
        d.line(P(lm[22:27]), fill=brow_rgb, width=bw, joint="curve")
        # nose: a shaded tip and nostrils
        d.line(P(lm[27:31]), fill=_mix(skin, shade, 0.5), width=lw)
        d.polygon(P(lm[[31, 30, 35, 34, 33, 32]]), fill=_mix(skin, shade, 0.6))
        nr = ident.nose_w * 0.28 * S
        for k in (32, 34):
            x, y = lm[k]
            d.ellipse([x - nr, y - nr * 0.6, x + nr, y + nr * 0.6], fill=(70, 40, 40))
        # mouth: lips, then the dark opening with upper teeth
        d.polygon(P(lm[48:60]), fill=ident.lip_rgb)
        if pts["gap"] > 0.004:
            inner = lm[60:68]
            d.polygon(P(inner), fill=(45, 12, 18))
            if pts["gap"] > 0.02:
                teeth = inner[[0, 1, 2, 3, 4]].copy()
                depth = min(pts["gap"] * 0.35, 0.012) * S
                d.polygon(P(np.concatenate([teeth, teeth[::-1] + [0, depth]])), fill=(236, 232, 220))
        else:
            d.line(P(lm[60:65]), fill=_mix(ident.lip_rgb, (40, 10, 15), 0.6), width=lw)
        # glasses
        if ident.glasses:
            gw = max(1, int(round(0.9 * unit)))
            rr = ident.eye_size * 1.45 * S
            cs = [lm[36:42].mean(0), lm[42:48].mean(0)]
            for cx, cy in cs:
                d.ellipse([cx - rr, cy - rr * 0.8, cx + rr, cy + rr * 0.8], outline=(25, 25, 30), width=gw)
            d.line([(cs[0][0] + rr, cs[0][1]), (cs[1][0] - rr, cs[1][1])], fill=(25, 25, 30), width=gw)
        if self.ss > 1:
            img = img.reduce(self.ss)
        return np.asarray(img), (lm / self.ss).astype(np.float32)
