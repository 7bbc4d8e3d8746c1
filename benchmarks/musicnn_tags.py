"""An independent judge for the benches: musicnn's taggers (Pons & Serra 2019), trained on real records.

Runs in its own environment, `.venv-judge` (`make judge-env`: TensorFlow, which the project does not
need), and is called by `benchmarks.bench_judge` as a subprocess:

    .venv-judge/bin/python benchmarks/musicnn_tags.py FILE ...   # prints one JSON line

For each file: the mean over 3 s patches of every tag's probability, for MSD_musicnn (Million Song
Dataset's 50 most used last.fm tags: rock, jazz, Hip-Hop, country, ...) and MTT_musicnn (MagnaTagATune's
50, which hold "classical"). The weights ship inside the musicnn package (ISC licence): nothing is
downloaded. The log-mel input is musicnn's own, computed in float64: musicnn 0.1.0 multiplies a float16
spectrogram by 10,000 before the log, which overflows to inf on loud bins with numpy 2 (every tag NaN).
"""
from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # musicnn builds its graph with tf.compat.v1.layers
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

MODELS = ("MSD_musicnn", "MTT_musicnn")


def _patches(path: str, n_frames: int):
    """musicnn's input: log-mel patches of `n_frames` (3 s), no overlap [shape=(patches, n_frames, 96)]."""
    import librosa
    import numpy as np
    from musicnn import configuration as config

    audio, sr = librosa.load(path, sr=config.SR)
    mel = librosa.feature.melspectrogram(y=audio, sr=sr, hop_length=config.FFT_HOP, n_fft=config.FFT_SIZE,
                                         n_mels=config.N_MELS).T
    rep = np.log10(10000 * mel.astype(np.float64) + 1).astype(np.float32)
    starts = range(0, rep.shape[0] - n_frames + 1, n_frames)
    if not starts:
        raise ValueError(f"{path}: shorter than 3 s")
    return np.stack([rep[t:t + n_frames] for t in starts])


def tags(files: list[str]) -> dict[str, dict[str, dict[str, float]]]:
    """{file: {model: {tag: mean probability}}}: one graph per model, every file through it."""
    import librosa
    import tensorflow as tf
    from musicnn import configuration as config
    from musicnn import models

    tf.compat.v1.disable_eager_execution()
    n_frames = librosa.time_to_frames(3, sr=config.SR, n_fft=config.FFT_SIZE, hop_length=config.FFT_HOP) + 1
    batches = {f: _patches(f, n_frames) for f in files}
    out: dict = {f: {} for f in files}
    for model in MODELS:
        labels = config.MSD_LABELS if model.startswith("MSD") else config.MTT_LABELS
        tf.compat.v1.reset_default_graph()
        with tf.name_scope("model"):
            x = tf.compat.v1.placeholder(tf.float32, [None, n_frames, config.N_MELS])
            is_training = tf.compat.v1.placeholder(tf.bool)
            y = models.define_model(x, is_training, model, len(labels))[0]
            probs = tf.nn.sigmoid(y)
        with tf.compat.v1.Session() as sess:
            tf.compat.v1.train.Saver().restore(sess, os.path.join(os.path.dirname(models.__file__), model) + "/")
            for f, batch in batches.items():
                p = sess.run(probs, feed_dict={x: batch, is_training: False}).mean(axis=0)
                out[f][model] = {label: float(v) for label, v in zip(labels, p)}
    return out


if __name__ == "__main__":
    print(json.dumps(tags(sys.argv[1:])))
