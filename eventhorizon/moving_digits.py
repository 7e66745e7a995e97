"""A video-like stream from still images: drift, occlusion and cuts.

The stream shows a sequence of images, each for ``switch_every`` frames (a
*cut* starts the next one). Within a segment the image drifts by whole
pixels — one pixel every ``drift_every`` frames, back and forth along a
triangle wave of amplitude ``drift_pixels`` horizontally and half that rate
vertically — and a vertical occluding bar slides across it from the left, one
pixel every ``occluder_every`` frames. Shifted-in borders are 0 (the
background of Fashion-MNIST).

Every frame is a pure function of its index, so a stream can be generated in
chunks, resumed anywhere, and regenerated exactly (e.g. for the dense
baseline).
"""

from dataclasses import dataclass

import numpy as np

__all__ = ["MovingDigitsConfig", "MovingDigits"]


@dataclass(frozen=True)
class MovingDigitsConfig:
    """Geometry and timing of a :class:`MovingDigits` stream (all counts in frames or pixels).

    The defaults are those of the bundled ``moving_digits`` scenario (its
    ``[stream]`` schema takes them from here).

    Attributes
    ----------
    switch_every : int
        Frames per image; then a cut to the next image.
    drift_every : int
        Frames between one-pixel moves.
    drift_pixels : int
        Amplitude of the back-and-forth drift (0: no drift).
    occluder_width : int
        Width of the occluding bar in pixels (0: no occluder).
    occluder_every : int
        Frames between one-pixel moves of the bar.
    occluder_value : float
        Pixel value of the bar.
    """

    switch_every: int = 60
    drift_every: int = 6
    drift_pixels: int = 2
    occluder_width: int = 4
    occluder_every: int = 3
    occluder_value: float = 0.0

    def __post_init__(self):
        for name in ("switch_every", "drift_every", "occluder_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        for name in ("drift_pixels", "occluder_width"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
        if not 0.0 <= self.occluder_value <= 1.0:
            raise ValueError(f"occluder_value must lie in [0, 1], got {self.occluder_value!r}")


def _triangle(step, amplitude):
    """0, 1, …, A, A−1, …, −A, …, −1, 0, … (period 4A); 0 when A is 0."""
    if amplitude == 0:
        return np.zeros_like(step)
    phase = (step + amplitude) % (4 * amplitude)
    return amplitude - np.abs(phase - 2 * amplitude)


def _shift(image, dy, dx):
    """``image`` moved by ``(dy, dx)`` pixels, zero-filled."""
    out = np.zeros_like(image)
    h, w = image.shape
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[yd, xd] = image[ys, xs]
    return out


class MovingDigits:
    """Frames of a moving-image stream over labelled images.

    Parameters
    ----------
    images : ndarray, shape (m, height, width)
        Pixel values in [0, 1].
    labels : ndarray of int, shape (m,)
    frames : int
        Length of the stream.
    config : MovingDigitsConfig
    seed : int
        Order in which the images are shown (a random permutation).

    Examples
    --------
    >>> imgs = np.zeros((3, 6, 6), np.float32); imgs[:, 2:4, 2:4] = 1
    >>> cfg = MovingDigitsConfig(switch_every=8, drift_every=2, drift_pixels=1, occluder_width=0)
    >>> stream = MovingDigits(imgs, np.array([0, 1, 2]), frames=16, config=cfg, seed=0)
    >>> frames, labels = stream.frames(0, 16)
    >>> frames.shape, int((np.diff(frames, axis=0) != 0).any(axis=1).sum())
    ((16, 36), 7)
    >>> stream.cuts().tolist()
    [0, 8]
    """

    def __init__(self, images, labels, frames, config=MovingDigitsConfig(), seed=0):
        images = np.asarray(images, dtype=np.float32)
        labels = np.asarray(labels)
        if images.ndim != 3 or images.shape[0] == 0:
            raise ValueError(f"images must have shape (m, height, width) with m >= 1, got {images.shape}")
        if labels.shape != (images.shape[0],):
            raise ValueError(f"labels must have shape ({images.shape[0]},), got {labels.shape}")
        if isinstance(frames, bool) or not isinstance(frames, (int, np.integer)) or frames < 1:
            raise ValueError(f"frames must be an integer >= 1, got {frames!r}")
        self.images, self.labels, self.n_frames, self.config = images, labels, int(frames), config
        segments = -(-self.n_frames // config.switch_every)
        order = np.random.default_rng(seed).permutation(images.shape[0])
        self.order = np.resize(order, segments)  # repeats when there are more segments than images

    @property
    def frame_size(self):
        return self.images.shape[1] * self.images.shape[2]

    def cuts(self):
        """Frame indices where a new image starts."""
        return np.arange(0, self.n_frames, self.config.switch_every)

    def image_of(self, start, stop):
        """Index (into ``images``) of the image shown in each frame of ``[start, stop)``."""
        return self.order[np.arange(start, stop) // self.config.switch_every]

    def frames(self, start, stop):
        """Frames ``[start, stop)`` as rows ``(stop − start, height·width)`` of float32, and their labels."""
        if not 0 <= start <= stop <= self.n_frames:
            raise ValueError(f"frame range [{start}, {stop}) must lie within [0, {self.n_frames}]")
        shown = self.image_of(start, stop)
        out = np.empty((stop - start, self.frame_size), np.float32)
        for row, k in enumerate(range(start, stop)):
            out[row] = self._frame(k, shown[row]).ravel()
        return out, self.labels[shown]

    def _frame(self, k, image):
        cfg = self.config
        phase = k % cfg.switch_every
        step = phase // cfg.drift_every
        dx = int(_triangle(np.int64(step), cfg.drift_pixels))
        dy = int(_triangle(np.int64(step // 2), cfg.drift_pixels // 2))
        frame = _shift(self.images[image], dy, dx)
        if cfg.occluder_width:
            left = phase // cfg.occluder_every - cfg.occluder_width
            lo, hi = max(left, 0), min(left + cfg.occluder_width, frame.shape[1])
            if lo < hi:
                frame[:, lo:hi] = cfg.occluder_value
        return frame
