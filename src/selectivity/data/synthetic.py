"""The synthetic stand-in for CIFAR-10 (offline demos and tests; it is NOT CIFAR-10)."""

from __future__ import annotations

import logging

import numpy as np
from tqdm.auto import tqdm

from selectivity.data.dataset import Dataset, is_integer

logger = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------
# Synthetic stand-in (recipe: docs/method.md §2.8)
# --------------------------------------------------------------------------------------------

SYNTHETIC_SPATIAL_FREQUENCY_BANDS = ("low", "high")
# Grating periods in pixels for a 32-px image, per band (scaled by image_size / 32).
SYNTHETIC_PERIOD_RANGES_PX = ((7.0, 11.0), (3.5, 5.0))
# Orientation jitter as a fraction of the class spacing. Above 0.5 neighbouring classes overlap:
# about a third of the images lie where two classes are equally likely, a Bayes error near 1/6
# that keeps test accuracy below 100% (measured for cnn7: 0.77-0.79 after 4 epochs on 4000 images).
SYNTHETIC_ORIENTATION_JITTER = 0.6
SYNTHETIC_DISTRACTOR_BARS = 3
# Images are rendered in chunks of at most this many pixels (per channel), to bound memory.
SYNTHETIC_PIXELS_PER_CHUNK = 1 << 20


def synthetic_class_orientations_deg(num_classes: int) -> np.ndarray:
    """Orientation (deg) of every synthetic class: ``num_classes / 2`` angles over 0..180, each twice."""
    num_orientations = num_classes // 2
    return np.repeat(np.arange(num_orientations) * (180.0 / num_orientations), 2)


def synthetic_class_names(num_classes: int) -> list[str]:
    """Names such as ``orientation_36deg_high_sf`` in label order (label = 2 * orientation + band)."""
    return [
        f"orientation_{float(angle):g}deg_{SYNTHETIC_SPATIAL_FREQUENCY_BANDS[label % 2]}_sf"
        for label, angle in enumerate(np.round(synthetic_class_orientations_deg(num_classes), 1))
    ]


def _pixel_grid(image_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column coordinates (1, H, W) centred on the image, as in the grating stimuli."""
    centre = (image_size - 1) / 2
    rows, cols = np.meshgrid(np.arange(image_size) - centre, np.arange(image_size) - centre, indexing="ij")
    return rows[None], cols[None]


def _gratings(rows, cols, theta, period, phase) -> np.ndarray:
    """Sinusoidal gratings (n, H, W) in the stimulus convention cos(k(-sin t row + cos t col) + phase)."""
    k = (2 * np.pi / period)[:, None, None]
    projection = -np.sin(theta)[:, None, None] * rows + np.cos(theta)[:, None, None] * cols
    return np.cos(k * projection + phase[:, None, None])


def _colour_directions(rng: np.random.Generator, n: int) -> np.ndarray:
    """Random positive RGB weights (n, 3) with maximum 1, so luminance carries the pattern in any hue."""
    weights = rng.uniform(0.2, 1.0, (n, 3))
    return weights / weights.max(axis=1, keepdims=True)


def _distractor_bars(rng: np.random.Generator, n: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Sum of anti-aliased line segments of random orientation, length, position and sign (n, H, W)."""
    image_size = rows.shape[-1]
    scale = image_size / 32
    half = (image_size - 1) / 2
    total = np.zeros((n, image_size, image_size))
    for _ in range(SYNTHETIC_DISTRACTOR_BARS):
        angle = rng.uniform(0, np.pi, n)[:, None, None]
        length = rng.uniform(0.2, 0.45, n)[:, None, None] * image_size
        half_width = rng.uniform(0.5, 1.0, n)[:, None, None] * scale
        centre_row = rng.uniform(-half, half, n)[:, None, None]
        centre_col = rng.uniform(-half, half, n)[:, None, None]
        intensity = rng.uniform(-0.3, 0.3, n)[:, None, None]
        d_row, d_col = rows - centre_row, cols - centre_col
        along = d_col * np.cos(angle) + d_row * np.sin(angle)
        across = -d_col * np.sin(angle) + d_row * np.cos(angle)
        distance = np.hypot(np.maximum(np.abs(along) - length / 2, 0), across)
        total += intensity * np.clip(half_width + 0.5 - distance, 0, 1)
    return total


def _render_synthetic_images(
    labels: np.ndarray, rng: np.random.Generator, image_size: int, num_classes: int
) -> np.ndarray:
    """uint8 (n, H, H, 3) images of the given labels; every parameter and the noise come from ``rng``."""
    n = len(labels)
    rows, cols = _pixel_grid(image_size)
    scale = image_size / 32
    # 1. background colour
    background = rng.uniform(0.25, 0.75, (n, 3))
    # 2. class cue: a windowed grating of the class orientation (jittered) and frequency band
    spacing = np.pi / (num_classes // 2)
    jitter = rng.uniform(-SYNTHETIC_ORIENTATION_JITTER, SYNTHETIC_ORIENTATION_JITTER, n) * spacing
    theta = np.deg2rad(synthetic_class_orientations_deg(num_classes)[labels]) + jitter
    low_band, high_band = (rng.uniform(*band, n) * scale for band in SYNTHETIC_PERIOD_RANGES_PX)
    period = np.where(labels % 2 == 0, low_band, high_band)
    phase = rng.uniform(0, 2 * np.pi, n)
    centre_row, centre_col = (rng.uniform(-0.2, 0.2, (n, 1, 1)) * (image_size - 1) for _ in range(2))
    sigma = rng.uniform(0.18, 0.3, (n, 1, 1)) * image_size
    window = np.exp(-((rows - centre_row) ** 2 + (cols - centre_col) ** 2) / (2 * sigma**2))
    amplitude = rng.uniform(0.15, 0.4, n)
    cue = _gratings(rows, cols, theta, period, phase) * window * amplitude[:, None, None]
    images = background[:, None, None, :] + cue[..., None] * _colour_directions(rng, n)[:, None, None, :]
    # 3. distractor texture: a weaker full-field grating of random orientation and frequency
    texture_theta = rng.uniform(0, np.pi, n)
    texture_period = rng.uniform(3.5, 11.0, n) * scale
    texture_phase = rng.uniform(0, 2 * np.pi, n)
    texture_amplitude = amplitude * rng.uniform(0.1, 0.3, n)
    texture = (
        _gratings(rows, cols, texture_theta, texture_period, texture_phase) * texture_amplitude[:, None, None]
    )
    images += texture[..., None] * _colour_directions(rng, n)[:, None, None, :]
    # 4. distractor bars, achromatic
    images += _distractor_bars(rng, n, rows, cols)[..., None]
    # 5. pixel noise
    images += rng.standard_normal(images.shape) * rng.uniform(0.02, 0.08, (n, 1, 1, 1))
    # 6. quantise
    return np.clip(np.rint(images * 255), 0, 255).astype(np.uint8)


def _make_synthetic_split(
    size: int,
    seed_sequence: np.random.SeedSequence,
    image_size: int,
    num_classes: int,
    progress: bool,
    what: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Balanced shuffled labels and their images, rendered in chunks of bounded memory."""
    rng = np.random.default_rng(seed_sequence)
    labels = rng.permutation(np.arange(size) % num_classes).astype(np.int64)
    chunk = max(1, SYNTHETIC_PIXELS_PER_CHUNK // (image_size * image_size))
    images = np.empty((size, image_size, image_size, 3), dtype=np.uint8)
    for start in tqdm(
        range(0, size, chunk), desc=f"synthetic {what} images", disable=not progress, leave=False
    ):
        stop = min(start + chunk, size)
        images[start:stop] = _render_synthetic_images(labels[start:stop], rng, image_size, num_classes)
    return images, labels


def make_synthetic_dataset(
    train_size: int,
    test_size: int,
    seed: int,
    image_size: int = 32,
    num_classes: int = 10,
    progress: bool = True,
) -> Dataset:
    """A procedurally generated stand-in dataset of oriented gratings (recipe: docs/method.md §2.8).

    Not CIFAR-10: it exists so that the whole workflow can run, and be tested, without it.
    ``num_classes`` must be even (orientations x 2 frequency bands). Same arguments, same bytes.
    """
    for name, value, minimum in (
        ("train_size", train_size, 1),
        ("test_size", test_size, 1),
        ("image_size", image_size, 8),
        ("seed", seed, 0),
    ):
        if not is_integer(value) or value < minimum:
            raise ValueError(f"make_synthetic_dataset: {name} must be an integer >= {minimum}, got {value!r}")
    if not is_integer(num_classes) or num_classes < 2 or num_classes % 2:
        raise ValueError(
            "make_synthetic_dataset: num_classes must be an even integer >= 2 "
            f"(orientations x 2 frequency bands), got {num_classes!r}"
        )
    logger.info(
        "generating a synthetic dataset: %d train / %d test images, %d px, %d classes, seed %d",
        train_size,
        test_size,
        image_size,
        num_classes,
        seed,
    )
    train_sequence, test_sequence = np.random.SeedSequence(int(seed)).spawn(2)
    x_train, y_train = _make_synthetic_split(
        int(train_size), train_sequence, image_size, num_classes, progress, "train"
    )
    x_test, y_test = _make_synthetic_split(
        int(test_size), test_sequence, image_size, num_classes, progress, "test"
    )
    description = (
        f"synthetic stand-in (selectivity.data.synthetic.make_synthetic_dataset, seed {seed}): windowed gratings of "
        f"{num_classes // 2} orientations x 2 spatial-frequency bands with distractor texture, bars and noise"
    )
    return Dataset(x_train, y_train, x_test, y_test, synthetic_class_names(num_classes), description)
